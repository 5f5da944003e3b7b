import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { hackbenchArgs, parseHackbench } from "../../../src/sandbox/tools/hackbench.ts";
import { parsePerfBench, perfMessagingArgs, perfPipeArgs } from "../../../src/sandbox/tools/perf-bench.ts";
import { parseRtAppLogs, rtAppConfig, rtAppFigures } from "../../../src/sandbox/tools/rt-app.ts";
import {
  BATCH_JOB_OPS,
  batchJobArgs,
  batchMeanCompletion,
  parseStressNgJob,
} from "../../../src/sandbox/tools/stress-ng-batch.ts";

// Every text below was recorded in the sandbox VM (kernel 7.3.4, multi-threaded TCG, 2 vCPUs,
// beside `stress-ng --cpu 2`) by test/fixtures/tools/record-tools.ts; the percentiles they give were
// checked against awk over the same logs (nearest rank, an overrun activation counted as late by
// the overrun).
const fixture = (name: string) =>
  readFileSync(join(import.meta.dirname, "..", "..", "fixtures", "tools", name), "utf8");

describe("rt-app", () => {
  it("writes SCHED_OTHER task sets whose threads do not share one period", () => {
    const service = JSON.parse(rtAppConfig({ set: "service", seconds: 3, logDir: "/tmp/rt" }));
    expect(service.global).toMatchObject({ duration: 3, default_policy: "SCHED_OTHER", logdir: "/tmp/rt" });
    const threads = Object.values(service.tasks) as {
      phases: Record<string, { runtime: number; timer: { period: number } }>;
    }[];
    expect(threads).toHaveLength(8);
    const periods = threads.map((t) =>
      Object.values(t.phases)
        .map((p) => p.timer.period)
        .join(","),
    );
    expect(new Set(periods).size).toBeGreaterThan(1);
    const heavy = JSON.parse(rtAppConfig({ set: "heavy", seconds: 3, logDir: "/tmp/rt" }));
    const runs = Object.values(heavy.tasks).flatMap((t) => Object.values((t as { phases: object }).phases));
    expect(Math.min(...runs.map((p) => (p as { runtime: number }).runtime))).toBeGreaterThanOrEqual(1000);
  });

  it("reads wake-up latency and slack from the service set's logs", () => {
    const rows = parseRtAppLogs(fixture("rt-app-service.log"));
    expect(rows).toHaveLength(6082);
    const figures = rtAppFigures(rows);
    expect(figures).toMatchObject({ samples: 6082, p50Us: 359, p99Us: 5162, maxUs: 31844 });
    expect(figures.missed).toBeGreaterThan(0);
    expect(figures.missed).toBeLessThan(1);
  });

  it("reads the heavy set's logs (milliseconds of work per request)", () => {
    const figures = rtAppFigures(parseRtAppLogs(fixture("rt-app-heavy.log")));
    expect(figures).toMatchObject({ samples: 668, p50Us: 372, p99Us: 3407, maxUs: 7238 });
  });

  it("says what is wrong with a log it cannot read", () => {
    const log = fixture("rt-app-heavy.log").split("\n");
    expect(() => parseRtAppLogs(log.slice(2).join("\n"))).toThrow(
      /^rt-app log line 1: a row before the #idx header/,
    );
    expect(() => parseRtAppLogs([...log.slice(0, 3), "   0 12 x"].join("\n"))).toThrow(
      /^rt-app log line 4: 3 fields/,
    );
    expect(() => parseRtAppLogs(log.slice(0, 2).join("\n"))).toThrow(/no activation/);
  });
});

describe("hackbench", () => {
  it("reads the run's time from its report", () => {
    expect(hackbenchArgs({ groups: 2, loops: 15 })).toEqual(["--groups=2", "--loops=15"]);
    expect(parseHackbench(fixture("hackbench.txt"))).toBe(0.184);
    expect(() => parseHackbench("Running in process mode")).toThrow(/no "Time:" line/);
  });
});

describe("perf bench sched", () => {
  it("reads messaging's and pipe's reports", () => {
    expect(perfMessagingArgs({ groups: 1, loops: 10 }).join(" ")).toBe(
      "bench sched messaging --group=1 --nr_loops=10",
    );
    expect(perfPipeArgs({ loops: 5000 }).join(" ")).toBe("bench sched pipe --loop=5000");
    expect(parsePerfBench(fixture("perf-messaging.txt"))).toEqual({
      benchmark: "sched/messaging",
      totalSeconds: 0.306,
    });
    expect(parsePerfBench(fixture("perf-pipe.txt"))).toEqual({
      benchmark: "sched/pipe",
      totalSeconds: 0.438,
      usecsPerOp: 87.7624,
    });
    expect(() => parsePerfBench("# Running 'sched/pipe' benchmark:\n")).toThrow(
      /^perf bench report: totalSeconds: /,
    );
  });
});

describe("stress-ng batch", () => {
  it("runs one CPU stressor per job with a fixed amount of work, of mixed lengths", () => {
    expect(batchJobArgs(150).join(" ")).toBe("--cpu 1 --cpu-method int64 --cpu-ops 150 --metrics-brief");
    expect(new Set(BATCH_JOB_OPS).size).toBeGreaterThan(1);
  });

  it("reads each job's completion time and the batch's mean", () => {
    const jobs = [0, 1, 2, 3, 4, 5].map((i) => parseStressNgJob(fixture(`stress-ng-batch-job${i}.txt`)));
    expect(jobs[0]).toEqual({ stressor: "cpu", bogoOps: 150, realSeconds: 1.97, completedSeconds: 2.01 });
    expect(jobs[5]).toMatchObject({ bogoOps: 600, completedSeconds: 4.01 });
    const mean = batchMeanCompletion(jobs);
    expect(mean).toBeGreaterThan(1.35);
    expect(mean).toBeLessThan(4.01);
    expect(() => parseStressNgJob(fixture("hackbench.txt"))).toThrow(/^stress-ng report: stressor: /);
  });
});
