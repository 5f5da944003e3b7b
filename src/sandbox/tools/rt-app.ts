import { z } from "zod";
import { latencyFromCounts, type WakeupLatency } from "./latency.ts";

// rt-app (Debian's rt-app) as a wake-up latency load: two SCHED_OTHER task sets written as its
// JSON, and its per-thread logs (one row per timer activation) read into wake-up latency and slack.

/**
 * "service": many threads, short bursts (80-300 us) at irregular intervals (each thread cycles
 * through periods of 1.9-7.1 ms). "heavy": fewer threads whose requests carry 2-5 ms of work.
 */
export type RtAppTaskSet = "service" | "heavy";

const SETS: Record<RtAppTaskSet, { threads: number; runUs: number[]; periodUs: number[] }> = {
  service: {
    threads: 8,
    runUs: [80, 150, 300, 120, 220],
    periodUs: [2300, 3700, 5300, 1900, 7100, 2900, 4300],
  },
  heavy: { threads: 4, runUs: [2000, 3500, 5000], periodUs: [12_000, 19_000, 25_000, 15_000] },
};
/** Phases per thread: each thread walks the tables from its own offset, so arrivals do not line up. */
const PHASES = 3;

/** The JSON rt-app reads; its logs go to `<logDir>/rt-<thread>-<n>.log`. */
export function rtAppConfig(o: { set: RtAppTaskSet; seconds: number; logDir: string }): string {
  const set = SETS[o.set];
  const tasks: Record<string, unknown> = {};
  for (let t = 0; t < set.threads; t++) {
    const phases: Record<string, unknown> = {};
    for (let p = 0; p < PHASES; p++) {
      phases[`p${p}`] = {
        // runtime (wall time) rather than run (a calibrated loop count): no calibration at start.
        runtime: set.runUs[(t + p) % set.runUs.length],
        timer: { ref: "unique", period: set.periodUs[(t * 2 + p) % set.periodUs.length], mode: "relative" },
      };
    }
    tasks[`${o.set}${t}`] = { loop: -1, phases };
  }
  return JSON.stringify({
    global: {
      duration: o.seconds,
      calibration: 100,
      default_policy: "SCHED_OTHER",
      logdir: o.logDir,
      log_basename: "rt",
      log_size: 4,
      lock_pages: false,
    },
    tasks,
  });
}

const COLUMNS = [
  "idx",
  "perf",
  "run",
  "period",
  "start",
  "end",
  "rel_st",
  "slack",
  "c_duration",
  "c_period",
  "wu_lat",
];

const Row = z.object({
  /** Which thread log the row came from (files are read concatenated). */
  log: z.number().int().nonnegative(),
  slack: z.number().int(),
  wu_lat: z.number().int().nonnegative(),
  c_period: z.number().int().nonnegative(),
});
type Row = z.infer<typeof Row>;

export interface RtAppFigures extends WakeupLatency {
  /** Median slack (time left before the next activation once the burst is done), in us. */
  slackP50Us: number;
  /** Activations whose burst ended after the next one was due (negative slack), as a fraction. */
  missed: number;
}

/** The rows of one or more rt-app thread logs (as the files are, concatenated). */
export function parseRtAppLogs(text: string): Row[] {
  const rows: Row[] = [];
  let header: string[] | undefined;
  let log = -1;
  for (const [n, line] of text.split("\n").entries()) {
    const fields = line.trim().split(/\s+/).filter(Boolean);
    if (fields.length === 0 || fields[0] === "#") continue;
    if (fields[0] === "#idx") {
      header = [fields[0].slice(1), ...fields.slice(1)];
      log++;
      const missing = COLUMNS.filter((c) => !header!.includes(c));
      if (missing.length > 0) throw new Error(`rt-app log line ${n + 1}: no column ${missing.join(", ")}`);
      continue;
    }
    if (!header) throw new Error(`rt-app log line ${n + 1}: a row before the #idx header`);
    if (fields.length !== header.length)
      throw new Error(`rt-app log line ${n + 1}: ${fields.length} fields, the header has ${header.length}`);
    const parsed = Row.safeParse({
      ...Object.fromEntries(header.map((name, i) => [name, Number(fields[i])])),
      log,
    });
    if (!parsed.success) {
      const issue = parsed.error.issues[0]!;
      throw new Error(`rt-app log line ${n + 1}: ${issue.path.join(".")}: ${issue.message}`);
    }
    // A phase cut short by the run's end never armed its timer (c_period 0): no wake-up to count.
    if (parsed.data.c_period > 0) rows.push(parsed.data);
  }
  if (rows.length === 0) throw new Error("rt-app logs hold no activation");
  return rows;
}

/**
 * Each row carries one timer activation. A burst that ends past the next activation (negative
 * slack) leaves that activation nothing to sleep for: rt-app logs its wake-up latency as 0, but
 * it started late by the overrun, and that is what it counts as here.
 */
export function rtAppFigures(rows: readonly Row[]): RtAppFigures {
  const counts = new Map<number, number>();
  rows.forEach((r, i) => {
    const before = rows[i - 1];
    const overrun = before && before.log === r.log ? Math.max(0, -before.slack) : 0;
    const us = r.wu_lat > 0 ? r.wu_lat : overrun;
    counts.set(us, (counts.get(us) ?? 0) + 1);
  });
  const slack = rows.map((r) => r.slack).sort((a, b) => a - b);
  return {
    ...latencyFromCounts(counts),
    slackP50Us: slack[Math.ceil(0.5 * slack.length) - 1]!,
    missed: rows.filter((r) => r.slack < 0).length / rows.length,
  };
}
