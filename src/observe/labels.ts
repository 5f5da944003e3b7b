import { z } from "zod";

// Labels of a recorded trace (NAME.labels.json beside NAME.jsonl): when each phase began, and
// stretches to leave out of scoring (another load on a shared machine that the recording did not
// control). Used by the detector's tests and benchmark.

export const TraceLabels = z.object({
  source: z.enum(["live", "synthetic"]),
  description: z.string().optional(),
  /** When and on which kernel a live trace was recorded. */
  recorded: z.string().optional(),
  host: z.string().optional(),
  /** Phase starts, wall clock ms (the Samples' `at`), in order; the first is the trace's first phase. */
  phases: z.array(z.object({ start: z.number(), label: z.string() })).min(1),
  ignore: z.array(z.object({ start: z.number(), end: z.number(), reason: z.string() })).default([]),
});
export type TraceLabels = z.infer<typeof TraceLabels>;

export interface Scoring {
  truePositives: number;
  falseNegatives: number;
  /** Detections that matched no boundary (outside ignored stretches). */
  falsePositives: number;
  /** Of those, the ones in steady stretches (not just after a boundary). */
  steadyFalsePositives: number;
  /** Delay of each matched detection, in samples after the boundary's first window. */
  delays: number[];
  /** Samples of steady stretches (outside boundary windows and ignored stretches). */
  steadySamples: number;
}

/**
 * Scores detections against labelled boundaries. A boundary's first window is the first sample
 * at or after the phase start; a detection from one window before it to `window` windows after
 * matches it (earliest first). `at` holds the sample times, `detections` sample indexes.
 */
export function scoreDetections(
  at: readonly number[],
  labels: TraceLabels,
  detections: readonly number[],
  window = 5,
): Scoring {
  // A boundary too close to the end of the trace to have been detectable is not judged.
  const boundaries = labels.phases
    .slice(1)
    .map((p) => firstAtOrAfter(at, p.start))
    .filter((b) => b + window < at.length);
  const ignored = (i: number) => labels.ignore.some((r) => at[i]! >= r.start && at[i]! <= r.end);
  const near = (i: number) => boundaries.some((b) => i >= b - 1 && i <= b + window);
  const used = new Set<number>();
  const delays: number[] = [];
  let falseNegatives = 0;
  for (const b of boundaries) {
    const hit = detections.find((d) => !used.has(d) && d >= b - 1 && d <= b + window);
    if (hit === undefined) {
      if (!ignored(b)) falseNegatives++;
      continue;
    }
    used.add(hit);
    delays.push(Math.max(0, hit - b));
  }
  const unmatched = detections.filter((d) => !used.has(d) && !ignored(d));
  const falsePositives = unmatched.length;
  const steadyFalsePositives = unmatched.filter((d) => !near(d)).length;
  let steadySamples = 0;
  for (let i = 0; i < at.length; i++) if (!near(i) && !ignored(i)) steadySamples++;
  return {
    truePositives: delays.length,
    falseNegatives,
    falsePositives,
    steadyFalsePositives,
    delays,
    steadySamples,
  };
}

function firstAtOrAfter(at: readonly number[], time: number): number {
  const i = at.findIndex((t) => t >= time);
  return i < 0 ? at.length : i;
}
