import { z } from "zod";
import { FEATURE_NAMES, type FeatureName } from "./features.ts";

// The records the Observe stage produces. Later stages import these; never the reverse.

export { FEATURE_NAMES, type FeatureName } from "./features.ts";

export const WorkloadClass = z.enum(["idle", "throughput", "latency", "io", "memory", "mixed"]);
export type WorkloadClass = z.infer<typeof WorkloadClass>;

export const Features = z.record(z.enum(FEATURE_NAMES), z.number());
export type Features = Record<FeatureName, number>;

export const CgroupShare = z.object({
  /** Path relative to the cgroup2 mount, starting with "/" (e.g. "/system.slice/api.service"). */
  path: z.string(),
  /** Share of all CPU time used in the window, 0..1. */
  cpuShare: z.number(),
  /** PSI cpu "some" of this cgroup over the window, 0..1 (0 when unavailable). */
  psiCpuSome: z.number(),
  /**
   * PSI cpu "full": the share of the window in which the cgroup had runnable tasks and none of
   * them ran (absent when the kernel gives no full line).
   */
  psiCpuFull: z.number().optional(),
  tasks: z.number().int(),
});
export type CgroupShare = z.infer<typeof CgroupShare>;

export const ProcessHint = z.object({
  pid: z.number().int(),
  /** The process's comm, length-limited; untrusted text from the workload. */
  comm: z.string().max(64),
  cpuShare: z.number(),
});
export type ProcessHint = z.infer<typeof ProcessHint>;

export const Profile = z.object({
  /** End of the window, ms since the epoch. */
  at: z.number(),
  windowMs: z.number(),
  features: Features,
  class: WorkloadClass,
  /** Stable across recurrences of the same phase: equal signatures mean "we have seen this". */
  signature: z.string(),
  topCgroups: z.array(CgroupShare),
  topProcesses: z.array(ProcessHint),
  /** Signals this host does not offer (e.g. "psi", "schedstat", "cgroup2"). */
  lacks: z.array(z.string()),
});
export type Profile = z.infer<typeof Profile>;

export const MovedFeature = z.object({
  feature: z.enum(FEATURE_NAMES),
  from: z.number(),
  to: z.number(),
  /** How far it moved, in units of the feature's normal spread. */
  score: z.number(),
});
export type MovedFeature = z.infer<typeof MovedFeature>;

export const PhaseChange = z.object({
  at: z.number(),
  /** The profile of the phase that ended (undefined for the first phase seen). */
  from: Profile.optional(),
  to: Profile,
  /** Overall drift score of the change (larger: a bigger change). */
  drift: z.number(),
  moved: z.array(MovedFeature),
});
export type PhaseChange = z.infer<typeof PhaseChange>;

// ---- Sample: raw cumulative counters at one instant, as collected (and as stored in traces). ----

/** One PSI line: the kernel's averages (percent) and the cumulative stall time in microseconds. */
export const PsiLine = z.object({ avg10: z.number(), avg60: z.number(), total: z.number() });
export type PsiLine = z.infer<typeof PsiLine>;

export const PsiResource = z.object({ some: PsiLine, full: PsiLine.optional() });
export type PsiResource = z.infer<typeof PsiResource>;

/** CPU time in clock ticks (USER_HZ) from /proc/stat: busy (everything but idle and iowait), idle, iowait. */
export const CpuTicks = z.object({ busy: z.number(), idle: z.number(), iowait: z.number() });
export type CpuTicks = z.infer<typeof CpuTicks>;

export const ProcStat = z.object({
  cpu: CpuTicks,
  perCpu: z.array(CpuTicks),
  /** Context switches since boot. */
  ctxt: z.number(),
  /** Processes created since boot. */
  forks: z.number(),
  /** Gauges at the instant of the read. */
  running: z.number(),
  blocked: z.number(),
});
export type ProcStat = z.infer<typeof ProcStat>;

export const LoadAvg = z.object({
  load1: z.number(),
  load5: z.number(),
  load15: z.number(),
  runnable: z.number(),
  threads: z.number(),
});
export type LoadAvg = z.infer<typeof LoadAvg>;

export const SchedCounters = z.object({
  /** Time tasks waited on a run queue, ns. */
  runDelayNs: z.number(),
  /** Time tasks ran, ns. */
  runNs: z.number(),
  timeslices: z.number(),
});
export type SchedCounters = z.infer<typeof SchedCounters>;

export const SchedStat = SchedCounters.extend({
  /**
   * system: /proc/schedstat (every task, per CPU). tasks: /proc/schedstat is missing, so these are
   * the collector's running sums of per-process /proc/PID/schedstat deltas (thread-group leaders
   * only: an approximation).
   */
  source: z.enum(["system", "tasks"]),
  perCpu: z.array(SchedCounters).optional(),
});
export type SchedStat = z.infer<typeof SchedStat>;

/**
 * Cumulative counters of one cgroup; optional fields are absent when the file is (controller off).
 * Memory and io (pressure, usage, counters) and the thread count are read on every 5th reading
 * of an active cgroup only; in between they are absent and the last values stand.
 */
export const CgroupSample = z.object({
  /** Relative to the cgroup2 mount, starting with "/". */
  path: z.string(),
  usageUs: z.number(),
  userUs: z.number(),
  systemUs: z.number(),
  periods: z.number().optional(),
  throttled: z.number().optional(),
  throttledUs: z.number().optional(),
  /** PSI totals, microseconds. */
  cpuSomeUs: z.number().optional(),
  cpuFullUs: z.number().optional(),
  memSomeUs: z.number().optional(),
  memFullUs: z.number().optional(),
  ioSomeUs: z.number().optional(),
  ioFullUs: z.number().optional(),
  memoryBytes: z.number().optional(),
  /** io.stat summed over devices. */
  ioReadBytes: z.number().optional(),
  ioWriteBytes: z.number().optional(),
  ioReadOps: z.number().optional(),
  ioWriteOps: z.number().optional(),
  /** Threads directly in this cgroup. */
  tasks: z.number().optional(),
});
export type CgroupSample = z.infer<typeof CgroupSample>;

export const ProcessSample = z.object({
  pid: z.number().int(),
  /** Untrusted text from the workload, exact (the kernel bounds comm to 15 bytes); clean it per medium with src/text/untrusted.ts. */
  comm: z.string().max(64),
  /** utime + stime, clock ticks, whole thread group. */
  cpuTicks: z.number(),
  /** Of those, the ticks used since the collector's previous reading (what it ranked by). */
  intervalTicks: z.number(),
  /** Start time in ticks since boot: tells a reused pid from the old process. */
  start: z.number(),
});
export type ProcessSample = z.infer<typeof ProcessSample>;

export const Sample = z.object({
  /** Wall clock, ms since the epoch. */
  at: z.number(),
  /** Monotonic ms, for intervals. */
  mono: z.number(),
  cpus: z.number().int().positive(),
  /** USER_HZ of the tick counters (100 on Linux). */
  hz: z.number().positive(),
  stat: ProcStat.optional(),
  loadavg: LoadAvg.optional(),
  psi: z
    .object({ cpu: PsiResource.optional(), memory: PsiResource.optional(), io: PsiResource.optional() })
    .optional(),
  schedstat: SchedStat.optional(),
  /**
   * The cgroups read this time whose counters moved (every cgroup when `full`): an absent cgroup
   * did not change, which keeps samples small on hosts with many idle cgroups.
   */
  cgroups: z.array(CgroupSample),
  full: z.boolean(),
  /** Cgroups that vanished since the previous sample. */
  removed: z.array(z.string()),
  /** The busiest processes of the last interval (cumulative counters; ranked by the collector). */
  processes: z.array(ProcessSample),
  /** Signals this host does not offer, as in Profile.lacks. */
  lacks: z.array(z.string()),
});
export type Sample = z.infer<typeof Sample>;
