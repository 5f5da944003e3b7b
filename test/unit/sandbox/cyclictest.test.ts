import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import {
  cyclictestArgs,
  cyclictestLatency,
  parseCyclictestJson,
} from "../../../src/sandbox/tools/cyclictest.ts";

// Recorded in the sandbox VM (kernel 7.3.4, multi-threaded TCG) with the command line below,
// two SCHED_OTHER threads beside `stress-ng --cpu 2`.
const RECORDED = join(import.meta.dirname, "..", "..", "fixtures", "tools", "cyclictest-stress-ng.json");

describe("cyclictest", () => {
  it("runs SCHED_OTHER threads (no priority) with a histogram and a JSON report", () => {
    const args = cyclictestArgs({ threads: 2, intervalUs: 1000, seconds: 3, json: "/tmp/ct.json" });
    expect(args.join(" ")).toBe(
      "--threads=2 --interval=1000 --duration=3 --histogram=20000 --json=/tmp/ct.json --quiet",
    );
    expect(args.some((a) => a.startsWith("--priority") || a === "-p")).toBe(false);
  });

  it("reads percentiles over both threads' histograms from a report the tool wrote", () => {
    const text = readFileSync(RECORDED, "utf8");
    expect(text).toContain('"cmdline:": "cyclictest --threads=2 --interval=1000 --duration=3');
    expect(cyclictestLatency(parseCyclictestJson(text))).toEqual({
      samples: 5589,
      p50Us: 175,
      p99Us: 3262,
      maxUs: 6388,
    });
  });

  it("counts wake-ups past the histogram at the thread's max", () => {
    const report = parseCyclictestJson(
      JSON.stringify({ thread: { "0": { histogram: { "10": 90 }, cycles: 100, max: 50_000 } } }),
    );
    expect(cyclictestLatency(report)).toEqual({ samples: 100, p50Us: 10, p99Us: 50_000, maxUs: 50_000 });
  });

  it("says what is wrong with a report it cannot read", () => {
    expect(() => parseCyclictestJson("{")).toThrow(/^cyclictest --json report is not JSON: /);
    expect(() => parseCyclictestJson('{"thread":{"0":{"histogram":{"x":1},"cycles":1,"max":1}}}')).toThrow(
      /^cyclictest --json report: thread\.0\.histogram\.x: /,
    );
  });
});
