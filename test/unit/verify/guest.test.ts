import { describe, expect, it } from "vitest";
import {
  buildVerifyScript,
  type GuestItem,
  parseVerifyConsole,
  VERIFY_MARKER,
} from "../../../src/verify/guest.ts";

const a: GuestItem = {
  hash: "a".repeat(64),
  guestPath: "/verify/a.bpf.o",
  kind: "object",
  opsName: "schedctl_a",
  kernelStage: true,
  workloads: ["mixed"],
};
const b: GuestItem = { ...a, hash: "b".repeat(64), guestPath: "/verify/b.bpf.o", opsName: "schedctl_b" };
const b64 = (s: string) => Buffer.from(s).toString("base64");
const thresholds = { minWorkerShare: 0.5, maxP99Ratio: 2, minThroughputRatio: 0.8 };
/** cyclictest --json as the tool writes it (only what the parser reads, from a real report). */
const cyclictest = (p50: number, p99: number) =>
  JSON.stringify({
    thread: {
      "0": {
        histogram: { [p50]: 90, [p99]: 9, [p99 * 2]: 1 },
        cycles: 100,
        min: p50,
        max: p99 * 2,
        avg: p50,
      },
      "1": { histogram: { [p50]: 98, [p99]: 2 }, cycles: 100, min: p50, max: p99, avg: p50 },
    },
  });
const before = { hash: "default" } as GuestItem;
const after = { hash: "default-after" } as GuestItem;
const say = (item: GuestItem, key: string, value: string) => `${VERIFY_MARKER} ${item.hash} ${key} ${value}`;

describe("sandbox guest script", () => {
  it("checks every candidate in one script, each with its kernel stage and a run of the given length", () => {
    const script = buildVerifyScript([a, { ...b, kernelStage: false }], 6);
    expect(script.match(/^vkernel /gm)).toHaveLength(1);
    expect(script.match(/^\s+vdynamic /gm)).toHaveLength(2);
    // The same loads under the kernel default, before and after the candidates.
    expect(script.match(/^vbaseline default(-after)?$/gm)).toEqual([
      "vbaseline default",
      "vbaseline default-after",
    ]);
    expect(script).toContain("cyclictest --threads=2 --interval=1000 --duration=6");
    expect(script).toContain("wakelat --seconds=6 --workers=2");
    expect(script).toContain("struct_ops register '/verify/b.bpf.o' /sys/fs/bpf/schedctl-verify/");
  });

  it("reads a pass, a verifier refusal and an ejection from an interleaved console", () => {
    const hog = (units: number[]) =>
      `{"load":"cpuhog","workers":${units.length},"seconds":6.00,"units":[${units}],"min":${Math.min(...units)},"total":${units.reduce((x, y) => x + y)}}`;
    const wakelat =
      '{"load":"wakelat","workers":2,"p50_us":300,"p90_us":900,"p99_us":9000,"p999_us":20000,"rps":45.5}';
    const console = [
      say(before, "loads", b64(`${hog([100, 100, 100, 100])}\n${wakelat}\n`)),
      say(before, "cyclictest", b64(cyclictest(60, 400))),
      say(before, "figures", "secs=6 state=disabled ops= started_ops= forks=10"),
      say(before, "dynamic", "done"),
      say(a, "kernel", "ok"),
      `[    9.1] random kernel line`,
      say(a, "figures", "secs=6 state=enabled ops=schedctl_a started_ops=schedctl_a forks=8"),
      say(a, "loads", b64(`${hog([100, 120, 90, 110])}\n${wakelat}\n`)),
      say(a, "cyclictest", b64(cyclictest(70, 800))),
      say(a, "dynamic-log", ""),
      say(a, "dynamic", "done"),
      say(after, "loads", b64(`${hog([100, 100, 100, 100])}\n${wakelat}\n`)),
      say(after, "cyclictest", b64(cyclictest(60, 600))),
      say(after, "figures", "secs=6 state=disabled ops= started_ops= forks=10"),
      say(after, "dynamic", "done"),
      say(b, "kernel-log", b64("R1 invalid mem access 'map_value_or_null'\nSuggestion: Add a NULL check")),
      say(b, "kernel", "fail"),
    ].join("\n");
    const out = parseVerifyConsole(console, [a, b], thresholds);
    expect(out.get(a.hash)?.dynamic).toMatchObject({
      ok: true,
      figures: {
        seconds: 6,
        workers: 5,
        minProgress: 8,
        opsPerSec: 420 / 6,
        latencyP50Us: 300,
        latencyP99Us: 9000,
        requestsPerSec: 45.5,
        cyclictestP50Us: 70,
        cyclictestP99Us: 800,
      },
      baseline: { workers: 5, opsPerSec: 400 / 6, cyclictestP99Us: 500 },
      // The third hog made 90 of 420 units against 100 of 400 under the default.
      againstDefault: {
        minShareRatio: 0.857,
        latencyP99Ratio: 1,
        cyclictestP99Ratio: 1.6,
        throughputRatio: 1.05,
        forkRatio: 0.8,
      },
      admits: ["mixed"],
    });
    expect(out.get(b.hash)).toEqual({
      kernel: { ok: false, log: "R1 invalid mem access 'map_value_or_null'\nSuggestion: Add a NULL check" },
    });

    const ejected = parseVerifyConsole(
      [
        say(b, "kernel", "ok"),
        say(b, "figures", "secs=6 state=disabled ops= started_ops=schedctl_b forks=2"),
        say(b, "loads", b64(`${hog([50, 0, 40, 30])}\n`)),
        say(b, "dynamic-log", b64('sched_ext: BPF scheduler "schedctl_b" disabled (runnable task stall)')),
        say(b, "dynamic", "done"),
      ].join("\n"),
      [b],
      thresholds,
    ).get(b.hash)?.dynamic;
    expect(ejected?.ok).toBe(false);
    expect(ejected?.log).toMatch(
      /ejected or replaced during the run .*kernel: runnable task stall.*; a load worker starved.*; no latency figures/,
    );
    expect(ejected?.figures.ejectReason).toBe("runnable task stall");
  });
});
