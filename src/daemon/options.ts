import type { Config } from "../config/schema.ts";
import type { PipelineOptions } from "../observe/pipeline.ts";
import type { SamplerOptions } from "../observe/sampler.ts";

/** How many of the busiest cgroups each profile names. */
const TOP_CGROUPS = 5;

export function samplerOptions(config: Config): SamplerOptions {
  return {
    cgroupRoots: config.observe.cgroup_roots,
    cgroupMaxDepth: config.observe.cgroup_max_depth,
    topProcesses: config.observe.top_processes,
  };
}

export function pipelineOptions(config: Config): PipelineOptions {
  return {
    window: { topCgroups: TOP_CGROUPS, topProcesses: config.observe.top_processes },
    detect: {
      threshold: config.detect.threshold,
      tolerance: config.detect.tolerance,
      minDwell: config.detect.min_dwell_samples,
      confirm: config.detect.confirm_samples,
    },
  };
}
