import {
  FEATURE_NAMES,
  type Features,
  type PhaseChange,
  type Profile,
  type WorkloadClass,
} from "../../src/observe/types.ts";
import { Manifest } from "../../src/policies/types.ts";

// Fixtures for the Decide stage: a catalogue shaped like bpf/policies/*.json and profiles of the
// phases the autopilot day runs (idle, latency service under hogs, build, batch, mixed).

export const CATALOGUE: Manifest[] = [
  {
    name: "fifo",
    origin: "builtin",
    summary: "Global FIFO with long slices: fewest context switches",
    workloads: ["throughput"],
    tunables: {
      slice_us: { type: "int", min: 500, max: 100_000, default: 20_000, unit: "us", description: "slice" },
    },
    minKernel: "6.12",
  },
  {
    name: "vtime",
    origin: "builtin",
    summary: "Weighted virtual time: fair sharing by weight",
    workloads: ["mixed", "throughput"],
    tunables: {
      slice_us: { type: "int", min: 500, max: 100_000, default: 5_000, unit: "us", description: "slice" },
    },
    minKernel: "6.12",
  },
  {
    name: "latency",
    origin: "builtin",
    summary: "Short slices and wake-up preemption for interactive tasks",
    workloads: ["latency", "mixed"],
    tunables: {
      slice_us: { type: "int", min: 500, max: 20_000, default: 2_000, unit: "us", description: "slice" },
    },
    minKernel: "6.12",
  },
  {
    name: "throughput",
    origin: "builtin",
    summary: "Per-CPU queues, long slices, no preemption",
    workloads: ["throughput"],
    tunables: {},
    minKernel: "6.12",
  },
  {
    name: "cgroup-boost",
    origin: "builtin",
    summary: "Favour the tasks of the listed cgroups",
    workloads: ["mixed", "latency"],
    tunables: { cgroups: { type: "cgroups", maxItems: 4, default: [], description: "cgroups to favour" } },
    minKernel: "6.12",
  },
  {
    name: "batch-order",
    origin: "builtin",
    summary: "Order batch jobs by expected length",
    workloads: ["throughput"],
    tunables: {
      order: {
        type: "enum",
        options: ["shortest", "longest"],
        default: "shortest",
        description: "which jobs first",
      },
    },
    minKernel: "6.12",
  },
].map((m) => Manifest.parse(m));

const ZERO = Object.fromEntries(FEATURE_NAMES.map((f) => [f, 0])) as Features;

export function profile(
  cls: WorkloadClass,
  signature: string,
  extra: Partial<Pick<Profile, "topCgroups" | "topProcesses" | "at">> & { features?: Partial<Features> } = {},
): Profile {
  return {
    at: extra.at ?? 1_000_000,
    windowMs: 1000,
    features: { ...ZERO, ...extra.features },
    class: cls,
    signature,
    topCgroups: extra.topCgroups ?? [],
    topProcesses: extra.topProcesses ?? [],
    lacks: [],
  };
}

/** A latency service under CPU hogs, each in its own unit. */
export function serviceUnderHogs(signature = "sig-latency"): Profile {
  return profile("latency", signature, {
    features: { cpu_util: 0.95, runnable_per_cpu: 2.5, run_delay_per_cpu_time: 0.8, psi_cpu_some: 0.6 },
    topCgroups: [
      { path: "/batch.slice/hogs.service", cpuShare: 0.8, psiCpuSome: 0.3, tasks: 4 },
      { path: "/system.slice/api.service", cpuShare: 0.15, psiCpuSome: 0.7, psiCpuFull: 0.4, tasks: 3 },
    ],
    topProcesses: [
      { pid: 100, comm: "stress-ng-cpu", cpuShare: 0.4 },
      { pid: 200, comm: "api-server", cpuShare: 0.15 },
    ],
  });
}

/**
 * The same phase under a policy that serves the service: it waits for others half as much (its
 * own PSI "full", the KPI judged); its threads wait for each other more ("some"), which is not
 * held against the policy.
 */
export function serviceEased(latency: Profile = serviceUnderHogs()): Profile {
  return {
    ...latency,
    topCgroups: latency.topCgroups.map((c) =>
      c.path === "/system.slice/api.service" ? { ...c, psiCpuSome: 0.9, psiCpuFull: 0.2 } : c,
    ),
  };
}

export function change(to: Profile, drift: number, from?: Profile): PhaseChange {
  return {
    at: to.at,
    ...(from && { from }),
    to,
    drift,
    moved: [{ feature: "cpu_util", from: 0.05, to: to.features.cpu_util, score: drift }],
  };
}
