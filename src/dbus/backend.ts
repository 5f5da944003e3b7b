import { z } from "zod";
import { Profile } from "../observe/types.ts";
import { Manifest, PolicyOrigin, Tunables } from "../policies/types.ts";

// What the D-Bus surface needs from the daemon. The daemon implements ManagerBackend; the
// service (service.ts) only translates between it and the bus, and the clients (CLI, MCP) parse
// the same schemas back out of the JSON documents the methods return.

export const Mode = z.enum(["auto", "observe", "manual"]);
export type Mode = z.infer<typeof Mode>;

/** The kernel's own word (/sys/kernel/sched_ext/state), "unsupported" when it has no sched_ext. */
export const SchedExtState = z.enum(["enabled", "disabled", "enabling", "disabling", "unsupported"]);
export type SchedExtState = z.infer<typeof SchedExtState>;

export const ActivePolicy = z.object({
  name: z.string(),
  origin: PolicyOrigin,
  hash: z.string(),
  tunables: Tunables,
  /** Wall-clock ms when the kernel reported it enabled. */
  since: z.number(),
  /** Deployment state: "probation" until its KPIs held, then "active". */
  state: z.string(),
});
export type ActivePolicy = z.infer<typeof ActivePolicy>;

export const DecisionSummary = z.object({
  at: z.number(),
  policy: z.string(),
  /** reuse, planner, llm or operator. */
  chooser: z.string(),
  rationale: z.string(),
  confidence: z.number(),
  /** What became of it: deployed, kept, rolled back, refused, ... (empty while pending). */
  outcome: z.string(),
});
export type DecisionSummary = z.infer<typeof DecisionSummary>;

export const LlmBudget = z.object({
  provider: z.string(),
  /** disabled, idle, consulting or error. */
  state: z.string(),
  callsLeftHour: z.number().int(),
  callsLeftDay: z.number().int(),
  tokensLeftDay: z.number().int(),
  spentUsdToday: z.number(),
});
export type LlmBudget = z.infer<typeof LlmBudget>;

export const PhaseInfo = z.object({
  class: z.string(),
  signature: z.string(),
  since: z.number(),
});
export type PhaseInfo = z.infer<typeof PhaseInfo>;

/** The shared fleet store (PostgreSQL): advisory knowledge from other hosts. */
export const FleetStatus = z.object({
  /** off: no [fleet] url (or it was refused, see summary); offline: configured, not reachable. */
  state: z.enum(["off", "connected", "offline"]),
  /** One line for status displays. */
  summary: z.string(),
  database: z.string().optional(),
  hostId: z.string().optional(),
  /** Wall-clock ms of the last successful sync (0: never). */
  lastSyncAt: z.number(),
  /** What came from the fleet: other hosts' outcomes for this kernel and CPU class. */
  outcomes: z.number().int(),
  quarantines: z.number().int(),
  hosts: z.number().int(),
  objects: z.number().int(),
  /** This host's outcomes sent, and those waiting for the database. */
  sent: z.number().int(),
  pending: z.number().int(),
});
export type FleetStatus = z.infer<typeof FleetStatus>;

export const Status = z.object({
  version: z.string(),
  mode: Mode,
  schedExt: z.object({
    state: SchedExtState,
    /** The attached scheduler's ops name as the kernel reports it (ours or someone else's). */
    ops: z.string().nullable(),
  }),
  activePolicy: ActivePolicy.nullable(),
  phase: PhaseInfo.nullable(),
  profile: Profile.nullable(),
  lastDecisions: z.array(DecisionSummary),
  llm: LlmBudget,
  fleet: FleetStatus.optional(),
  /** Wall-clock ms when the daemon started, and how many samples it has taken since. */
  startedAt: z.number(),
  samples: z.number().int(),
});
export type Status = z.infer<typeof Status>;

export const PolicyInfo = Manifest.extend({
  /** The newest verdict for its default variant: pass, fail or unverified. */
  verdict: z.enum(["pass", "fail", "unverified"]),
  active: z.boolean(),
});
export type PolicyInfo = z.infer<typeof PolicyInfo>;

export const HistoryKind = z.enum(["phase", "decision", "llm", "verification", "deploy", "rollback", "mode"]);
export type HistoryKind = z.infer<typeof HistoryKind>;

export const HistoryEntry = z.object({
  at: z.number(),
  kind: HistoryKind,
  /** One line a person reads. */
  summary: z.string(),
  policy: z.string().optional(),
  phase: z.string().optional(),
  signature: z.string().optional(),
  verdict: z.string().optional(),
});
export type HistoryEntry = z.infer<typeof HistoryEntry>;

export const Verdict = z.object({
  name: z.string(),
  hash: z.string(),
  passed: z.boolean(),
  /** The last stage reached: compile, static, verifier, sandbox. */
  stage: z.string(),
  /** Why it failed (or what the last stage said), an excerpt. */
  log: z.string(),
  figures: z.record(z.string(), z.number()),
  /** The same loads under the kernel default, in the same boot, and the candidate over them. */
  baseline: z.record(z.string(), z.number()).optional(),
  againstDefault: z.record(z.string(), z.number()).optional(),
  /** The workloads it may be deployed for (its claims that its figures bore out). */
  admits: z.array(z.string()).optional(),
  /** The kernel whose vmlinux.h it was compiled against, when not the host's own. */
  compiledAgainst: z.string().optional(),
  /** Each stage's time, ms. */
  timings: z.record(z.string(), z.number()).optional(),
});
export type Verdict = z.infer<typeof Verdict>;

export const Explanation = z.object({
  policy: ActivePolicy.nullable(),
  decision: DecisionSummary.nullable(),
  /** The profile that triggered the decision. */
  profile: Profile.nullable(),
  verdict: Verdict.nullable(),
  /** The reasoning as lines a person reads, most important first. */
  lines: z.array(z.string()),
});
export type Explanation = z.infer<typeof Explanation>;

export const SwitchResult = z.object({
  policy: z.string(),
  hash: z.string(),
  /** The deployment state after the swap (normally "probation"). */
  state: z.string(),
  message: z.string(),
});
export type SwitchResult = z.infer<typeof SwitchResult>;

export const RollbackResult = z.object({
  /** What was running before (null: the kernel default). */
  from: z.string().nullable(),
  /** What runs now (null: the kernel default). */
  to: z.string().nullable(),
  reason: z.string(),
});
export type RollbackResult = z.infer<typeof RollbackResult>;

/** The published properties; the service diffs successive snapshots into PropertiesChanged. */
export interface ManagerProperties {
  mode: Mode;
  /** The policy the kernel runs ("" when none of ours is attached). */
  activePolicy: string;
  /** The current phase's class ("" before the first profile). */
  phase: string;
  schedExtState: SchedExtState;
  llmBudget: LlmBudget;
  version: string;
}

export type ManagerEvent =
  | { type: "phase-changed"; phase: string; signature: string; drift: number }
  | { type: "policy-changed"; policy: string; hash: string; reason: string }
  | { type: "rolled-back"; from: string; to: string; reason: string }
  /** Something behind the properties may have moved; the service re-reads them. */
  | { type: "state" };

/** Why a backend call failed; the service maps each kind to a D-Bus error name. */
export type BackendErrorKind = "invalid" | "not-found" | "refused" | "failed";

export class BackendError extends Error {
  override readonly name = "BackendError";
  readonly kind: BackendErrorKind;

  constructor(kind: BackendErrorKind, message: string) {
    super(message);
    this.kind = kind;
  }
}

/**
 * The daemon as the bus sees it. Reads must be cheap (they serve every `schedctl status`);
 * changing calls may take long (a verification runs the sandbox) and must leave the host with
 * a working scheduler whatever happens. Throw BackendError for refusals the caller should read.
 */
export interface ManagerBackend {
  properties(): ManagerProperties;
  status(): Status;
  listPolicies(): PolicyInfo[];
  history(limit: number): HistoryEntry[];
  explain(): Explanation;
  setMode(mode: Mode): Promise<void>;
  switchPolicy(name: string, tunables: Tunables): Promise<SwitchResult>;
  rollback(): Promise<RollbackResult>;
  /** A catalogue name, or an absolute path to a policy source the daemon can read. */
  verifyPolicy(nameOrPath: string): Promise<Verdict>;
  /** Verifies source handed over the bus; when it passes it joins the catalogue as generated. */
  createPolicy(name: string, source: string): Promise<Verdict>;
  /** Re-reads the configuration (as on SIGHUP). */
  reload(): Promise<void>;
  /** Calls listener for each event until the returned function is called. */
  subscribe(listener: (event: ManagerEvent) => void): () => void;
}
