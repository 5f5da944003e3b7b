import { readFileSync, writeFileSync } from "node:fs";
import { TraceLabels } from "../../src/observe/labels.ts";
import { readTrace } from "../../src/observe/trace.ts";
import type { Sample } from "../../src/observe/types.ts";

// Live traces are recorded on a shared machine where other work starts and stops on its own.
// Those are real phase changes the labels do not know about, so the stretches around them are
// left out of scoring. They are found in the trace itself: the process hints say how much CPU
// went to processes that are not the recorded loads.
//   scripts/run node test/helpers/foreign-load.ts test/fixtures/traces/NAME.jsonl

/** The loads record-live.sh runs (stress-ng, the compiles, cyclictest, hackbench, perf bench, rt-app, sysbench, their shells). */
const OURS = [
  "stress-ng",
  "cc1",
  "gcc",
  "as",
  "collect2",
  "ld",
  "make",
  "cyclictest",
  "bash",
  "sh",
  "hackbench",
  "perf",
  "sched-messaging",
  "rt-app",
  "sysbench",
  "timeout",
];
/** A change of this many CPUs' worth of other work marks a foreign transition. */
const STEP_CPUS = 0.3;
/** Samples left out on each side of a transition. */
const MARGIN = 3;

function isOurs(comm: string): boolean {
  return OURS.some((name) => comm === name || comm.startsWith(`${name}-`) || comm.startsWith(`${name} `));
}

/** CPUs used by processes that are not ours, per sample (from the interval each one reports). */
export function foreignCpus(samples: Sample[]): number[] {
  return samples.map((s, i) => {
    const seconds = i === 0 ? 1 : (s.mono - samples[i - 1]!.mono) / 1000;
    const ticks = s.processes.filter((p) => !isOurs(p.comm)).reduce((sum, p) => sum + p.intervalTicks, 0);
    return ticks / s.hz / seconds;
  });
}

/** Stretches [start, end] (sample times) around the points where foreign work changed level. */
export function foreignStretches(samples: Sample[]): { start: number; end: number }[] {
  const f = foreignCpus(samples);
  const med = (a: number[]) => [...a].sort((x, y) => x - y)[a.length >> 1] ?? 0;
  const out: { start: number; end: number }[] = [];
  for (let i = 3; i + 3 <= f.length; i++) {
    if (Math.abs(med(f.slice(i, i + 3)) - med(f.slice(i - 3, i))) < STEP_CPUS) continue;
    const start = samples[Math.max(0, i - MARGIN)]!.at;
    const end = samples[Math.min(samples.length - 1, i + MARGIN)]!.at;
    const last = out.at(-1);
    if (last && start <= last.end) last.end = end;
    else out.push({ start, end });
  }
  return out;
}

if (import.meta.main) {
  for (const tracePath of process.argv.slice(2)) {
    const labelsPath = tracePath.replace(/\.jsonl(\.gz)?$/, ".labels.json");
    const labels = TraceLabels.parse(JSON.parse(readFileSync(labelsPath, "utf8")));
    const { samples } = readTrace(tracePath);
    const ignore = foreignStretches(samples).map((r) => ({
      ...r,
      reason: "other work on the shared machine changed level",
    }));
    writeFileSync(labelsPath, `${JSON.stringify({ ...labels, ignore }, null, 1)}\n`);
    const ignoredSamples = samples.filter((s) => ignore.some((r) => s.at >= r.start && s.at <= r.end)).length;
    console.log(
      `${labelsPath}: ${ignore.length} stretches, ${ignoredSamples} of ${samples.length} samples left out`,
    );
  }
}
