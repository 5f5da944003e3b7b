// The feature names of a Profile, in a module of their own so the sampling path does not load
// the schema library (src/observe/types.ts re-exports them).

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
