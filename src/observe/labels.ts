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
  /** The same, split: boundaries into a load, and ends (into `idle` or the trace's `end`). */
  onsetDelays: number[];
  endDelays: number[];
  /** Samples of steady stretches (outside boundary windows and ignored stretches). */
  steadySamples: number;
}

/**
 * When a detection counts as a boundary's: `windows` (the lenient rule), from one window before
 * the boundary's first window to `after` windows after it; `seconds`, at most `after` seconds
 * after the boundary itself and not before it.
 */
export type HitRule = { kind: "windows"; after: number } | { kind: "seconds"; after: number };

/** Labels that mean no load runs: a boundary into one of them is an end. */
const END_LABELS = new Set(["idle", "end"]);

/**
 * Scores detections against labelled boundaries. A boundary's first window is the first sample
 * at or after the phase start; a detection the rule accepts matches it (earliest first). Steady
 * stretches (for the false-change rate) are the samples more than one window before or five after
 * any boundary, whatever the rule. `at` holds the sample times, `detections` sample indexes.
 */
export function scoreDetections(
  at: readonly number[],
  labels: TraceLabels,
  detections: readonly number[],
  rule: HitRule = { kind: "windows", after: 5 },
): Scoring {
  const window = 5;
  // A boundary too close to the end of the trace to have been detectable is not judged.
  const boundaries = labels.phases
    .slice(1)
    .map((p) => ({ b: firstAtOrAfter(at, p.start), start: p.start, end: END_LABELS.has(p.label) }))
    .filter(({ b }) => b + window < at.length);
  const accepts = (d: number, b: number, start: number) =>
    rule.kind === "windows"
      ? d >= b - 1 && d <= b + rule.after
      : at[d]! >= start && at[d]! - start <= rule.after * 1000;
  const ignored = (i: number) => labels.ignore.some((r) => at[i]! >= r.start && at[i]! <= r.end);
  const near = (i: number) => boundaries.some(({ b }) => i >= b - 1 && i <= b + window);
  const used = new Set<number>();
  const delays: number[] = [];
  const onsetDelays: number[] = [];
  const endDelays: number[] = [];
  let falseNegatives = 0;
  for (const { b, start, end } of boundaries) {
    const hit = detections.find((d) => !used.has(d) && accepts(d, b, start));
    if (hit === undefined) {
      if (!ignored(b)) falseNegatives++;
      continue;
    }
    used.add(hit);
    const delay = Math.max(0, hit - b);
    delays.push(delay);
    (end ? endDelays : onsetDelays).push(delay);
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
    onsetDelays,
    endDelays,
    steadySamples,
  };
}

function firstAtOrAfter(at: readonly number[], time: number): number {
  const i = at.findIndex((t) => t >= time);
  return i < 0 ? at.length : i;
}
