import { describe, expect, it } from "vitest";
import { judgeAgainstDefault } from "../../../src/verify/against-default.ts";
import type { AgainstDefault } from "../../../src/verify/types.ts";

const thresholds = { minWorkerShare: 0.5, maxP99Ratio: 2, minThroughputRatio: 0.8 };
const even: AgainstDefault = {
  minShareRatio: 0.97,
  latencyP99Ratio: 1.1,
  cyclictestP99Ratio: 1.2,
  throughputRatio: 1.0,
  forkRatio: 0.9,
};

describe("judging a sandbox run against the default's", () => {
  it("admits every claim when the run holds up against the default", () => {
    expect(judgeAgainstDefault(even, ["latency", "throughput", "mixed", "idle"], thresholds)).toEqual({
      admits: ["latency", "throughput", "mixed", "idle"],
      refused: [],
    });
  });

  it("refuses partial starvation wherever a service may run; a throughput claim may trade fairness", () => {
    const parked = judgeAgainstDefault(
      { ...even, minShareRatio: 0.14 },
      ["latency", "mixed", "io"],
      thresholds,
    );
    expect(parked.admits).toEqual([]);
    expect(parked.refused).toEqual([
      "not for latency phases: a CPU-bound worker got 0.14 of its share of the work under the default (at least 0.5)",
      "not for mixed phases: a CPU-bound worker got 0.14 of its share of the work under the default (at least 0.5)",
      "not for io phases: a CPU-bound worker got 0.14 of its share of the work under the default (at least 0.5)",
    ]);
    // Shortest-first: the jobs that ran longest wait, the batch as a whole gets on faster.
    const shortestFirst = { ...even, minShareRatio: 0.105, throughputRatio: 2.4 };
    expect(judgeAgainstDefault(shortestFirst, ["throughput"], thresholds).admits).toEqual(["throughput"]);
  });

  it("judges latency claims on the geometric mean of the latency loads' p99, throughput claims on throughput", () => {
    // A global FIFO of long slices: wake-ups wait behind every hog, the hogs run longer.
    const fifo = { ...even, latencyP99Ratio: 6.309, cyclictestP99Ratio: 7.327, throughputRatio: 1.397 };
    const judged = judgeAgainstDefault(fifo, ["idle", "throughput", "mixed"], thresholds);
    expect(judged.admits).toEqual(["idle", "throughput"]);
    expect(judged.refused).toEqual([
      "not for mixed phases: p99 wake-up latency 6.80x the default's (request/response 6.309x, cyclictest 7.327x; at most 2x)",
    ]);
    // One load much worse is not hidden by the other: sqrt(1.057 * 3.504) = 1.92.
    expect(
      judgeAgainstDefault(
        { ...even, latencyP99Ratio: 1.057, cyclictestP99Ratio: 3.504 },
        ["latency"],
        thresholds,
      ).admits,
    ).toEqual(["latency"]);
    expect(
      judgeAgainstDefault({ ...even, latencyP99Ratio: 1.2, cyclictestP99Ratio: 3.6 }, ["latency"], thresholds)
        .admits,
    ).toEqual([]);
    // A latency policy that gives up throughput keeps its latency claim, not a mixed one.
    const reserved = { ...even, latencyP99Ratio: 0.098, cyclictestP99Ratio: 0.437, throughputRatio: 0.245 };
    expect(judgeAgainstDefault(reserved, ["latency", "mixed"], thresholds)).toMatchObject({
      admits: ["latency"],
      refused: ["not for mixed phases: CPU throughput 0.24x the default's (at least 0.8x)"],
    });
  });

  it("takes its thresholds from the caller", () => {
    const loose = { minWorkerShare: 0.1, maxP99Ratio: 10, minThroughputRatio: 0.2 };
    const fifo = { ...even, minShareRatio: 0.2, latencyP99Ratio: 6.3, cyclictestP99Ratio: 7.3 };
    expect(judgeAgainstDefault(fifo, ["mixed"], loose)).toEqual({ admits: ["mixed"], refused: [] });
  });
});
