import { z } from "zod";
import { RESULT_MARKER } from "../types.ts";
import type { ToolParser } from "./parser.ts";

// Our own load generators (src/sandbox/loads/*.c) as tools of a day: each prints one
// `SCHEDCTL-RESULT {json}` report line, read here into its figures.

function reportOf<T extends z.ZodType>(load: string, schema: T, output: string): z.infer<T> {
  for (const line of output.split("\n")) {
    const at = line.indexOf(RESULT_MARKER);
    if (at < 0) continue;
    let value: unknown;
    try {
      value = JSON.parse(line.slice(at + RESULT_MARKER.length));
    } catch {
      continue;
    }
    const parsed = schema.safeParse(value);
    if (parsed.success) return parsed.data;
  }
  throw new Error(`no ${load} report in its output`);
}

const WakelatReport = z.object({
  load: z.literal("wakelat"),
  p50_us: z.number(),
  p99_us: z.number(),
  p999_us: z.number().optional(),
  rps: z.number(),
});

export const wakelatParser: ToolParser = {
  metrics: {
    p50_us: { label: "p50 us", better: "lower" },
    p99_us: { label: "p99 us", better: "lower" },
    p999_us: { label: "p99.9 us", better: "lower" },
    rps: { label: "req/s", better: "higher" },
  },
  parse(output) {
    const r = reportOf("wakelat", WakelatReport, output);
    return {
      p50_us: r.p50_us,
      p99_us: r.p99_us,
      rps: r.rps,
      ...(r.p999_us !== undefined && { p999_us: r.p999_us }),
    };
  },
};

const BuildsimReport = z.object({ load: z.literal("buildsim"), makespan_ms: z.number() });

export const buildsimParser: ToolParser = {
  metrics: { makespan_ms: { label: "makespan ms", better: "lower" } },
  parse: (output) => ({ makespan_ms: reportOf("buildsim", BuildsimReport, output).makespan_ms }),
};

const BatchsimReport = z.object({ load: z.literal("batchsim"), mean_completion_ms: z.number() });

export const batchsimParser: ToolParser = {
  metrics: { mean_completion_ms: { label: "mean done ms", better: "lower" } },
  parse: (output) => ({
    mean_completion_ms: reportOf("batchsim", BatchsimReport, output).mean_completion_ms,
  }),
};
