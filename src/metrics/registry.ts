import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from "prom-client";
import { DeployPhase } from "../deploy/types.ts";
import { forMetricLabel } from "../text/untrusted.ts";
import { VerifyStage } from "../verify/types.ts";

// schedctld's Prometheus metrics: the one registry, its instruments, and what each daemon event
// counts as. It holds numbers only; the daemon feeds it (src/daemon/metrics.ts) and
// src/metrics/export.ts writes it out. Every label value taken from the host or the LLM goes
// through forMetricLabel.

/** Every metric's name starts so, the default process metrics too (node_exporter has its own process_*). */
export const PREFIX = "schedctl_";

/** A deploy transition as the controller announces it (deploy/controller.ts's TransitionNotice). */
export interface DeployTransition {
  from: DeployPhase;
  to: DeployPhase;
  /** The controller event that caused it: "kpis", "kernel", "swapped", "rollback", "reconcile"... */
  event: string;
  reason: string;
}

/** What the daemon is at, read once per sample period. */
export interface DaemonSnapshot {
  mode: string;
  phase: { class: string; signature: string } | undefined;
  /** The deployment controller's view; undefined when this daemon only observes. */
  deploy:
    | {
        phase: DeployPhase;
        policy: { name: string; hash: string } | undefined;
        probation:
          | { cgroup: string | undefined; kpiRatio: number | undefined; secondsLeft: number }
          | undefined;
      }
    | undefined;
}

/** Why a rollback started, from the event that caused it: a small, fixed set of label values. */
const ROLLBACK_CAUSE: Record<string, string> = {
  kpis: "kpi_regression",
  kernel: "ejected",
  swapped: "swap_failed",
  rollback: "operator",
  reconcile: "restart",
};

/** Sample durations under emulation reach seconds; a real host's are a few milliseconds. */
const SAMPLE_BUCKETS_S = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5];

export class DaemonMetrics {
  readonly registry = new Registry();
  readonly #mode = this.#gauge("mode_info", "The daemon's mode (value 1).", ["mode"]);
  readonly #phase = this.#gauge("phase_info", "The workload phase in place (value 1).", [
    "class",
    "signature",
  ]);
  readonly #policy = this.#gauge(
    "policy_info",
    "The sched_ext policy schedctl has in place, or the kernel default (value 1).",
    ["policy", "hash"],
  );
  readonly #deployState = this.#gauge(
    "deploy_state",
    "The deployment controller's state: 1 for the one it is in, 0 for the others.",
    ["state"],
  );
  readonly #probationLeft = this.#gauge(
    "probation_seconds_left",
    "Seconds left of the current policy's probation (0: none on probation).",
    [],
  );
  readonly #kpiRatio = this.#gauge(
    "probation_kpi_ratio",
    "The guarded cgroup's KPI under the policy on probation over its baseline (lower is better; above deploy.regression_ratio fails it).",
    ["cgroup"],
  );
  readonly #swaps = this.#counter(
    "swaps_total",
    "Swaps the kernel carried out: a new policy attached (deploy), a known-good one restored (restore), back to the kernel default (default).",
    ["kind"],
  );
  readonly #rollbacks = this.#counter("rollbacks_total", "Rollbacks started, by cause.", ["reason"]);
  readonly #ejections = this.#counter(
    "ejections_total",
    "Policies the kernel ejected, by the kernel's reason (unknown: it gave none).",
    ["reason"],
  );
  readonly #refusals = this.#counter(
    "verifier_refusals_total",
    "Candidates the Execution Verifier refused, by the stage that refused them.",
    ["stage"],
  );
  readonly #llmCalls = this.#counter("llm_calls_total", "Calls to the LLM, by stage and result.", [
    "provider",
    "stage",
    "result",
  ]);
  readonly #llmTokens = this.#counter("llm_tokens_total", "Tokens the LLM's calls used.", [
    "provider",
    "direction",
  ]);
  readonly #phaseChanges = this.#counter("phase_changes_total", "Phase changes the detector reported.", []);
  readonly #samples = new Histogram({
    name: `${PREFIX}sample_duration_seconds`,
    help: "How long one sample of the host took.",
    buckets: SAMPLE_BUCKETS_S,
    registers: [this.registry],
  });
  #phaseChangesSeen = 0;
  /** An ejection whose rollback is in flight: counted once the kernel's reason is known or the rollback ends. */
  #ejection: { reason: string | undefined } | undefined;

  constructor() {
    collectDefaultMetrics({ register: this.registry, prefix: PREFIX });
    // Gauges named like counters, which promtool's lint refuses; the unsuffixed ones say the same.
    for (const name of ["active_handles_total", "active_requests_total", "active_resources_total"])
      this.registry.removeSingleMetric(`${PREFIX}nodejs_${name}`);
    for (const kind of ["deploy", "restore", "default"]) this.#swaps.inc({ kind }, 0);
    for (const reason of Object.values(ROLLBACK_CAUSE)) this.#rollbacks.inc({ reason }, 0);
    for (const stage of VerifyStage.options) this.#refusals.inc({ stage }, 0);
  }

  /** Every metric name the registry exports (histograms' _bucket, _sum and _count included). */
  async names(): Promise<string[]> {
    const names = new Set<string>();
    for (const metric of await this.registry.getMetricsAsJSON()) {
      names.add(metric.name);
      if (String(metric.type) === "histogram")
        for (const suffix of ["_bucket", "_sum", "_count"]) names.add(metric.name + suffix);
    }
    return [...names].sort();
  }

  text(): Promise<string> {
    return this.registry.metrics();
  }

  get contentType(): string {
    return this.registry.contentType;
  }

  sampled(seconds: number): void {
    this.#samples.observe(seconds);
  }

  /** The state gauges, once per sample period. */
  observe(s: DaemonSnapshot, phaseChanges: number): void {
    this.#mode.reset();
    this.#mode.set({ mode: s.mode }, 1);
    this.#phase.reset();
    if (s.phase) this.#phase.set({ class: s.phase.class, signature: forMetricLabel(s.phase.signature) }, 1);
    if (phaseChanges > this.#phaseChangesSeen) this.#phaseChanges.inc(phaseChanges - this.#phaseChangesSeen);
    this.#phaseChangesSeen = phaseChanges;
    this.#policy.reset();
    const policy = s.deploy?.policy;
    this.#policy.set(
      policy
        ? { policy: forMetricLabel(policy.name), hash: policy.hash.slice(0, 12) }
        : { policy: "kernel default", hash: "" },
      1,
    );
    this.#deployState.reset();
    if (s.deploy)
      for (const state of DeployPhase.options)
        this.#deployState.set({ state }, state === s.deploy.phase ? 1 : 0);
    const probation = s.deploy?.probation;
    this.#probationLeft.set(probation ? Math.max(0, probation.secondsLeft) : 0);
    this.#kpiRatio.reset();
    if (probation?.kpiRatio !== undefined)
      this.#kpiRatio.set({ cgroup: forMetricLabel(probation.cgroup ?? "host") }, probation.kpiRatio);
  }

  /** A transition of the deployment controller: swaps, rollbacks and ejections. */
  transition(t: DeployTransition): void {
    if (t.to === "rolling_back" && t.from !== "rolling_back") {
      const reason =
        t.event === "rollback" && t.reason.startsWith("internal error")
          ? "internal_error"
          : (ROLLBACK_CAUSE[t.event] ?? "other");
      this.#rollbacks.inc({ reason });
      if (t.event === "kernel") this.#ejection = { reason: undefined };
    }
    if (t.from === "deploying" && t.to === "probation") this.#swaps.inc({ kind: "deploy" });
    if (t.from === "rolling_back" && t.to === "active") this.#swaps.inc({ kind: "restore" });
    if (
      (t.from === "rolling_back" && t.to === "fallback_default") ||
      (t.from === "releasing" && t.to === "idle")
    )
      this.#swaps.inc({ kind: "default" });
    if (t.from === "rolling_back" && t.to !== "rolling_back") this.#countEjection();
  }

  /** The kernel's own reason for disabling a scheduler, as it logged it. */
  kernelDisabled(reason: string): void {
    if (this.#ejection) this.#ejection.reason = reason;
  }

  #countEjection(): void {
    if (!this.#ejection) return;
    this.#ejections.inc({ reason: forMetricLabel(this.#ejection.reason ?? "unknown") });
    this.#ejection = undefined;
  }

  verdict(v: { passed: boolean; stage: string }): void {
    if (!v.passed) this.#refusals.inc({ stage: v.stage });
  }

  llmCall(call: {
    provider: string;
    stage: string;
    result: string;
    inputTokens: number;
    outputTokens: number;
  }): void {
    const provider = forMetricLabel(call.provider);
    // "ok", or what went wrong: its first word keeps the label's values few.
    const result = forMetricLabel(/^[\w-]+/.exec(call.result)?.[0] ?? "error");
    this.#llmCalls.inc({ provider, stage: call.stage, result });
    this.#llmTokens.inc({ provider, direction: "input" }, call.inputTokens);
    this.#llmTokens.inc({ provider, direction: "output" }, call.outputTokens);
  }

  #gauge<L extends string>(name: string, help: string, labelNames: L[]): Gauge<L> {
    return new Gauge({ name: PREFIX + name, help, labelNames, registers: [this.registry] });
  }

  #counter<L extends string>(name: string, help: string, labelNames: L[]): Counter<L> {
    return new Counter({ name: PREFIX + name, help, labelNames, registers: [this.registry] });
  }
}
