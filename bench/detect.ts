// Replays the labelled trace corpus (test/fixtures/traces) through the Observe pipeline with the
// built-in configuration and scores the phase changes it reports against the labels.
//   npm run bench:detect [-- --verbose]
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { defaultConfig } from "../src/config/schema.ts";
import { pipelineOptions } from "../src/daemon/options.ts";
import { type Scoring, scoreDetections, TraceLabels } from "../src/observe/labels.ts";
import { ObservePipeline } from "../src/observe/pipeline.ts";
import { readTrace } from "../src/observe/trace.ts";

const corpus = join(import.meta.dirname, "../test/fixtures/traces");
const verbose = process.argv.includes("--verbose");
const options = pipelineOptions(defaultConfig());

const totals: Scoring = {
  truePositives: 0,
  falseNegatives: 0,
  falsePositives: 0,
  steadyFalsePositives: 0,
  delays: [],
  steadySamples: 0,
};
let steadySeconds = 0;
const recurrences = { same: 0, total: 0 };
const names = readdirSync(corpus)
  .filter((n) => n.endsWith(".jsonl") || n.endsWith(".jsonl.gz"))
  .sort();
console.log(`${"trace".padEnd(28)} samples  bounds  tp  fn  fp  delays`);
for (const name of names) {
  const base = name.slice(0, name.lastIndexOf(".jsonl"));
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
  const score = scoreDetections(at, labels, detections);
  const interval = (samples.at(-1)!.mono - samples[0]!.mono) / 1000 / Math.max(1, samples.length - 1);
  steadySeconds += score.steadySamples * interval;
  console.log(
    `${base.padEnd(28)} ${String(samples.length).padStart(7)} ${String(labels.phases.length - 1).padStart(7)} ${String(score.truePositives).padStart(3)} ${String(score.falseNegatives).padStart(3)} ${String(score.falsePositives).padStart(3)}  ${score.delays.join(",")}`,
  );
  totals.truePositives += score.truePositives;
  totals.falseNegatives += score.falseNegatives;
  totals.falsePositives += score.falsePositives;
  totals.steadyFalsePositives += score.steadyFalsePositives;
  totals.delays.push(...score.delays);
  totals.steadySamples += score.steadySamples;
  countRecurrences(labels, at, signatures);
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

const precision = totals.truePositives / Math.max(1, totals.truePositives + totals.falsePositives);
const recall = totals.truePositives / Math.max(1, totals.truePositives + totals.falseNegatives);
const f1 = precision + recall > 0 ? (2 * precision * recall) / (precision + recall) : 0;
const sorted = [...totals.delays].sort((a, b) => a - b);
const medianDelay = sorted.length ? sorted[(sorted.length - 1) >> 1]! : Number.NaN;
const perHour = totals.steadyFalsePositives / Math.max(1e-9, steadySeconds / 3600);
console.log(
  `\n${names.length} traces, ${totals.truePositives + totals.falseNegatives} boundaries, ${(steadySeconds / 3600).toFixed(2)} steady hours`,
);
console.log(
  `recurring phases given their first occurrence's signature: ${recurrences.same} of ${recurrences.total}`,
);
console.log(
  `precision=${precision.toFixed(3)} recall=${recall.toFixed(3)} delays(samples)=${sorted.join(",")}`,
);
console.log(
  `detect: f1=${f1.toFixed(3)} median_delay_samples=${medianDelay} false_changes_per_hour=${perHour.toFixed(2)}`,
);
