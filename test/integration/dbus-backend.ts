import type {
  DecisionSummary,
  HistoryEntry,
  ManagerBackend,
  ManagerEvent,
  ManagerProperties,
  Mode,
  PolicyInfo,
  Status,
  Verdict,
} from "../../src/dbus/backend.ts";
import { BackendError } from "../../src/dbus/backend.ts";
import type { Profile } from "../../src/observe/types.ts";
import type { Tunables } from "../../src/policies/types.ts";

// A daemon stand-in for testing the bus surface from outside: it keeps the state a daemon
// would (mode, active policy, phase, decisions, history) and changes it the way the daemon's
// contract says, so every method, property and signal has something true to report.

const CATALOGUE: PolicyInfo[] = [
  {
    name: "simple",
    origin: "builtin",
    summary: "global FIFO: one shared queue, the fewest moving parts",
    workloads: ["idle", "mixed"],
    tunables: {
      slice_us: { type: "int", min: 100, max: 100_000, default: 20_000, description: "time slice" },
    },
    minKernel: "6.12",
    verdict: "pass",
    active: false,
  },
  {
    name: "batch",
    origin: "builtin",
    summary: "long slices for throughput work: builds and batch jobs",
    workloads: ["throughput"],
    tunables: {},
    minKernel: "6.12",
    verdict: "pass",
    active: false,
  },
];

const hashOf = (name: string) =>
  name
    .padEnd(64, "0")
    .replace(/[^0-9a-f]/g, "a")
    .slice(0, 64);

export function profileFixture(at: number): Profile {
  return {
    at,
    windowMs: 1000,
    features: {
      cpu_util: 0.92,
      runnable_per_cpu: 3.5,
      run_delay_per_cpu_time: 0.4,
      ctxsw_per_sec_per_cpu: 1200,
      psi_cpu_some: 0.31,
      psi_io_some: 0.01,
      psi_memory_some: 0,
      top_cgroup_share: 0.8,
      blocked_per_cpu: 0,
      forks_per_sec: 140,
    },
    class: "throughput",
    signature: "thr-4c1a",
    topCgroups: [{ path: "/system.slice/build.service", cpuShare: 0.8, psiCpuSome: 0.3, tasks: 42 }],
    topProcesses: [{ pid: 4242, comm: "cc1", cpuShare: 0.2 }],
    lacks: [],
  };
}

export class ScriptedBackend implements ManagerBackend {
  readonly #listeners = new Set<(event: ManagerEvent) => void>();
  readonly #startedAt = Date.now();
  #mode: Mode = "auto";
  #active: { name: string; tunables: Tunables; since: number } | undefined;
  #previous: string | undefined;
  #phase: { class: string; signature: string; since: number } | undefined;
  #history: HistoryEntry[] = [];
  #decisions: DecisionSummary[] = [];
  reloads = 0;

  properties(): ManagerProperties {
    return {
      mode: this.#mode,
      activePolicy: this.#active?.name ?? "",
      phase: this.#phase?.class ?? "",
      schedExtState: this.#active ? "enabled" : "disabled",
      llmBudget: this.#budget(),
      version: "0.1.0",
    };
  }

  status(): Status {
    const active = this.#active;
    return {
      version: "0.1.0",
      mode: this.#mode,
      schedExt: { state: active ? "enabled" : "disabled", ops: active ? `schedctl_${active.name}` : null },
      activePolicy: active
        ? {
            name: active.name,
            origin: "builtin",
            hash: hashOf(active.name),
            tunables: active.tunables,
            since: active.since,
            state: "probation",
          }
        : null,
      phase: this.#phase ?? null,
      profile: this.#phase ? profileFixture(this.#phase.since) : null,
      lastDecisions: this.#decisions.slice(-5).reverse(),
      llm: this.#budget(),
      startedAt: this.#startedAt,
      samples: 17,
    };
  }

  listPolicies(): PolicyInfo[] {
    return CATALOGUE.map((p) => ({ ...p, active: p.name === this.#active?.name }));
  }

  history(limit: number): HistoryEntry[] {
    return this.#history.slice(-limit).reverse();
  }

  explain() {
    const status = this.status();
    const decision = this.#decisions.at(-1) ?? null;
    return {
      policy: status.activePolicy,
      decision,
      profile: status.profile,
      verdict: status.activePolicy ? this.#verdict(status.activePolicy.name) : null,
      lines: decision
        ? [`${decision.policy} chosen by ${decision.chooser}: ${decision.rationale}`]
        : ["no decision yet: the kernel default scheduler runs"],
    };
  }

  async setMode(mode: Mode): Promise<void> {
    this.#mode = mode;
    this.#record({ kind: "mode", summary: `mode set to ${mode}` });
    this.#emit({ type: "state" });
  }

  async switchPolicy(name: string, tunables: Tunables) {
    const policy = CATALOGUE.find((p) => p.name === name);
    if (!policy) throw new BackendError("not-found", `no policy named "${name}" (see ListPolicies)`);
    for (const key of Object.keys(tunables)) {
      if (!(key in policy.tunables)) throw new BackendError("invalid", `${name} has no tunable "${key}"`);
    }
    if (this.#mode === "observe")
      throw new BackendError("refused", "mode is observe: the kernel is not touched");
    this.#previous = this.#active?.name;
    this.#active = { name, tunables, since: Date.now() };
    this.#decisions.push({
      at: Date.now(),
      policy: name,
      chooser: "operator",
      rationale: "requested over D-Bus",
      confidence: 1,
      outcome: "deployed",
    });
    this.#record({ kind: "deploy", summary: `${name} attached, probation started`, policy: name });
    this.#emit({ type: "policy-changed", policy: name, hash: hashOf(name), reason: "operator request" });
    return {
      policy: name,
      hash: hashOf(name),
      state: "probation",
      message: `${name} attached; probation 20 s`,
    };
  }

  async rollback() {
    const from = this.#active?.name ?? null;
    if (!from) throw new BackendError("refused", "nothing to roll back: the kernel default runs");
    const to = this.#previous ?? null;
    this.#active = to ? { name: to, tunables: {}, since: Date.now() } : undefined;
    this.#previous = undefined;
    this.#record({
      kind: "rollback",
      summary: `rolled back ${from} -> ${to ?? "kernel default"}`,
      policy: from,
    });
    this.#emit({ type: "rolled-back", from, to: to ?? "", reason: "operator request" });
    return { from, to, reason: "operator request" };
  }

  async verifyPolicy(nameOrPath: string): Promise<Verdict> {
    const name = nameOrPath.startsWith("/")
      ? nameOrPath
          .split("/")
          .pop()!
          .replace(/\.bpf\.c$/, "")
      : nameOrPath;
    if (!nameOrPath.startsWith("/") && !CATALOGUE.some((p) => p.name === name)) {
      throw new BackendError("not-found", `no policy named "${name}"`);
    }
    const verdict = this.#verdict(name);
    this.#record({ kind: "verification", summary: `${name}: pass`, policy: name, verdict: "pass" });
    return verdict;
  }

  async createPolicy(name: string, source: string): Promise<Verdict> {
    const passed = source.includes("SCX_OPS_DEFINE");
    const verdict = {
      ...this.#verdict(name),
      passed,
      stage: passed ? "sandbox" : "static",
      log: passed ? "ok" : "no SCX_OPS_DEFINE: not a sched_ext scheduler",
    };
    this.#record({ kind: "verification", summary: `${name}: ${passed ? "pass" : "fail"}`, policy: name });
    return verdict;
  }

  async reload(): Promise<void> {
    this.reloads++;
  }

  subscribe(listener: (event: ManagerEvent) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /** What the observe loop would do on a phase change. */
  enterPhase(phaseClass: string, signature: string, drift: number): void {
    this.#phase = { class: phaseClass, signature, since: Date.now() };
    this.#record({
      kind: "phase",
      summary: `phase ${phaseClass} (${signature})`,
      phase: phaseClass,
      signature,
    });
    this.#emit({ type: "phase-changed", phase: phaseClass, signature, drift });
  }

  #verdict(name: string): Verdict {
    return {
      name,
      hash: hashOf(name),
      passed: true,
      stage: "sandbox",
      log: "ok",
      figures: { p99_wakeup_us: 180 },
    };
  }

  #budget() {
    return {
      provider: "none",
      state: "disabled",
      callsLeftHour: 6,
      callsLeftDay: 40,
      tokensLeftDay: 200_000,
      spentUsdToday: 0,
    };
  }

  #record(entry: Omit<HistoryEntry, "at">): void {
    this.#history.push({ at: Date.now(), ...entry });
  }

  #emit(event: ManagerEvent): void {
    for (const listener of this.#listeners) listener(event);
  }
}
