import { z } from "zod";

// `perf bench sched messaging` (hackbench's groups of senders and receivers, as perf carries it)
// and `perf bench sched pipe` (two tasks waking each other through a pipe): command lines and
// their reports read into figures.

export function perfMessagingArgs(o: { groups: number; loops: number }): string[] {
  return ["bench", "sched", "messaging", `--group=${o.groups}`, `--nr_loops=${o.loops}`];
}

export function perfPipeArgs(o: { loops: number }): string[] {
  return ["bench", "sched", "pipe", `--loop=${o.loops}`];
}

export const PerfBenchReport = z.object({
  benchmark: z.enum(["sched/messaging", "sched/pipe"]),
  totalSeconds: z.number().positive(),
  /** pipe only: one round trip's time. */
  usecsPerOp: z.number().positive().optional(),
});
export type PerfBenchReport = z.infer<typeof PerfBenchReport>;

/** perf bench's default (human) format: `# Running 'sched/pipe' benchmark:`, `Total time: S [sec]`, ... */
export function parsePerfBench(text: string): PerfBenchReport {
  const number = (re: RegExp) => {
    const m = re.exec(text);
    return m ? Number(m[1]) : undefined;
  };
  const parsed = PerfBenchReport.safeParse({
    benchmark: /^# Running '([^']+)' benchmark:/m.exec(text)?.[1],
    totalSeconds: number(/^\s*Total time: (\d+(?:\.\d+)?) \[sec\]/m),
    usecsPerOp: number(/^\s*(\d+(?:\.\d+)?) usecs\/op/m),
  });
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    throw new Error(`perf bench report: ${issue.path.join(".")}: ${issue.message}`);
  }
  return parsed.data;
}
