import { z } from "zod";
import { Manifest, PolicyOrigin, PolicyWorkload, Tunables } from "./types.ts";

/*
 * The policy repository: what schedctl knows about policies and what they did, growing as the
 * daemon learns. store/ implements it (src/store/policies.ts) in SQLite; stages receive it.
 *
 *   policies       one row per policy name: origin, manifest, hash of its source (or binary)
 *   versions       one row per compiled variant: content hash -> policy + tunables
 *   verifications  each verification stage's result for a hash (verify writes)
 *   deployments    each time a hash was attached: state, start/end, why it ended (deploy writes)
 *   outcomes       policy x workload signature -> measured effect (deploy/decide write)
 *
 * Searchable by workload class: policiesForWorkload("latency") returns the policies whose
 * manifests name that class, best measured outcomes for that class first.
 */

export const PolicyRecord = z.object({
  name: z.string(),
  origin: PolicyOrigin,
  sourceHash: z.string(),
  manifest: Manifest,
  updatedAt: z.number(),
});
export type PolicyRecord = z.infer<typeof PolicyRecord>;

export const VersionRecord = z.object({
  hash: z.string(),
  policy: z.string(),
  tunables: Tunables,
  createdAt: z.number(),
});
export type VersionRecord = z.infer<typeof VersionRecord>;

export const VerificationRecord = z.object({
  hash: z.string(),
  stage: z.string(),
  passed: z.boolean(),
  log: z.string(),
  figures: z.record(z.string(), z.union([z.number(), z.string(), z.boolean()])).optional(),
  at: z.number(),
});
export type VerificationRecord = z.infer<typeof VerificationRecord>;

export const DeploymentRecord = z.object({
  id: z.number().int(),
  hash: z.string(),
  state: z.string(),
  startedAt: z.number(),
  endedAt: z.number().optional(),
  reason: z.string().optional(),
});
export type DeploymentRecord = z.infer<typeof DeploymentRecord>;

export const OutcomeRecord = z.object({
  hash: z.string(),
  policy: z.string(),
  signature: z.string(),
  workloadClass: PolicyWorkload,
  /** Measured effects, e.g. { latency_p99_ratio: 0.8, throughput_ratio: 1.02 }. */
  effect: z.record(z.string(), z.number()),
  /** One number to rank by: higher is better (the writer's choice of how to combine effects). */
  score: z.number(),
  at: z.number(),
});
export type OutcomeRecord = z.infer<typeof OutcomeRecord>;

export interface PolicyRepository {
  /** Inserts or updates a policy (a new source hash or manifest replaces the old). */
  upsertPolicy(manifest: Manifest, sourceHash: string, at: number): void;
  getPolicy(name: string): PolicyRecord | undefined;
  listPolicies(): PolicyRecord[];
  /** Policies for a workload class, those with the best mean outcome score for it first. */
  policiesForWorkload(workloadClass: z.infer<typeof PolicyWorkload>): PolicyRecord[];

  /** Records a compiled variant (idempotent by hash); its policy must exist. */
  addVersion(version: VersionRecord): void;
  getVersion(hash: string): VersionRecord | undefined;

  recordVerification(result: VerificationRecord): void;
  /** Every stage's latest result for a hash, in the order they were recorded. */
  verifications(hash: string): VerificationRecord[];

  /** Opens a deployment record and returns its id. */
  startDeployment(hash: string, state: string, at: number): number;
  updateDeployment(id: number, change: { state: string; endedAt?: number; reason?: string }): void;
  recentDeployments(limit: number): DeploymentRecord[];

  recordOutcome(outcome: OutcomeRecord): void;
  outcomes(filter: { signature?: string; workloadClass?: string; policy?: string }): OutcomeRecord[];
}
