// Replays the labelled trace corpus (test/fixtures/traces) through the Observe pipeline with the
// built-in configuration and scores the phase changes it reports against the labels, under two
// hit rules: the lenient one (a change from one window before a boundary's first window to five
// after) and the strict one (a change at most 3 s after the boundary itself).
//   npm run bench:detect [-- --verbose] [-- --corpus DIR]
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { defaultConfig } from "../src/config/schema.ts";
import { pipelineOptions } from "../src/daemon/options.ts";
import { type HitRule, type Scoring, scoreDetections, TraceLabels } from "../src/observe/labels.ts";
import { ObservePipeline } from "../src/observe/pipeline.ts";
import { readTrace } from "../src/observe/trace.ts";

const corpusArg = process.argv.indexOf("--corpus");
const corpus =
  corpusArg > 0 ? process.argv[corpusArg + 1]! : join(import.meta.dirname, "../test/fixtures/traces");
const verbose = process.argv.includes("--verbose");
const options = pipelineOptions(defaultConfig());
const LENIENT: HitRule = { kind: "windows", after: 5 };
const STRICT: HitRule = { kind: "seconds", after: 3 };

const empty = (): Scoring => ({
  truePositives: 0,
  falseNegatives: 0,
  falsePositives: 0,
  steadyFalsePositives: 0,
  delays: [],
  onsetDelays: [],
  endDelays: [],
  steadySamples: 0,
});
const totals = { lenient: empty(), strict: empty() };
let steadySeconds = 0;
const recurrences = { same: 0, total: 0 };
const names = readdirSync(corpus)
  .filter((n) => n.endsWith(".labels.json"))
  .map((n) => n.slice(0, -".labels.json".length))
  .sort();
console.log(`${"trace".padEnd(20)} samples bounds ignored  tp fn fp  tp3s fn3s fp3s  delays`);
for (const base of names) {
  const name = [`${base}.jsonl`, `${base}.jsonl.gz`].find((n) => existsSync(join(corpus, n)));
  if (!name)
    throw new Error(`${base}.labels.json in ${corpus} has no ${base}.jsonl or ${base}.jsonl.gz beside it`);
  const labels = TraceLabels.parse(JSON.parse(readFileSync(join(corpus, `${base}.labels.json`), "utf8")));
  const { samples, problems } = readTrace(join(corpus, name));
  for (const p of problems) console.log(`  ${name}:${p.line}: ${p.message}`);
  const pipeline = new ObservePipeline(options);
  const detections: number[] = [];
  const signatures: (string | undefined)[] = [];
  samples.forEach((sample, i) => {
    const step = pipeline.push(sample);
    signatures.push(step?.profile.signature);
    if (step?.change?.from) {
      detections.push(i);
      if (verbose) {
        const moved = step.change.moved.map((m) => `${m.feature}:${m.score}`).join(" ");
        console.log(
          `  #${i} ${step.change.from.signature} -> ${step.change.to.signature} drift=${step.change.drift} ${moved}`,
        );
      }
    }
  });
  const at = samples.map((s) => s.at);
  const lenient = scoreDetections(at, labels, detections, LENIENT);
  const strict = scoreDetections(at, labels, detections, STRICT);
  const interval = (samples.at(-1)!.mono - samples[0]!.mono) / 1000 / Math.max(1, samples.length - 1);
  steadySeconds += lenient.steadySamples * interval;
  const ignored = samples.filter((s) => labels.ignore.some((r) => s.at >= r.start && s.at <= r.end)).length;
  const cols = [
    base.padEnd(20),
    String(samples.length).padStart(7),
    String(labels.phases.length - 1).padStart(6),
    String(ignored).padStart(7),
    String(lenient.truePositives).padStart(3),
    String(lenient.falseNegatives).padStart(2),
    String(lenient.falsePositives).padStart(2),
    String(strict.truePositives).padStart(5),
    String(strict.falseNegatives).padStart(4),
    String(strict.falsePositives).padStart(4),
  ];
  console.log(`${cols.join(" ")}  ${lenient.delays.join(",")}`);
  add(totals.lenient, lenient);
  add(totals.strict, strict);
  countRecurrences(labels, at, signatures);
}

function add(total: Scoring, score: Scoring): void {
  total.truePositives += score.truePositives;
  total.falseNegatives += score.falseNegatives;
  total.falsePositives += score.falsePositives;
  total.steadyFalsePositives += score.steadyFalsePositives;
  total.delays.push(...score.delays);
  total.onsetDelays.push(...score.onsetDelays);
  total.endDelays.push(...score.endDelays);
  total.steadySamples += score.steadySamples;
}

/**
 * A phase label that occurs more than once in a trace (the same build run twice) should get the
 * same signature each time: the most common signature over the second half of each occurrence.
 */
function countRecurrences(labels: TraceLabels, at: number[], signatures: (string | undefined)[]): void {
  const byLabel = new Map<string, string[]>();
  labels.phases.forEach((phase, k) => {
    const end = labels.phases[k + 1]?.start ?? Number.POSITIVE_INFINITY;
    const inside = at.flatMap((t, i) => (t >= phase.start && t < end ? [i] : []));
    const settled = inside.slice(inside.length >> 1).map((i) => signatures[i]);
    const counts = new Map<string, number>();
    for (const sig of settled) if (sig) counts.set(sig, (counts.get(sig) ?? 0) + 1);
    const top = [...counts].sort((a, b) => b[1] - a[1])[0]?.[0];
    if (top) byLabel.set(phase.label, [...(byLabel.get(phase.label) ?? []), top]);
  });
  if (verbose) for (const [label, sigs] of byLabel) console.log(`  ${label}: ${sigs.join(" ")}`);
  for (const sigs of byLabel.values()) {
    for (let k = 1; k < sigs.length; k++) {
      recurrences.total++;
      if (sigs[k] === sigs[0]) recurrences.same++;
    }
  }
}

function f1(score: Scoring): { precision: number; recall: number; f1: number } {
  const precision = score.truePositives / Math.max(1, score.truePositives + score.falsePositives);
  const recall = score.truePositives / Math.max(1, score.truePositives + score.falseNegatives);
  return {
    precision,
    recall,
    f1: precision + recall > 0 ? (2 * precision * recall) / (precision + recall) : 0,
  };
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted.length ? sorted[(sorted.length - 1) >> 1]! : Number.NaN;
}

const lenient = f1(totals.lenient);
const strict = f1(totals.strict);
const perHour = totals.lenient.steadyFalsePositives / Math.max(1e-9, steadySeconds / 3600);
const { lenient: all } = totals;
console.log(
  `\n${names.length} traces, ${all.truePositives + all.falseNegatives} boundaries judged, ${(steadySeconds / 3600).toFixed(2)} steady hours`,
);
console.log(
  `recurring phases given their first occurrence's signature: ${recurrences.same} of ${recurrences.total}`,
);
console.log(
  `lenient (-1..+5 windows): precision=${lenient.precision.toFixed(3)} recall=${lenient.recall.toFixed(3)} false=${all.falsePositives} (steady ${all.steadyFalsePositives})`,
);
console.log(
  `strict (<= 3 s after the boundary): precision=${strict.precision.toFixed(3)} recall=${strict.recall.toFixed(3)} false=${totals.strict.falsePositives}`,
);
console.log(
  `delays (samples after the first window): onsets=${[...all.onsetDelays].sort((a, b) => a - b).join(",")} ends=${[...all.endDelays].sort((a, b) => a - b).join(",")}`,
);
console.log(
  `detect: f1=${lenient.f1.toFixed(3)} f1_3s=${strict.f1.toFixed(3)} median_delay_samples=${median(all.delays)} onset_delay_samples=${median(all.onsetDelays)} end_delay_samples=${median(all.endDelays)} false_changes_per_hour=${perHour.toFixed(2)}`,
);
