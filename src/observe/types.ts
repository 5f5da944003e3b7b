import { z } from "zod";

// The records the Observe stage produces. Later stages import these; never the reverse.

/** The features of a Profile, all rates or fractions over one window; missing signals are 0 and named in `lacks`. */
export const FEATURE_NAMES = [
  /** Busy CPU time / wall time / CPUs, 0..1. */
  "cpu_util",
  /** procs_running per CPU. */
  "runnable_per_cpu",
  /** Run-queue wait (schedstat run delay) per unit of CPU time actually run, ms/ms. */
  "run_delay_per_cpu_time",
  /** Context switches per second per CPU. */
  "ctxsw_per_sec_per_cpu",
  /** PSI "some" share of the window, 0..1. */
  "psi_cpu_some",
  "psi_io_some",
  "psi_memory_some",
  /** CPU share of the busiest cgroup among the sampled ones, 0..1. */
  "top_cgroup_share",
  /** procs_blocked per CPU. */
  "blocked_per_cpu",
  /** Processes created per second (fork rate: builds spawn many short tasks). */
  "forks_per_sec",
] as const;
export type FeatureName = (typeof FEATURE_NAMES)[number];

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
