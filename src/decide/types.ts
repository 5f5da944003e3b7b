import { z } from "zod";
import { WorkloadClass } from "../observe/types.ts";
import { PolicyOrigin, Tunables } from "../policies/types.ts";

// The records the Decide stage produces and consumes, and the small interfaces it needs from the
// rest of the system (persistence, the verifier). store/ implements the persistence ones.

/** What the host should run: the kernel's own scheduler, or one policy variant. */
export const ChosenPolicy = z.discriminatedUnion("kind", [
  z.object({ kind: z.literal("default") }),
  z.object({
    kind: z.literal("policy"),
    origin: PolicyOrigin,
    name: z.string().regex(/^[a-z][a-z0-9_-]{0,31}$/),
    tunables: Tunables,
    /** sched_ext C source, for generated policies only (repository policies are built from their files). */
    source: z.string().optional(),
    /** sha256 (hex) of the generated source. */
    sourceHash: z
      .string()
      .regex(/^[0-9a-f]{64}$/)
      .optional(),
  }),
]);
export type ChosenPolicy = z.infer<typeof ChosenPolicy>;

export const Chooser = z.enum(["reuse", "planner", "llm", "operator"]);
export type Chooser = z.infer<typeof Chooser>;

export const CandidateSummary = z.object({
  key: z.string(),
  policy: ChosenPolicy,
  /** Posterior mean of log(KPI ratio) (lower is better; 0: as good as the kernel default). */
  expectedLogRatio: z.number(),
  /** Outcomes seen for this candidate (this signature, plus the class's weighted in). */
  evidence: z.number(),
  /** Share of posterior draws in which this candidate was the best or within 5% of it. */
  winShare: z.number().min(0).max(1),
  excluded: z.string().optional(),
});
export type CandidateSummary = z.infer<typeof CandidateSummary>;

export const Decision = z.object({
  at: z.number(),
  signature: z.string(),
  class: WorkloadClass,
  policy: ChosenPolicy,
  chooser: Chooser,
  rationale: z.string(),
  confidence: z.number().min(0).max(1),
  /** The cgroup the policy favours, when the decision names one. */
  cgroup: z.string().optional(),
  /** Who does the phase's work (candidates.ts workloadKey): outcomes are shared by it across signatures. */
  workload: z.string().optional(),
  candidates: z.array(CandidateSummary),
  /** The LLM consultation that produced (or was tried for) this decision. */
  consultationId: z.number().int().optional(),
  /** Other hosts' outcomes (from the fleet store) this decision weighed, and how many hosts reported them. */
  fleet: z.object({ outcomes: z.number().int().min(1), hosts: z.number().int().min(1) }).optional(),
});
export type Decision = z.infer<typeof Decision>;

/**
 * What became of a deployed decision, fed back by the daemon after probation. `kpiRatio` is the
 * probation KPI over the baseline KPI, oriented so that lower is better (latency, makespan; for a
 * throughput KPI pass baseline/probation). The kernel default is 1 by definition.
 */
export const Outcome = z.object({
  at: z.number(),
  signature: z.string(),
  class: WorkloadClass,
  policy: ChosenPolicy,
  kpiRatio: z.number().positive(),
  passed: z.boolean(),
  rolledBack: z.boolean(),
  /** Deploy quarantined this policy for this signature: it is never picked again for it. */
  quarantined: z.boolean().default(false),
  decisionId: z.number().int().optional(),
  /** The decision's workload key: another signature of the same work learns from this outcome. */
  workload: z.string().optional(),
  /** Why probation failed, the policy was rolled back or quarantined. */
  reason: z.string().optional(),
  /** Content hash of the object deployed (this host compiled and verified it). */
  hash: z
    .string()
    .regex(/^[0-9a-f]{64}$/)
    .optional(),
  /** The host that reported it, when it came from the fleet (never stored locally). */
  fleetHost: z.string().optional(),
});
export type Outcome = z.infer<typeof Outcome>;
export type OutcomeInput = z.input<typeof Outcome>;

/** Outcome history, as decide needs it. */
export interface OutcomeHistory {
  addOutcome(outcome: Outcome): void;
  outcomesForSignature(signature: string): Outcome[];
  /** Outcomes of every signature of this class (the planner's shared evidence). */
  outcomesForClass(workloadClass: WorkloadClass): Outcome[];
}

/** The log of decisions taken; returns the stored decision's id. */
export interface DecisionLog {
  addDecision(decision: Decision): number;
}

/** decided: the LLM's decision is used; gave_up: no valid or verified answer within bounds; failed: the model could not be reached. */
export const ConsultationStatus = z.enum(["running", "decided", "gave_up", "failed"]);
export type ConsultationStatus = z.infer<typeof ConsultationStatus>;

/** One call to the model, as the audit trail keeps it (never the prompt itself, never the key). */
export const LlmCallRecord = z.object({
  consultationId: z.number().int().optional(),
  at: z.number(),
  stage: z.enum(["goal", "synthesis", "repair", "correction"]),
  provider: z.string(),
  model: z.string(),
  promptHash: z.string(),
  inputTokens: z.number().int().min(0),
  outputTokens: z.number().int().min(0),
  costUsd: z.number().min(0),
  latencyMs: z.number().min(0),
  /** "ok", or what went wrong (HTTP status, timeout, invalid reply). */
  result: z.string(),
});
export type LlmCallRecord = z.infer<typeof LlmCallRecord>;

export const Consultation = z.object({
  id: z.number().int(),
  signature: z.string(),
  startedAt: z.number(),
  status: ConsultationStatus,
  goal: z.string().optional(),
  decision: Decision.optional(),
  rationale: z.string().optional(),
  /** What probation said about the LLM's decision, once known. */
  outcome: z.string().optional(),
});
export type Consultation = z.infer<typeof Consultation>;

export interface LlmUsage {
  calls: number;
  tokens: number;
  costUsd: number;
}

/** The LLM audit trail; also the budget's memory, so a restart does not reset the budget. */
export interface ConsultationAudit {
  startConsultation(signature: string, at: number): number;
  finishConsultation(
    id: number,
    result: { status: ConsultationStatus; goal?: string; decision?: Decision; rationale: string },
  ): void;
  setConsultationOutcome(id: number, outcome: string): void;
  /** The latest consultation for this signature (the cache: never ask twice). */
  consultationFor(signature: string): Consultation | undefined;
  addCall(call: LlmCallRecord): void;
  usageSince(sinceMs: number): LlmUsage;
}

/** Everything decide persists; store/ implements it over SQLite. */
export interface DecideStore extends OutcomeHistory, DecisionLog, ConsultationAudit {}

/** A generated policy to check before anyone may deploy it. */
export interface GeneratedCandidate {
  name: string;
  source: string;
}

export interface VerifierReport {
  passed: boolean;
  /** The stage reached (e.g. "compile", "static", "kernel-verifier", "sandbox"). */
  stage: string;
  /** What went wrong (compiler errors, verifier log excerpt), fed back to the LLM for repair. */
  log: string;
}

/** The Execution Verifier, injected: the daemon passes verify's real implementation. */
export interface CandidateVerifier {
  verify(candidate: GeneratedCandidate, signal?: AbortSignal): Promise<VerifierReport>;
}
