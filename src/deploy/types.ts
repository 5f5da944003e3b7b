import { z } from "zod";
import type { Loadable as KernelLoadable } from "../kernel/types.ts";
import { PolicyRef } from "../policies/types.ts";
import type { Verdict } from "../verify/types.ts";

// The deployment controller's records: its persisted state, the KPIs it guards, the log of
// its transitions and deployments, and the quarantine the decide stage reads.

export const DeployPhase = z.enum([
  /** Nothing of ours attached; the kernel default schedules. */
  "idle",
  /** A swap to a new policy is in flight. */
  "deploying",
  /** The new policy runs; its KPIs are compared with the pre-swap baseline. */
  "probation",
  /** The policy passed probation (or was restored as known-good). */
  "active",
  /** A swap back to the last known-good policy (or the default) is in flight. */
  "rolling_back",
  /** A return to the kernel default the autopilot chose (no failure) is in flight. */
  "releasing",
  /** Back on the kernel default after a failure with no known-good policy to restore. */
  "fallback_default",
]);
export type DeployPhase = z.infer<typeof DeployPhase>;

export const Loadable = z.discriminatedUnion("kind", [
  z.object({ kind: z.literal("object"), hash: z.string(), objectPath: z.string(), opsName: z.string() }),
  z.object({ kind: z.literal("process"), hash: z.string(), argv: z.array(z.string()), opsName: z.string() }),
]);
// Keep the zod copy and the kernel's type in step.
export type Loadable = z.infer<typeof Loadable> & KernelLoadable;

export const Kpis = z.object({
  /** PSI cpu "some" share over the sample window, 0..1. */
  psiCpuSome: z.number(),
  /** schedstat run delay per unit of CPU time, ms/ms. */
  runDelayPerCpuTime: z.number(),
  /** The targeted cgroup's PSI cpu "some" share, when a decision names one. */
  cgroupPsiCpuSome: z.number().optional(),
  /** The targeted cgroup's PSI cpu "full" share (its work waiting with none of it running). */
  cgroupPsiCpuFull: z.number().optional(),
});
export type Kpis = z.infer<typeof Kpis>;
export type KpiName = keyof Kpis;

/**
 * Which of the targeted cgroup's pressures judges a probation. A service by "full": time it had
 * work and none of it ran, i.e. it waited for others (a policy may order the service's own
 * threads, as a messenger stepping aside for its workers, without being blamed). Other work by
 * "some": time any of its tasks waited, which falls as jobs finish sooner.
 */
export const CgroupKpi = z.enum(["cgroupPsiCpuSome", "cgroupPsiCpuFull"]);
export type CgroupKpi = z.infer<typeof CgroupKpi>;

/** A policy the controller attached (or may restore). */
export const Placed = z.object({ ref: PolicyRef, loadable: Loadable });
export type Placed = z.infer<typeof Placed>;

export const Probation = z.object({
  startedAt: z.number(),
  until: z.number(),
  baseline: z.array(Kpis),
  samples: z.array(Kpis),
  signature: z.string().optional(),
  cgroup: z.string().optional(),
  cgroupKpi: CgroupKpi.optional(),
});
export type Probation = z.infer<typeof Probation>;

export const ControllerState = z.object({
  phase: DeployPhase,
  /** What is attached now (or being attached while deploying). */
  current: Placed.optional(),
  /** The last policy that passed probation: the rollback target. */
  lastGood: Placed.optional(),
  probation: Probation.optional(),
  /** The deployment row this swap belongs to. */
  deploymentId: z.number().int().optional(),
  /** The kernel's enable_seq right after our attach: a change means someone else attached. */
  enableSeq: z.number().optional(),
  paused: z.boolean(),
  /** A hash the operator pinned: the autopilot does not replace it. */
  pinned: z.string().optional(),
  /** The latest KPI samples: the baseline for the next swap. */
  recent: z.array(Kpis),
  /** Why the last transition happened. */
  reason: z.string(),
  since: z.number(),
});
export type ControllerState = z.infer<typeof ControllerState>;

export const Outcome = z.enum([
  "in_probation",
  "passed",
  "rolled_back",
  "ejected",
  "swap_failed",
  "superseded",
]);
export type Outcome = z.infer<typeof Outcome>;

export interface DeploymentRecord {
  id?: number;
  hash: string;
  policy: string;
  signature: string | undefined;
  cgroup: string | undefined;
  startedAt: number;
  endedAt: number | undefined;
  outcome: Outcome;
  reason: string;
  /** The kernel's own reason when it disabled the policy. */
  kernelReason: string | undefined;
  gapMs: number | undefined;
  baseline: Kpis[];
  probation: Kpis[];
}

export interface TransitionRecord {
  at: number;
  from: DeployPhase;
  to: DeployPhase;
  event: string;
  reason: string;
  hash: string | undefined;
}

export interface QuarantineEntry {
  hash: string;
  policy: string;
  signature: string;
  at: number;
  reason: string;
}

/** What the decide stage reads: policies refused for a workload signature. */
export interface QuarantineReader {
  isQuarantined(hash: string, signature: string): boolean;
  quarantined(signature: string): QuarantineEntry[];
}

/** Deploy's persistence (store/ implements it). */
export interface DeploymentStore extends QuarantineReader {
  loadState(): ControllerState | undefined;
  saveState(state: ControllerState): void;
  appendTransition(record: TransitionRecord): void;
  /** Inserts (no id) or updates (id) a deployment row; returns its id. */
  saveDeployment(record: DeploymentRecord): number;
  getDeployment(id: number): DeploymentRecord | undefined;
  /** Counts one more probation failure of hash under signature; returns the new count. */
  addProbationFailure(hash: string, signature: string): number;
  quarantine(entry: QuarantineEntry): void;
}

/** Deploy asks verify's cache: only a hash with a passing verdict is ever attached. */
export interface VerdictLookup {
  getVerdict(hash: string): Verdict | undefined;
}

export interface DeployConfig {
  probationSeconds: number;
  regressionRatio: number;
  quarantineAfter: number;
  keepPolicyOnStop: boolean;
}
