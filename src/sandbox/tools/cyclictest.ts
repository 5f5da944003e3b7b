import { z } from "zod";
import { latencyFromCounts, type WakeupLatency } from "./latency.ts";
import type { ToolParser } from "./parser.ts";

// cyclictest (Debian's rt-tests) as a wake-up latency load: the command line for SCHED_OTHER
// threads (no -p, so it measures what ordinary tasks get), and its --json report read into
// percentiles from the per-thread histograms.

/** Histogram buckets are 1 us wide up to this bound; a later wake-up counts as an overflow. */
const HISTOGRAM_US = 20_000;

export function cyclictestArgs(o: {
  threads: number;
  intervalUs: number;
  seconds: number;
  json: string;
}): string[] {
  return [
    `--threads=${o.threads}`,
    `--interval=${o.intervalUs}`,
    `--duration=${o.seconds}`,
    `--histogram=${HISTOGRAM_US}`,
    `--json=${o.json}`,
    "--quiet",
  ];
}

const ThreadReport = z.looseObject({
  histogram: z.record(z.string().regex(/^\d+$/), z.number().int().nonnegative()),
  cycles: z.number().int().nonnegative(),
  max: z.number(),
});

export const CyclictestReport = z.looseObject({
  thread: z.record(z.string(), ThreadReport),
});
export type CyclictestReport = z.infer<typeof CyclictestReport>;

/** Percentiles over every thread's wake-ups; overflows (past the histogram) count at the max. */
export function cyclictestLatency(report: CyclictestReport): WakeupLatency {
  const counts = new Map<number, number>();
  for (const thread of Object.values(report.thread)) {
    let inHistogram = 0;
    for (const [us, count] of Object.entries(thread.histogram)) {
      counts.set(Number(us), (counts.get(Number(us)) ?? 0) + count);
      inHistogram += count;
    }
    const overflows = Math.max(0, thread.cycles - inHistogram);
    if (overflows > 0) counts.set(thread.max, (counts.get(thread.max) ?? 0) + overflows);
  }
  return latencyFromCounts(counts);
}

/** The report as cyclictest wrote it, or the reason it cannot be read. */
export function parseCyclictestJson(text: string): CyclictestReport {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (error) {
    throw new Error(`cyclictest --json report is not JSON: ${(error as Error).message}`);
  }
  const parsed = CyclictestReport.safeParse(raw);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    throw new Error(`cyclictest --json report: ${issue.path.join(".")}: ${issue.message}`);
  }
  return parsed.data;
}

/** cyclictest for a day: its --json report (the KPI's `output`) into p50/p99/max. */
export const cyclictestParser: ToolParser = {
  metrics: {
    p50_us: { label: "p50 us", better: "lower" },
    p99_us: { label: "p99 us", better: "lower" },
    max_us: { label: "max us", better: "lower" },
  },
  parse(output) {
    const latency = cyclictestLatency(parseCyclictestJson(output));
    if (latency.samples === 0) throw new Error("cyclictest measured no wake-up");
    return { p50_us: latency.p50Us, p99_us: latency.p99Us, max_us: latency.maxUs };
  },
};
