import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { basename, isAbsolute, join } from "node:path";
import {
  type ActivePolicy,
  BackendError,
  type Verdict as BusVerdict,
  type DecisionSummary,
  type Explanation,
  type HistoryEntry,
  type Mode,
  type PolicyInfo,
  type RollbackResult,
  type SwitchResult,
} from "../dbus/backend.ts";
import type { ChosenPolicy, StoredDecision } from "../decide/index.ts";
import { meanKpis } from "../deploy/kpis.ts";
import type { DeploymentRecord } from "../deploy/types.ts";
import type { ObservationStore } from "../observe/persistence.ts";
import type { Profile } from "../observe/types.ts";
import type { PolicySource } from "../policies/catalogue.ts";
import type { PolicyRef, Tunables } from "../policies/types.ts";
import { requestFor } from "../verify/build.ts";
import type { Verdict } from "../verify/types.ts";
import { deploymentKpiRatio, describePolicy, generatedSource } from "./autopilot.ts";
import type { Stages } from "./wiring.ts";

// What the bus asks of the wired stages: the kernel-confirmed active policy, the decisions and
// what became of them, the history from the store, and the operator's commands, each answered
// by the stage that owns it (deploy has the last word on the kernel).

const NAME = /^[a-z][a-z0-9_-]{0,31}$/;

export class StageControl {
  readonly #s: Stages;
  readonly #observations: ObservationStore | undefined;

  constructor(stages: Stages, observations: ObservationStore | undefined) {
    this.#s = stages;
    this.#observations = observations;
  }

  /** The policy the kernel runs, when it is ours; null when the kernel says otherwise. */
  activePolicy(): ActivePolicy | null {
    const state = this.#s.controller.state;
    const current = state.current;
    if (!current || (state.phase !== "probation" && state.phase !== "active")) return null;
    const kernel = this.#s.kernel.status();
    if (kernel.state !== "enabled" || kernel.ops !== current.loadable.opsName) return null;
    const row =
      state.deploymentId === undefined ? undefined : this.#s.deployments.getDeployment(state.deploymentId);
    return {
      name: current.ref.name,
      origin: current.ref.origin,
      hash: current.ref.hash,
      tunables: current.ref.tunables,
      since: row?.startedAt ?? state.since,
      state: state.phase,
    };
  }

  lastDecisions(limit: number): DecisionSummary[] {
    return this.#s.decisions.recentDecisions(limit).map((d) => this.#summary(d));
  }

  listPolicies(): PolicyInfo[] {
    const active = this.activePolicy();
    return this.#s.catalogue().map((source) => {
      let verdict: PolicyInfo["verdict"] = "unverified";
      try {
        const v = this.#s.verdicts.getVerdict(this.#s.compiler.variant(source).ref.hash);
        if (v) verdict = v.passed ? "pass" : "fail";
      } catch {
        // a variant that cannot be named here (a cgroup tunable with no cgroup) stays unverified
      }
      return { ...source.manifest, verdict, active: active?.name === source.manifest.name };
    });
  }

  history(limit: number): HistoryEntry[] {
    const entries: HistoryEntry[] = [];
    for (const d of this.#s.decisions.recentDecisions(limit)) {
      const s = this.#summary(d);
      entries.push({
        at: s.at,
        kind: d.decision.chooser === "llm" ? "llm" : "decision",
        summary: `${s.chooser} chose ${s.policy} (confidence ${s.confidence.toFixed(2)})${s.outcome ? `: ${s.outcome}` : ""} - ${s.rationale}`,
        policy: s.policy,
        phase: d.decision.class,
        signature: d.decision.signature,
      });
    }
    for (const v of this.#s.verdicts.recent(limit)) {
      entries.push({
        at: v.at,
        kind: "verification",
        summary: `${v.policy.name} ${v.passed ? "passed" : "failed"} verification at the ${v.stage} stage: ${firstLine(v.log)}`,
        policy: v.policy.name,
        verdict: v.passed ? "pass" : "fail",
      });
    }
    for (const d of this.#s.deployments.deployments(limit)) {
      entries.push(deployEntry(d));
      if (d.endedAt !== undefined && d.outcome !== "passed" && d.outcome !== "in_probation")
        entries.push({
          at: d.endedAt,
          kind: "rollback",
          summary: `${d.policy} ${d.outcome.replace("_", " ")}: ${d.reason}${d.kernelReason ? ` (kernel: ${d.kernelReason})` : ""}`,
          policy: d.policy,
          ...(d.signature ? { signature: d.signature } : {}),
        });
    }
    return entries;
  }

  /** Why the kernel runs what it runs: decision, candidates, verdict, probation KPIs, outcome. */
  explain(profileNow: Profile | null): Explanation {
    const policy = this.activePolicy();
    const current = this.#s.controller.state.current;
    if (!policy || !current) {
      const latest = this.#s.decisions.recentDecisions(1)[0];
      const lines = ["no policy of schedctl's is attached: the kernel's default scheduler runs"];
      if (latest) lines.push(`latest decision: ${this.#summaryLine(latest)}`);
      lines.push(`autopilot: ${this.#s.autopilot.mode}, ${this.#s.autopilot.activity}`);
      return {
        policy: null,
        decision: latest ? this.#summary(latest) : null,
        profile: profileNow,
        verdict: null,
        lines,
      };
    }
    const stored = this.#decisionFor(current.ref);
    const verdict = this.#s.verdicts.getVerdict(current.ref.hash);
    const row = this.#deploymentOf(current.ref.hash);
    const profile = stored ? (this.#triggeringProfile(stored) ?? profileNow) : profileNow;
    const lines = [
      `${policy.name} runs (${policy.state}); the kernel reports ops ${current.loadable.opsName}`,
    ];
    if (stored) {
      lines.push(
        `chosen by ${stored.decision.chooser} for phase ${stored.decision.class} (${stored.decision.signature}): ${stored.decision.rationale}`,
      );
      const fleet = stored.decision.fleet;
      if (fleet)
        lines.push(
          `fleet: weighed ${fleet.outcomes} outcome(s) from ${fleet.hosts} other host(s); this host compiled, verified and put it on probation itself`,
        );
      for (const c of stored.decision.candidates)
        lines.push(
          `  candidate ${c.key}: expected log-ratio ${c.expectedLogRatio.toFixed(3)}, evidence ${c.evidence}, win share ${c.winShare.toFixed(2)}${c.excluded ? `, excluded: ${c.excluded}` : ""}`,
        );
    } else
      lines.push("no stored decision names this variant (attached before this store, or by an older daemon)");
    if (verdict)
      lines.push(
        `verdict: ${verdict.passed ? "passed" : "failed"} at the ${verdict.stage} stage: ${firstLine(verdict.log)}`,
      );
    if (row) {
      const before = meanKpis(row.baseline);
      const after = meanKpis(row.probation);
      lines.push(
        `probation: ${row.outcome}; KPIs before ${formatKpis(before)}, during ${formatKpis(after)} (ratio ${deploymentKpiRatio(row).toFixed(2)})`,
      );
    }
    return {
      policy,
      decision: stored ? this.#summary(stored) : null,
      profile,
      verdict: verdict ? busVerdict(verdict) : null,
      lines,
    };
  }

  async switchPolicy(
    name: string,
    tunables: Tunables,
    mode: Mode,
    profile: Profile | undefined,
  ): Promise<SwitchResult> {
    if (mode === "observe")
      throw new BackendError(
        "refused",
        "mode observe never touches the kernel: set mode manual (or auto) first",
      );
    const source = this.#source(name);
    const policy: Extract<ChosenPolicy, { kind: "policy" }> = {
      kind: "policy",
      origin: source.manifest.origin,
      name,
      tunables,
      ...(source.manifest.origin === "generated" ? { source: source.source } : {}),
    };
    const prepared = await this.#prepare(policy, profile?.class ?? "mixed");
    if (!prepared.request)
      throw new BackendError(
        "refused",
        `${name} failed verification at the ${prepared.verdict.stage} stage, nothing attached:\n${prepared.verdict.log}`,
      );
    if (profile) {
      const stored = this.#s.decider.recordOperatorDecision(
        profile,
        policy,
        `switch to ${describePolicy(policy)}`,
      );
      this.#s.autopilot.remember(prepared.ref.hash, stored);
    }
    const answer = this.#s.controller.pin({ ...prepared.request, reason: `operator switched to ${name}` });
    if (!answer.accepted) throw new BackendError("refused", `${name} not attached: ${answer.reason}`);
    await this.#s.controller.settled();
    const state = this.#s.controller.state;
    const kernel = this.#s.kernel.status();
    if (state.current?.ref.hash !== prepared.ref.hash || kernel.ops !== prepared.request.loadable.opsName)
      throw new BackendError(
        "failed",
        `${name} did not take: ${state.reason} (kernel: ${kernel.state}, ops ${kernel.ops ?? "none"})`,
      );
    return {
      policy: name,
      hash: prepared.ref.hash,
      state: state.phase,
      message: `${name} attached and pinned (the autopilot leaves it until a rollback or mode auto)${
        state.probation ? `; on probation until ${new Date(state.probation.until).toISOString()}` : ""
      }`,
    };
  }

  async rollback(): Promise<RollbackResult> {
    const before = this.#s.controller.state.current?.ref.name ?? null;
    this.#s.controller.unpin();
    const answer = this.#s.controller.rollbackNow();
    if (!answer.accepted) throw new BackendError("refused", `nothing rolled back: ${answer.reason}`);
    await this.#s.controller.settled();
    const state = this.#s.controller.state;
    const kernel = this.#s.kernel.status();
    const to = state.current && kernel.ops === state.current.loadable.opsName ? state.current.ref.name : null;
    return { from: before, to, reason: state.reason };
  }

  async verify(nameOrPath: string): Promise<BusVerdict> {
    const source = isAbsolute(nameOrPath) ? this.#fromFile(nameOrPath) : this.#source(nameOrPath);
    const [verdict] = await this.#s.verifier.verify([requestFor(this.#s.compiler, source)]);
    return busVerdict(verdict!);
  }

  /** Verifies source handed over the bus; a pass joins the catalogue as a generated policy. */
  async create(name: string, text: string): Promise<BusVerdict> {
    if (!NAME.test(name)) throw new BackendError("invalid", `policy name "${name}": expected ${NAME.source}`);
    if (this.#s.catalogue().some((p) => p.manifest.name === name && p.manifest.origin !== "generated"))
      throw new BackendError("invalid", `"${name}" is a built-in policy's name`);
    const source = generatedSource(name, text, "mixed");
    const [verdict] = await this.#s.verifier.verify([requestFor(this.#s.compiler, source)]);
    if (verdict!.passed) {
      const dir = this.#s.generatedDir;
      mkdirSync(dir, { recursive: true });
      writeAtomic(join(dir, `${name}.bpf.c`), text);
      writeAtomic(join(dir, `${name}.json`), `${JSON.stringify(source.manifest, null, 2)}\n`);
    }
    return busVerdict(verdict!);
  }

  #prepare(policy: Extract<ChosenPolicy, { kind: "policy" }>, workload: string) {
    return this.#s.autopilot.prepare(policy, workload).catch((error: Error) => {
      throw new BackendError("failed", `cannot build ${policy.name}: ${error.message}`);
    });
  }

  #source(name: string): PolicySource {
    const found = this.#s.catalogue().find((p) => p.manifest.name === name);
    if (!found)
      throw new BackendError(
        "not-found",
        `no policy "${name}" (known: ${this.#s
          .catalogue()
          .map((p) => p.manifest.name)
          .join(", ")})`,
      );
    return found;
  }

  #fromFile(path: string): PolicySource {
    if (!existsSync(path)) throw new BackendError("not-found", `${path}: no such file`);
    const name = basename(path)
      .replace(/\.bpf\.c$|\.c$/, "")
      .replace(/[^a-z0-9_-]/g, "_")
      .slice(0, 32);
    if (!NAME.test(name))
      throw new BackendError("invalid", `${path}: cannot make a policy name of "${name}"`);
    return generatedSource(name, readFileSync(path, "utf8"), "mixed");
  }

  #summary({ id, decision }: StoredDecision): DecisionSummary {
    const outcome = this.#s.decisions.outcomeOfDecision(id);
    return {
      at: decision.at,
      policy: describePolicy(decision.policy),
      chooser: decision.chooser,
      rationale: decision.rationale,
      confidence: decision.confidence,
      outcome: outcome
        ? outcome.passed && !outcome.rolledBack
          ? `passed probation (KPI ratio ${outcome.kpiRatio.toFixed(2)})`
          : outcome.rolledBack
            ? `rolled back (KPI ratio ${outcome.kpiRatio.toFixed(2)})`
            : outcome.quarantined
              ? "refused by the verifier"
              : "failed"
        : "",
    };
  }

  #summaryLine(d: StoredDecision): string {
    const s = this.#summary(d);
    return `${s.chooser} chose ${s.policy}${s.outcome ? ` (${s.outcome})` : ""}: ${s.rationale}`;
  }

  #decisionFor(ref: PolicyRef): StoredDecision | undefined {
    const mine = this.#s.autopilot.decisionFor(ref);
    if (mine) return mine;
    return this.#s.decisions
      .recentDecisions(50)
      .find(
        (d) =>
          d.decision.policy.kind === "policy" &&
          d.decision.policy.name === ref.name &&
          JSON.stringify(sorted(d.decision.policy.tunables)) === JSON.stringify(sorted(ref.tunables)),
      );
  }

  #deploymentOf(hash: string): DeploymentRecord | undefined {
    return this.#s.deployments.deployments(20).find((d) => d.hash === hash);
  }

  #triggeringProfile({ decision }: StoredDecision): Profile | undefined {
    return this.#observations?.phaseChangesTo(decision.signature, 10).find((c) => c.at <= decision.at)?.to;
  }
}

export function busVerdict(v: Verdict): BusVerdict {
  const numbers = (o: object | undefined) => {
    const out: Record<string, number> = {};
    for (const [k, value] of Object.entries(o ?? {})) if (typeof value === "number") out[k] = value;
    return out;
  };
  return {
    name: v.policy.name,
    hash: v.hash,
    passed: v.passed,
    stage: v.stage,
    log: v.log,
    figures: numbers(v.figures),
    ...(v.baseline ? { baseline: numbers(v.baseline) } : {}),
    ...(v.againstDefault ? { againstDefault: numbers(v.againstDefault) } : {}),
    ...(v.admits ? { admits: v.admits } : {}),
    ...(v.compiledAgainst ? { compiledAgainst: v.compiledAgainst } : {}),
    ...(v.timings ? { timings: numbers(v.timings) } : {}),
  };
}

function deployEntry(d: DeploymentRecord): HistoryEntry {
  return {
    at: d.startedAt,
    kind: "deploy",
    summary: `deployed ${d.policy}${d.gapMs !== undefined ? ` (gap ${Math.round(d.gapMs)} ms)` : ""}: ${d.outcome.replace("_", " ")}${d.outcome === "in_probation" ? "" : ` - ${d.reason}`}`,
    policy: d.policy,
    ...(d.signature ? { signature: d.signature } : {}),
  };
}

function formatKpis(k: Partial<Record<string, number>>): string {
  return Object.entries(k)
    .map(([name, v]) => `${name}=${(v ?? 0).toFixed(3)}`)
    .join(" ");
}

function firstLine(text: string): string {
  return text.split("\n", 1)[0]!.slice(0, 200);
}

function sorted(t: Tunables): [string, unknown][] {
  return Object.entries(t).sort(([a], [b]) => a.localeCompare(b));
}

function writeAtomic(path: string, text: string): void {
  writeFileSync(`${path}.tmp`, text);
  renameSync(`${path}.tmp`, path);
}
