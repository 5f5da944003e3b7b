import { z } from "zod";

// A batch of independent jobs of mixed lengths: stress-ng processes started together, each doing a
// fixed amount of CPU work (bogo operations of one method); each job's own report is read into its
// completion time, and the batch into the mean over its jobs.

/**
 * Bogo operations per job, in start order: two each of three lengths, the longest four times the
 * shortest, mixed so that a policy running jobs in the order they came is not handed shortest-first.
 */
export const BATCH_JOB_OPS = [300, 600, 150, 600, 150, 300];

export function batchJobArgs(ops: number): string[] {
  return ["--cpu", "1", "--cpu-method", "int64", "--cpu-ops", String(ops), "--metrics-brief"];
}

export const StressNgJob = z.object({
  stressor: z.string().min(1),
  bogoOps: z.number().int().nonnegative(),
  /** The stressor's own real time. */
  realSeconds: z.number().nonnegative(),
  /** From stress-ng's start to its end, as it reports it: the job's completion time. */
  completedSeconds: z.number().positive(),
});
export type StressNgJob = z.infer<typeof StressNgJob>;

/** One job's stress-ng --metrics-brief output (its `metrc:` row and `completed in` line). */
export function parseStressNgJob(text: string): StressNgJob {
  const row = /^stress-ng: metrc: \[\d+\] (\S+)\s+(\d+)\s+(\d+(?:\.\d+)?)\s/m.exec(text);
  const done = /^stress-ng: info: {2}\[\d+\] successful run completed in (\d+(?:\.\d+)?)s/m.exec(text);
  const parsed = StressNgJob.safeParse({
    stressor: row?.[1],
    bogoOps: row ? Number(row[2]) : undefined,
    realSeconds: row ? Number(row[3]) : undefined,
    completedSeconds: done ? Number(done[1]) : undefined,
  });
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    throw new Error(`stress-ng report: ${issue.path.join(".")}: ${issue.message}`);
  }
  return parsed.data;
}

/** The batch's figure: the mean completion time over its jobs. */
export function batchMeanCompletion(jobs: readonly StressNgJob[]): number {
  if (jobs.length === 0) throw new Error("a batch of no jobs");
  return jobs.reduce((sum, j) => sum + j.completedSeconds, 0) / jobs.length;
}
