import { createHash } from "node:crypto";
import type { Config } from "../config/schema.ts";
import type { ManagerEvent, Mode } from "../dbus/backend.ts";
import { isServiceUnit, targetCgroup, workloadKey, workUnits } from "../decide/candidates.ts";
import type { ChosenPolicy, Decider, Decision, StoredDecision } from "../decide/index.ts";
import type { ApplyRequest, DeployController, TransitionNotice } from "../deploy/controller.ts";
import { kpiRatio, kpisFromProfile } from "../deploy/kpis.ts";
import { BASELINE_SAMPLES } from "../deploy/machine.ts";
import type { CgroupKpi, DeploymentRecord, DeploymentStore } from "../deploy/types.ts";
import type { Journal } from "../journal/journal.ts";
import type { Logger } from "../log/logger.ts";
import { classify } from "../observe/classify.ts";
import type { PhaseChange, Profile } from "../observe/types.ts";
import type { PolicySource } from "../policies/catalogue.ts";
import type { PolicyCompiler } from "../policies/compile.ts";
import type { PolicyRef, PolicyWorkload, Tunables } from "../policies/types.ts";
import { requestFor } from "../verify/build.ts";
import type { Verdict, VerifyRequest } from "../verify/types.ts";
import type { LoopHandler, TickContext } from "./loop.ts";

// Decide -> Verify -> Deploy, driven by the daemon's one loop. A phase change starts a job
// (decide, then build and verify), each step's result re-enters the loop through
// `context.post`; only the deployment controller touches the kernel, and only with a hash
// whose verdict passed. The controller's transitions come back here to be journalled, turned
// into bus signals (after the kernel confirmed) and fed back to the decider as outcomes.

export interface AutopilotDeps {
  config: Config;
  log: Logger;
  journal: Journal;
  controller: DeployController;
  deployments: DeploymentStore;
  decider: Decider;
  compiler: PolicyCompiler;
  /** Built-in and stored generated policies, read at each use. */
  catalogue: () => PolicySource[];
  /** The Execution Verifier (verdicts cached by hash). */
  verify: (requests: VerifyRequest[], signal?: AbortSignal) => Promise<Verdict[]>;
  emit: (event: ManagerEvent) => void;
  now: () => number;
}

/** A candidate ready for the controller: its reference, verdict and build. */
export interface Prepared {
  ref: PolicyRef;
  verdict: Verdict;
  request?: ApplyRequest;
}

/** Refused candidates after which a phase stays on what it has. */
const MAX_REFUSALS_PER_PHASE = 2;
/**
 * Windows in a row of other work, beyond the detector's own confirmation, before the autopilot
 * decides anew without it: the detector, when it sees the change, reports it first.
 */
const UNNOTICED_GRACE_WINDOWS = 1;
/** A unit's CPU share from which its appearance counts as new work. */
const UNNOTICED_MIN_SHARE = 0.1;

/** Samples of a new phase needed before a policy chosen for it is swapped in (its baseline). */
const MIN_BASELINE_SAMPLES = 3;

export class Autopilot implements LoopHandler {
  readonly name = "autopilot";
  readonly #d: AutopilotDeps;
  #mode: Mode;
  #started = false;
  #job: AbortController | undefined;
  /** Why the latest job did not deploy, or what it is doing (for status). */
  #activity = "idle";
  /** Decisions by the hash they deployed, so outcomes reach the decider. */
  readonly #byHash = new Map<string, StoredDecision>();
  /** The hash under probation (its failure is recorded when probation ends otherwise). */
  #onProbation: { hash: string; deploymentId: number | undefined } | undefined;
  /** What was attached before the latest transition (the failing policy when one rolls back). */
  #lastPlaced: string | undefined;
  #rollingBackFrom = "";
  /** Profiles since the current phase began: the baseline a swap for this phase is judged against. */
  #phaseProfiles: Profile[] = [];
  /** The units at work in the phase the latest decision serves (empty: none at work). */
  #workUnits: string[] = [];
  /** Windows in a row whose work differs from #workUnits with no phase change reported. */
  #unnoticed = 0;
  /** Candidates refused by verification in the current phase (each refusal decides again). */
  #refusals = 0;
  /** A verified candidate waiting for enough samples of its phase to form a baseline. */
  #waiting: { job: AbortController; stored: StoredDecision; request: ApplyRequest } | undefined;

  constructor(deps: AutopilotDeps, mode: Mode) {
    this.#d = deps;
    this.#mode = mode;
    deps.controller.onTransition((notice) => this.#onTransition(notice));
  }

  get mode(): Mode {
    return this.#mode;
  }

  get activity(): string {
    return this.#activity;
  }

  /** The decision behind a deployed hash (this run's, else the newest stored one that matches). */
  decisionFor(ref: PolicyRef): StoredDecision | undefined {
    return this.#byHash.get(ref.hash);
  }

  /** Reconciles the kernel with the store and starts guarding; the first time the kernel may change. */
  async start(): Promise<void> {
    if (this.#started) return;
    this.#started = true;
    await this.#d.controller.start();
    if (this.#mode !== "auto") this.#d.controller.pause();
  }

  get started(): boolean {
    return this.#started;
  }

  async setMode(mode: Mode): Promise<void> {
    if (mode !== "observe") await this.start();
    this.#mode = mode;
    if (!this.#started) return;
    if (mode === "auto") {
      // Auto hands the kernel back to the autopilot: an operator's pin ends here.
      this.#d.controller.unpin();
      this.#d.controller.resume();
    } else this.#d.controller.pause();
    if (mode !== "auto") this.#cancel(`mode ${mode}`);
  }

  /** Every tick: the controller's probation guard and ejection watch. */
  onProfile(profile: Profile, context?: TickContext): void {
    this.#phaseProfiles = [...this.#phaseProfiles, profile].slice(-BASELINE_SAMPLES);
    if (!this.#started) return;
    this.#d.controller.watchProfile(profile);
    const waiting = this.#waiting;
    if (waiting && this.#phaseProfiles.length >= baselineNeeded(waiting.stored.decision)) {
      this.#waiting = undefined;
      this.#apply(waiting.job, waiting.stored, waiting.request);
    }
    if (context) this.#watchWork(profile, context);
  }

  /**
   * The detector can miss a change of work (a job starting inside the dwell of a short pause, or a
   * pause too short to be its own phase). Other units at work, or none left, for a few windows in
   * a row is a new phase for the autopilot all the same: it decides for the work as it is now.
   */
  #watchWork(profile: Profile, context: TickContext): void {
    // The detector's own report of this tick comes next and carries its drift (the LLM's cue).
    if (this.#mode !== "auto" || context.change) return;
    const now = workUnits(profile);
    const significant = workUnits(profile, UNNOTICED_MIN_SHARE);
    const changed =
      now.length === 0 ? this.#workUnits.length > 0 : !significant.every((u) => this.#workUnits.includes(u));
    this.#unnoticed = changed ? this.#unnoticed + 1 : 0;
    if (this.#unnoticed < this.#d.config.detect.confirm_samples + UNNOTICED_GRACE_WINDOWS) return;
    this.#unnoticed = 0;
    const cls = classify(profile.features);
    const key = workloadKey({ ...profile, class: cls });
    const to: Profile = { ...profile, class: cls, signature: `${cls}-work-${shortHash(key)}` };
    this.#d.log.info(
      { units: now, was: this.#workUnits, signature: to.signature },
      `the work changed with no phase change reported (${now.join(", ") || "no unit at work"}): deciding for it`,
    );
    this.onPhaseChange({ at: profile.at, to, drift: 0, moved: [] }, context);
  }

  onPhaseChange(change: PhaseChange, context: TickContext): void {
    const units = workUnits(change.to);
    if (this.#sameWork(units)) {
      // The same units still at work (a load that swings, or part of it winding down): a new
      // decision would only swap policies back and forth, and restart the baseline each time.
      this.#d.log.info(
        { signature: change.to.signature, units },
        `phase change within the same work (${units.join(", ")}): the decision for it stands`,
      );
      return;
    }
    this.#workUnits = units;
    this.#unnoticed = 0;
    // Only the new phase's samples may judge a policy chosen for it.
    this.#phaseProfiles = this.#phaseProfiles.slice(-1);
    this.#refusals = 0;
    this.#decideFor(change, context);
  }

  #decideFor(change: PhaseChange, context: TickContext): void {
    if (this.#mode !== "auto" || !this.#started) return;
    const state = this.#d.controller.state;
    if (state.pinned) {
      this.#activity = `operator pinned ${state.current?.ref.name ?? state.pinned}: not deciding`;
      return;
    }
    this.#cancel("a newer phase change");
    const job = new AbortController();
    this.#job = job;
    const signal = AbortSignal.any([job.signal, context.signal]);
    this.#activity = `deciding for ${change.to.class} (${change.to.signature})`;
    this.#d.log.info(
      {
        signature: change.to.signature,
        units: change.to.topCgroups
          .slice(0, 4)
          .map((c) => `${c.path} cpu ${pct(c.cpuShare)} psi ${pct(c.psiCpuSome)} tasks ${c.tasks}`),
      },
      this.#activity,
    );
    this.#d.decider.decide(change, signal).then(
      (stored) => context.post("decide", () => this.#decided(job, stored, change, context)),
      (error: Error) =>
        context.post("decide", () => {
          if (job !== this.#job) return;
          this.#activity = `decide failed: ${error.message}`;
          this.#d.log.error({ error: error.message }, `decide failed: ${error.message}`);
        }),
    );
  }

  #sameWork(units: readonly string[]): boolean {
    if (this.#mode !== "auto" || !this.#started || units.length === 0) return false;
    return units.every((u) => this.#workUnits.includes(u));
  }

  /** The loop stopped: cancel jobs; the controller restores the kernel default unless told to keep the policy. */
  async onStop(): Promise<void> {
    this.#cancel("stopping");
    if (this.#started) await this.#d.controller.stop();
  }

  /** Builds and verifies one variant (cached verdicts cost nothing); throws when it cannot be built here. */
  async prepare(
    policy: Extract<ChosenPolicy, { kind: "policy" }>,
    profileClass: string,
    signal?: AbortSignal,
  ): Promise<Prepared> {
    const source = this.#sourceOf(policy, profileClass);
    const request = requestFor(this.#d.compiler, source, policy.tunables);
    const [verdict] = await this.#d.verify([request], signal);
    this.#journalVerdict(verdict!);
    if (!verdict!.passed) return { ref: request.ref, verdict: verdict! };
    const built = await this.#d.compiler.compile(source, policy.tunables);
    return {
      ref: built.ref,
      verdict: verdict!,
      request: {
        ref: built.ref,
        loadable: {
          kind: "object",
          hash: built.ref.hash,
          objectPath: built.objectPath,
          opsName: built.opsName,
        },
        reason: "",
      },
    };
  }

  /** Remembers the decision behind a hash the operator (or the autopilot) deploys. */
  remember(hash: string, stored: StoredDecision): void {
    this.#byHash.set(hash, stored);
  }

  #decided(job: AbortController, stored: StoredDecision, change: PhaseChange, context: TickContext): void {
    if (job !== this.#job) return; // a newer phase change took over
    const { decision } = stored;
    this.#d.journal.record({
      type: "decision",
      policy: describePolicy(decision.policy),
      chooser: decision.chooser,
      confidence: decision.confidence,
      rationale: decision.rationale,
      signature: decision.signature,
    });
    if (decision.policy.kind === "default") {
      this.#job = undefined;
      this.#activity = `decided the kernel default for ${decision.signature}`;
      const current = this.#d.controller.state.current;
      if (!current) return;
      // A policy chosen for an earlier phase has no claim on this one: when in doubt, the default.
      const answer = this.#d.controller.release(
        `${decision.chooser} chose the kernel default for ${decision.signature}`,
      );
      if (answer.accepted) {
        this.#onProbation = undefined;
        this.#activity = `returning to the kernel default from ${current.ref.name}`;
      }
      this.#d.log.info(
        { policy: current.ref.name },
        answer.accepted
          ? `decision: kernel default; detaching ${current.ref.name}`
          : `decision: kernel default; ${current.ref.name} stays (${answer.reason})`,
      );
      return;
    }
    const policy = decision.policy;
    this.#activity = `verifying ${describePolicy(policy)}`;
    this.prepare(policy, decision.class, job.signal).then(
      (prepared) => context.post("verify", () => this.#verified(job, stored, prepared, change, context)),
      (error: Error) =>
        context.post("verify", () => {
          if (job !== this.#job) return;
          this.#job = undefined;
          this.#activity = `cannot build ${policy.name}: ${error.message}`;
          this.#d.log.error({ policy: policy.name, error: error.message }, this.#activity);
        }),
    );
  }

  #verified(
    job: AbortController,
    stored: StoredDecision,
    prepared: Prepared,
    change: PhaseChange,
    context: TickContext,
  ): void {
    if (job !== this.#job) return;
    this.#job = undefined;
    const { decision } = stored;
    // A verdict judged against the default admits the phase kinds its figures bore out.
    const admitted = prepared.verdict.admits?.includes(decision.class as PolicyWorkload) ?? true;
    if (!prepared.request || !admitted) {
      this.#activity = prepared.request
        ? `${prepared.ref.name} verified, but not for ${decision.class} phases (its sandbox run against the default)`
        : `${prepared.ref.name} refused at the ${prepared.verdict.stage} stage`;
      // A failed verdict never changes (it is cached by hash): never pick it again for this phase.
      this.#d.decider.recordOutcome({
        at: this.#d.now(),
        signature: decision.signature,
        class: decision.class,
        policy: decision.policy,
        kpiRatio: 1,
        passed: false,
        rolledBack: false,
        quarantined: true,
        decisionId: stored.id,
        ...(decision.workload && { workload: decision.workload }),
      });
      // The phase still wants a policy: decide again, the refused one now out of the running.
      if (this.#refusals < MAX_REFUSALS_PER_PHASE) {
        this.#refusals++;
        this.#decideFor(change, context);
      }
      return;
    }
    const request: ApplyRequest = {
      ...prepared.request,
      signature: decision.signature,
      ...judgedCgroup(decision, change.to),
      reason: `${decision.chooser}: ${decision.rationale}`.slice(0, 500),
    };
    const needed = baselineNeeded(decision);
    if (this.#phaseProfiles.length < needed) {
      this.#job = job; // still this phase's job: a newer phase change cancels it
      this.#waiting = { job, stored, request };
      this.#activity = `${request.ref.name} verified; waiting for ${needed} samples of the phase as its baseline`;
      return;
    }
    this.#apply(job, stored, request);
  }

  #apply(job: AbortController, stored: StoredDecision, request: ApplyRequest): void {
    if (job.signal.aborted) return;
    this.#job = undefined;
    const baseline = this.#phaseProfiles.map((p) => kpisFromProfile(p, request.cgroup));
    this.#byHash.set(request.ref.hash, stored);
    const answer = this.#d.controller.apply({ ...request, baseline });
    this.#activity = answer.accepted
      ? `deploying ${request.ref.name}`
      : `${request.ref.name} not deployed: ${answer.reason}`;
    if (!answer.accepted) this.#d.log.info({ policy: request.ref.name }, this.#activity);
  }

  #onTransition(n: TransitionNotice): void {
    const { journal, emit, log } = this.#d;
    const placed = n.state.current;
    if (n.from === "deploying" && n.to === "probation" && placed) {
      this.#onProbation = { hash: placed.ref.hash, deploymentId: n.state.deploymentId };
      journal.record({
        type: "deploy",
        policy: placed.ref.name,
        hash: placed.ref.hash,
        state: "probation",
        ...(n.state.probation?.signature ? { signature: n.state.probation.signature } : {}),
      });
      emit({ type: "policy-changed", policy: placed.ref.name, hash: placed.ref.hash, reason: n.reason });
      this.#activity = `${placed.ref.name} on probation`;
    } else if (n.from === "probation" && n.to === "active" && placed) {
      journal.record({ type: "deploy", policy: placed.ref.name, hash: placed.ref.hash, state: "active" });
      this.#outcomeAfterEffects(true);
      this.#activity = `${placed.ref.name} passed probation`;
    } else if (n.to === "rolling_back") {
      this.#rollingBackFrom = this.#lastPlaced ?? "";
      journal.record({
        type: "rollback",
        policy: this.#rollingBackFrom || "unknown",
        ...(placed ? { to: placed.ref.name } : {}),
        reason: n.reason,
      });
      if (n.from === "probation" || n.from === "deploying") this.#outcomeAfterEffects(false);
    } else if (n.from === "rolling_back" && (n.to === "active" || n.to === "fallback_default")) {
      emit({
        type: "rolled-back",
        from: this.#rollingBackFrom,
        to: n.to === "active" && placed ? placed.ref.name : "",
        reason: n.reason,
      });
      this.#activity = n.reason;
    }
    this.#lastPlaced = placed?.ref.name;
    log.debug({ from: n.from, to: n.to }, "autopilot saw a transition");
    emit({ type: "state" });
  }

  /** Feeds probation's verdict on the deployed decision back to the decider. */
  /**
   * The controller announces a transition before it carries out its effects, among them storing
   * the probation samples on the deployment row: the outcome is read once they are stored.
   */
  #outcomeAfterEffects(passed: boolean): void {
    const probation = this.#onProbation;
    this.#onProbation = undefined;
    if (probation) queueMicrotask(() => this.#outcome(passed, probation));
  }

  #outcome(passed: boolean, probation: { hash: string; deploymentId: number | undefined }): void {
    const stored = this.#byHash.get(probation.hash);
    if (!stored) return;
    const row =
      probation.deploymentId === undefined
        ? undefined
        : this.#d.deployments.getDeployment(probation.deploymentId);
    const { decision } = stored;
    this.#d.decider.recordOutcome({
      at: this.#d.now(),
      signature: decision.signature,
      class: decision.class,
      policy: decision.policy,
      kpiRatio: row ? deploymentKpiRatio(row) : passed ? 1 : 2,
      passed,
      rolledBack: !passed,
      quarantined: this.#d.deployments.isQuarantined(probation.hash, decision.signature),
      decisionId: stored.id,
      ...(decision.workload && { workload: decision.workload }),
      ...(!passed && row?.reason && { reason: row.reason.slice(0, 500) }),
      ...(/^[0-9a-f]{64}$/.test(probation.hash) && { hash: probation.hash }),
    });
  }

  #cancel(why: string): void {
    this.#waiting = undefined;
    if (!this.#job) return;
    this.#job.abort(new Error(`cancelled: ${why}`));
    this.#job = undefined;
  }

  #journalVerdict(verdict: Verdict): void {
    this.#d.journal.record({
      type: "verification",
      policy: verdict.policy.name,
      hash: verdict.hash,
      passed: verdict.passed,
      stage: verdict.stage,
      log: verdict.log.slice(0, 2000),
    });
  }

  #sourceOf(policy: Extract<ChosenPolicy, { kind: "policy" }>, profileClass: string): PolicySource {
    if (policy.source !== undefined) return generatedSource(policy.name, policy.source, profileClass);
    const found = this.#d.catalogue().find((p) => p.manifest.name === policy.name);
    if (!found) throw new Error(`no policy "${policy.name}" in the repository`);
    return found;
  }
}

/** A generated policy's source as the compiler takes it: no tunables, made for one class. */
export function generatedSource(name: string, source: string, workload: string): PolicySource {
  const workloads = ["idle", "throughput", "latency", "io", "memory", "mixed"].includes(workload)
    ? [workload as "latency"]
    : [];
  return {
    manifest: {
      name,
      origin: "generated",
      summary: `generated policy ${name}`,
      workloads,
      tunables: {},
      minKernel: "6.12",
    },
    source,
  };
}

/**
 * Samples of the phase to gather before the swap. A policy reused on a phase it served well is
 * put in place at once (its probation still judges it against what the phase showed before it);
 * one being tried waits for a fuller baseline.
 */
function baselineNeeded(decision: Decision): number {
  return decision.chooser === "reuse" ? 1 : MIN_BASELINE_SAMPLES;
}

function shortHash(text: string): string {
  return createHash("sha256").update(text).digest("hex").slice(0, 10);
}

function pct(x: number): string {
  return `${Math.round(x * 100)}%`;
}

export function describePolicy(policy: ChosenPolicy): string {
  if (policy.kind === "default") return "kernel default";
  const tunables = Object.entries(policy.tunables as Tunables)
    .map(([k, v]) => `${k}=${Array.isArray(v) ? v.join(",") : v}`)
    .join(" ");
  return tunables ? `${policy.name} (${tunables})` : policy.name;
}

/**
 * The cgroup a policy is judged by, and how: the one the decision names (a service, or what a
 * cgroup policy favours), else the unit doing the phase's work. Host-wide run delay is no judge
 * between sched_ext policies: measured in the VM, a batch whose mean completion fell by a third
 * under batch-order showed the same run delay per CPU time as under the kernel default.
 */
export function judgedCgroup(
  decision: Decision,
  profile: Profile,
): { cgroup: string; cgroupKpi: CgroupKpi } | Record<string, never> {
  const cgroup = decision.cgroup ?? targetCgroup(profile);
  return cgroup ? { cgroup, cgroupKpi: cgroupKpiFor(cgroup) } : {};
}

/** A service is judged by the time it waited for others; other work by the time any task waited. */
function cgroupKpiFor(cgroup: string): CgroupKpi {
  return isServiceUnit(cgroup) ? "cgroupPsiCpuFull" : "cgroupPsiCpuSome";
}

/** A deployment's KPI ratio, by the KPI its probation was judged on (its cgroup decides which). */
export function deploymentKpiRatio(row: Pick<DeploymentRecord, "baseline" | "probation" | "cgroup">): number {
  return kpiRatio(row.baseline, row.probation, row.cgroup ? cgroupKpiFor(row.cgroup) : undefined);
}

export type { Decision };
