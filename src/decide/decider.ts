import type { Config } from "../config/schema.ts";
import type { Logger } from "../log/logger.ts";
import { type PhaseChange, type Profile, WorkloadClass } from "../observe/types.ts";
import type { Manifest } from "../policies/types.ts";
import {
  type Candidate,
  candidatesFor,
  DEFAULT_KEY,
  defaultCandidate,
  noUnitAtWork,
  policyKey,
  workloadKey,
} from "./candidates.ts";
import { consult } from "./consult.ts";
import type { Llm } from "./llm/types.ts";
import { type LocalPlan, plan } from "./planner.ts";
import type { Random } from "./random.ts";
import {
  type CandidateVerifier,
  type ChosenPolicy,
  type DecideStore,
  type Decision,
  Outcome,
  type OutcomeInput,
} from "./types.ts";

// The Decide stage, per phase change: (1) reuse what already worked for this signature; (2) the
// local planner; (3) the LLM, only when the phase drifted far, the planner is unsure, this
// signature was never asked about, and the budget allows. Every decision is stored with who made
// it and why; outcomes come back through recordOutcome and teach the planner.

export interface DeciderOptions {
  decide: Config["decide"];
  llmConfig: Pick<Config["llm"], "drift_threshold" | "max_repair_rounds" | "max_corrections">;
  /** Probation failures of a policy on one signature before it is never picked again for it. */
  quarantineAfter: number;
  /** The policy repository's manifests (read on every decision, so new ones count at once). */
  catalogue: () => readonly Manifest[];
  store: DecideStore;
  /** The LLM client, or why there is none ("disabled: no provider configured"). */
  llm: Llm | { disabled: string };
  /** Checks generated policies; without one the LLM may only pick repository policies. */
  verifier?: CandidateVerifier | undefined;
  random: Random;
  now: () => number;
  logger: Logger;
}

export interface StoredDecision {
  id: number;
  decision: Decision;
}

export interface LlmStatus {
  enabled: boolean;
  /** One line for status displays, e.g. "disabled: no provider configured" or "openai gpt-x: ready". */
  summary: string;
  provider?: string;
  model?: string;
  breaker?: string;
  callsLastHour?: number;
  callsLastDay?: number;
  tokensLastDay?: number;
  costLastDayUsd?: number;
}

export class Decider {
  readonly #o: DeciderOptions;
  /** Consultations this process has under way (a "running" row not among them died with a crash). */
  readonly #inFlight = new Set<number>();

  constructor(options: DeciderOptions) {
    this.#o = options;
  }

  /** The whole flow for one phase change; may consult the LLM (cancellable through `signal`). */
  async decide(change: PhaseChange, signal?: AbortSignal): Promise<StoredDecision> {
    const local = this.planLocally(change);
    if (!local.llmReason) return this.#store(local.decision);
    const llm = this.#o.llm as Llm;
    const profile = change.to;
    const consultationId = this.#o.store.startConsultation(profile.signature, this.#o.now());
    this.#inFlight.add(consultationId);
    const avoid = local.decision.candidates.filter((c) => c.excluded).map((c) => c.key);
    try {
      const result = await consult(llm, {
        change,
        catalogue: this.#o.catalogue(),
        avoid,
        consultationId,
        maxCorrections: this.#o.llmConfig.max_corrections,
        maxRepairRounds: this.#o.llmConfig.max_repair_rounds,
        verifier: this.#o.verifier,
        ...(signal && { signal }),
      });
      if (result.kind === "gave_up") {
        const decision = fallback(local.decision, consultationId, `LLM gave up (${result.rationale})`);
        this.#o.store.finishConsultation(consultationId, {
          status: "gave_up",
          ...(result.goal && { goal: result.goal.optimise }),
          rationale: result.rationale,
        });
        this.#o.logger.warn({ signature: profile.signature, consultationId }, result.rationale);
        return this.#store(decision);
      }
      const decision: Decision = {
        at: this.#o.now(),
        signature: profile.signature,
        class: profile.class,
        policy: result.policy,
        chooser: "llm",
        rationale: result.rationale,
        confidence: result.confidence,
        ...(result.cgroup && { cgroup: result.cgroup }),
        candidates: local.decision.candidates,
        consultationId,
      };
      this.#o.store.finishConsultation(consultationId, {
        status: "decided",
        goal: result.goal.optimise,
        decision,
        rationale: result.rationale,
      });
      return this.#store(decision);
    } catch (error) {
      const why = (error as Error).message;
      this.#o.store.finishConsultation(consultationId, { status: "failed", rationale: why });
      this.#o.logger.warn(
        { signature: profile.signature, consultationId, error: why },
        "LLM consultation failed",
      );
      return this.#store(fallback(local.decision, consultationId, `LLM consultation failed (${why})`));
    } finally {
      this.#inFlight.delete(consultationId);
    }
  }

  /**
   * Steps 1 and 2 only, synchronously and storing nothing: the decision without the LLM, and why
   * the LLM would be asked (undefined when it would not). decide() starts with it; the daemon may
   * use it to show what it would do while a consultation runs.
   */
  planLocally(change: PhaseChange): { decision: Decision; llmReason: string | undefined } {
    const profile = change.to;
    const store = this.#o.store;
    const own = this.#ownOutcomes(profile);
    // cgroups are watched and no unit is at work (a daemon starting, a pause between jobs): the
    // CPU went to the kernel or to us, nothing a policy could serve better.
    const candidates = noUnitAtWork(profile) ? [defaultCandidate()] : this.#candidates(profile, own);
    const classWide = store.outcomesForClass(profile.class);
    const local = plan(profile, candidates, own, classWide, {
      quarantineAfter: this.#o.quarantineAfter,
      classWeight: this.#o.decide.class_weight,
      random: this.#o.random,
    });
    const workload = workloadKey(profile);
    const fleet = fleetUsed(candidates, [...own, ...classWide]);
    const withContext = (d: Decision): Decision =>
      fleet
        ? {
            ...d,
            workload,
            fleet,
            rationale: `${d.rationale}; fleet knowledge: ${fleet.outcomes} outcome(s) from ${fleet.hosts} other host(s)`,
          }
        : { ...d, workload };
    const reused = this.#reusable(profile, own, local);
    if (reused) return { decision: withContext(reused), llmReason: undefined };
    const cached = this.#cachedLlmDecision(profile, local);
    if (cached) return { decision: withContext(cached), llmReason: undefined };
    const decision = withContext(this.#planned(profile, local));
    const skip = this.#whyNotAsk(change, local);
    if (skip)
      return {
        decision: { ...decision, rationale: `${decision.rationale}; no LLM: ${skip}` },
        llmReason: undefined,
      };
    return {
      decision,
      llmReason: `drift ${round(change.drift)}, planner only ${pct(local.confidence)} sure`,
    };
  }

  /** Feeds back what probation (or a rollback, or a quarantine) said about a deployed decision. */
  recordOutcome(input: OutcomeInput): void {
    const outcome = Outcome.parse(input);
    this.#o.store.addOutcome(outcome);
    const consultation = this.#o.store.consultationFor(outcome.signature);
    if (consultation?.decision && policyKey(consultation.decision.policy) === policyKey(outcome.policy)) {
      const verdict =
        outcome.passed && !outcome.rolledBack ? "passed" : outcome.rolledBack ? "rolled back" : "failed";
      this.#o.store.setConsultationOutcome(
        consultation.id,
        `${verdict} probation, KPI ratio ${outcome.kpiRatio.toFixed(3)}${outcome.quarantined ? ", quarantined" : ""}`,
      );
    }
  }

  /** An operator's explicit choice, stored like any other decision. */
  recordOperatorDecision(
    profile: Profile,
    policy: ChosenPolicy,
    rationale: string,
    cgroup?: string,
  ): StoredDecision {
    return this.#store({
      at: this.#o.now(),
      signature: profile.signature,
      class: profile.class,
      policy,
      chooser: "operator",
      rationale: `operator: ${rationale}`,
      confidence: 1,
      ...(cgroup && { cgroup }),
      candidates: [],
    });
  }

  llmStatus(): LlmStatus {
    const llm = this.#o.llm;
    if ("disabled" in llm) return { enabled: false, summary: llm.disabled };
    const refusal = llm.refusal();
    const status: LlmStatus = {
      enabled: true,
      summary: `${llm.provider} ${llm.model}: ${refusal ?? "ready"} (planner first; LLM only on drift above ${this.#o.llmConfig.drift_threshold})`,
      provider: llm.provider,
      model: llm.model,
    };
    if (llm.status) {
      const { breaker, usage } = llm.status();
      Object.assign(status, {
        breaker,
        callsLastHour: usage.hour.calls,
        callsLastDay: usage.day.calls,
        tokensLastDay: usage.day.tokens,
        costLastDayUsd: usage.day.costUsd,
      });
    }
    return status;
  }

  #store(decision: Decision): StoredDecision {
    const id = this.#o.store.addDecision(decision);
    this.#o.logger.info(
      {
        decisionId: id,
        signature: decision.signature,
        chooser: decision.chooser,
        policy: policyKey(decision.policy),
      },
      decision.rationale,
    );
    return { id, decision };
  }

  /**
   * What this phase has taught: the outcomes of the same work (the same units busy) under any
   * signature, oldest first. Two sights of one phase often get two signatures, and two phases of
   * different work can share one: a build, and the build beside a service that waits for it, had
   * the same signature in the VM, and the build's policy reused there starved the service.
   * A signature's outcomes stored with no workload (an older store) still count for it.
   */
  #ownOutcomes(profile: Profile): Outcome[] {
    const store = this.#o.store;
    const workload = workloadKey(profile);
    const own = store
      .outcomesForSignature(profile.signature)
      .filter((o) => o.workload === undefined || o.workload === workload);
    const kin = WorkloadClass.options.flatMap((c) =>
      store.outcomesForClass(c).filter((o) => o.workload === workload && o.signature !== profile.signature),
    );
    return [...own, ...kin].sort((a, b) => a.at - b.at);
  }

  /** The planner's candidates, plus anything already tried on this signature (an LLM's pick, a generated policy). */
  #candidates(profile: Profile, own: readonly Outcome[]): Candidate[] {
    const fresh = candidatesFor(profile, this.#o.catalogue(), this.#o.decide.max_candidates);
    const known = new Set(fresh.map((c) => c.key));
    for (const o of own) {
      const key = policyKey(o.policy);
      if (known.has(key)) continue;
      known.add(key);
      fresh.push({
        key,
        policy: o.policy,
        priorLogRatio: 0,
        ...(cgroupOf(o.policy) && { cgroup: cgroupOf(o.policy)! }),
      });
    }
    return fresh;
  }

  /** Step 1: the best policy this signature has a good record with. */
  #reusable(profile: Profile, own: readonly Outcome[], local: LocalPlan): Decision | undefined {
    const byKey = new Map<string, Outcome[]>();
    for (const o of own) byKey.set(policyKey(o.policy), [...(byKey.get(policyKey(o.policy)) ?? []), o]);
    const excluded = new Set(local.summaries.filter((s) => s.excluded).map((s) => s.key));
    let best: { key: string; outcomes: Outcome[]; meanLog: number } | undefined;
    for (const [key, outcomes] of byKey) {
      if (key === DEFAULT_KEY || excluded.has(key)) continue;
      const passes = outcomes.filter((o) => o.passed && !o.rolledBack).length;
      const last = outcomes[outcomes.length - 1]!;
      if (passes < this.#o.decide.reuse_min_passes || !last.passed || last.rolledBack) continue;
      const meanLog = outcomes.reduce((s, o) => s + Math.log(o.kpiRatio), 0) / outcomes.length;
      if (meanLog > Math.log(this.#o.decide.reuse_max_ratio)) continue;
      if (!best || meanLog < best.meanLog) best = { key, outcomes, meanLog };
    }
    if (!best) return undefined;
    const passes = best.outcomes.filter((o) => o.passed && !o.rolledBack).length;
    const policy = best.outcomes[best.outcomes.length - 1]!.policy;
    const cgroup = cgroupOf(policy);
    return {
      at: this.#o.now(),
      signature: profile.signature,
      class: profile.class,
      policy,
      chooser: "reuse",
      rationale: `reuse: ${best.key} passed probation ${passes} of ${best.outcomes.length} time(s) on this phase, mean KPI ratio ${Math.exp(best.meanLog).toFixed(2)}`,
      confidence: passes / (best.outcomes.length + 1),
      ...(cgroup && { cgroup }),
      candidates: local.summaries,
    };
  }

  /** The LLM's earlier answer for this signature, unless it has since failed here. */
  #cachedLlmDecision(profile: Profile, local: LocalPlan): Decision | undefined {
    const c = this.#o.store.consultationFor(profile.signature);
    if (c?.status !== "decided" || !c.decision) return undefined;
    const key = policyKey(c.decision.policy);
    if (local.summaries.some((s) => s.key === key && s.excluded)) return undefined;
    return {
      ...c.decision,
      at: this.#o.now(),
      rationale: `cached LLM decision (consultation ${c.id}, never asked twice): ${c.decision.rationale}`,
      candidates: local.summaries,
    };
  }

  #planned(profile: Profile, local: LocalPlan): Decision {
    return {
      at: this.#o.now(),
      signature: profile.signature,
      class: profile.class,
      policy: local.chosen.policy,
      chooser: "planner",
      rationale: local.rationale,
      confidence: local.confidence,
      ...(local.chosen.cgroup && { cgroup: local.chosen.cgroup }),
      candidates: local.summaries,
    };
  }

  /** Why the LLM is not consulted for this change, or undefined when it should be. */
  #whyNotAsk(change: PhaseChange, local: LocalPlan): string | undefined {
    const llm = this.#o.llm;
    if ("disabled" in llm) return `LLM ${llm.disabled}`;
    const threshold = this.#o.decide.confidence_threshold;
    if (local.confidence >= threshold) return "planner is confident";
    if (local.assurance >= threshold) {
      return `planner knows a policy that beats the default with ${pct(local.assurance)} probability`;
    }
    if (change.drift <= this.#o.llmConfig.drift_threshold) {
      return `drift ${round(change.drift)} within llm.drift_threshold ${this.#o.llmConfig.drift_threshold}`;
    }
    const previous = this.#o.store.consultationFor(change.to.signature);
    const orphaned = previous?.status === "running" && !this.#inFlight.has(previous.id);
    if (previous && previous.status !== "failed" && !orphaned) {
      return previous.status === "running"
        ? `a consultation about this phase is under way (${previous.id})`
        : `already consulted about this phase (consultation ${previous.id})`;
    }
    return llm.refusal();
  }
}

/** The fleet's outcomes among those weighed for these candidates (other hosts', never stored here). */
function fleetUsed(candidates: readonly Candidate[], outcomes: readonly Outcome[]): Decision["fleet"] {
  const keys = new Set(candidates.map((c) => c.key));
  const used = new Set(outcomes.filter((o) => o.fleetHost !== undefined && keys.has(policyKey(o.policy))));
  if (used.size === 0) return undefined;
  return { outcomes: used.size, hosts: new Set([...used].map((o) => o.fleetHost)).size };
}

function fallback(planned: Decision, consultationId: number, why: string): Decision {
  return { ...planned, consultationId, rationale: `${planned.rationale}; ${why}` };
}

function cgroupOf(policy: ChosenPolicy): string | undefined {
  if (policy.kind !== "policy") return undefined;
  for (const value of Object.values(policy.tunables)) if (Array.isArray(value) && value[0]) return value[0];
  return undefined;
}

function round(x: number): number {
  return Math.round(x * 100) / 100;
}

function pct(x: number): string {
  return `${Math.round(x * 100)}%`;
}
