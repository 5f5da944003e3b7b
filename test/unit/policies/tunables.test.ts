import { describe, expect, it } from "vitest";
import { builtinPolicy } from "../../../src/policies/catalogue.ts";
import { canonicalTunables, resolveTunables, TunableError } from "../../../src/policies/tunables.ts";

describe("resolveTunables", () => {
  const latency = builtinPolicy("latency").manifest;
  const batch = builtinPolicy("batch-order").manifest;
  const boost = builtinPolicy("cgroup-boost").manifest;

  it("fills in defaults and keeps given values", () => {
    expect(resolveTunables(latency, { slice_us: 2000, preempt_waker: false })).toEqual({
      busy_wakeups: 20,
      hog_slice_us: 10000,
      interactive_us: 4000,
      preempt_min_us: 400,
      preempt_waker: false,
      reserved_cpus: 1,
      slice_us: 2000,
    });
  });

  it("names the tunable, the value and the range when out of range", () => {
    expect(() => resolveTunables(latency, { slice_us: 10 })).toThrow(TunableError);
    expect(() => resolveTunables(latency, { slice_us: 10 })).toThrow(
      "policy latency: tunable slice_us=10 is out of range [200, 50000] us",
    );
  });

  it("refuses unknown names, wrong types, unknown options and too many cgroups", () => {
    expect(() => resolveTunables(latency, { slice: 1 })).toThrow(
      'policy latency: unknown tunable "slice" (known: slice_us, hog_slice_us, interactive_us, preempt_min_us, preempt_waker, reserved_cpus, busy_wakeups)',
    );
    expect(() => resolveTunables(latency, { slice_us: 2.5 })).toThrow("slice_us=2.5 is not an integer");
    expect(() => resolveTunables(batch, { order: "random" })).toThrow(
      'tunable order="random" is not one of shortest, longest',
    );
    const nine = Array.from({ length: 9 }, (_, i) => `/svc${i}`);
    expect(() => resolveTunables(boost, { cgroups: nine })).toThrow("has more than 8 cgroups");
    expect(() => resolveTunables(boost, { cgroups: ["relative"] })).toThrow(
      "not a list of absolute cgroup paths",
    );
  });

  it("gives the same canonical text whatever the key order", () => {
    expect(canonicalTunables({ b: 1, a: [] })).toBe(canonicalTunables({ a: [], b: 1 }));
  });
});
