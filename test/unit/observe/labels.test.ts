import { describe, expect, it } from "vitest";
import { scoreDetections, TraceLabels } from "../../../src/observe/labels.ts";

const at = Array.from({ length: 100 }, (_, i) => 1000 * (i + 1));
const labels = TraceLabels.parse({
  source: "synthetic",
  phases: [
    { start: 0, label: "idle" },
    { start: 30_500, label: "build" },
    { start: 60_500, label: "idle" },
  ],
  ignore: [{ start: 80_000, end: 85_000, reason: "other work" }],
});

describe("scoreDetections", () => {
  it("matches each boundary to the earliest detection in its window and counts the rest as false", () => {
    // Boundary windows start at samples 30 and 60; 31 matches (delay 1), 62 matches (delay 2),
    // 33 is a second alarm for the same boundary, 45 an alarm in a steady stretch, 82 is ignored.
    const score = scoreDetections(at, labels, [31, 33, 45, 62, 82]);
    expect(score).toEqual({
      truePositives: 2,
      falseNegatives: 0,
      falsePositives: 2,
      steadyFalsePositives: 1,
      delays: [1, 2],
      onsetDelays: [1],
      endDelays: [2],
      steadySamples: 100 - 14 - 6,
    });
  });

  it("counts a boundary with no detection close enough as missed", () => {
    const score = scoreDetections(at, labels, [20, 40]);
    expect(score.truePositives).toBe(0);
    expect(score.falseNegatives).toBe(2);
    expect(score.steadyFalsePositives).toBe(2);
  });

  it("under the strict rule takes only detections at most 3 s after the boundary", () => {
    // Boundaries at 30.5 s and 60.5 s; samples are at whole seconds (index i at i + 1 s).
    const strict = { kind: "seconds", after: 3 } as const;
    expect(scoreDetections(at, labels, [30, 62], strict).delays).toEqual([0, 2]);
    const late = scoreDetections(at, labels, [33, 63], strict);
    expect(late.truePositives).toBe(0);
    expect(late.falseNegatives).toBe(2);
    expect(late.falsePositives).toBe(2);
    // Before the boundary is never a hit under it (the lenient rule takes one window before).
    expect(scoreDetections(at, labels, [29], strict).truePositives).toBe(0);
    expect(scoreDetections(at, labels, [29]).truePositives).toBe(1);
  });
});
