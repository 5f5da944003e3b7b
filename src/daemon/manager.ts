import type { Config } from "../config/schema.ts";
import {
  BackendError,
  type Explanation,
  type HistoryEntry,
  type LlmBudget,
  type ManagerBackend,
  type ManagerEvent,
  type ManagerProperties,
  type Mode,
  type PolicyInfo,
  type RollbackResult,
  type Status,
  type SwitchResult,
  type Verdict,
} from "../dbus/backend.ts";
import type { Clock } from "../host/clock.ts";
import type { Host } from "../host/host.ts";
import type { Journal } from "../journal/journal.ts";
import { readSchedExtStatus } from "../kernel/sysfs.ts";
import type { Logger } from "../log/logger.ts";
import type { ObservationStore } from "../observe/persistence.ts";
import type { PhaseChange } from "../observe/types.ts";
import { builtinCatalogue } from "../policies/catalogue.ts";
import type { Tunables } from "../policies/types.ts";
import { StageControl } from "./control.ts";
import { NO_FLEET } from "./fleet.ts";
import type { LoopHandler, LoopState } from "./loop.ts";
import type { Notifier } from "./notify.ts";
import type { Stages } from "./wiring.ts";

// The daemon as the bus, the journal and systemd see it. Reads report the loop's state, the
// kernel's own sysfs and the store; changes go to the wired stages (decide, verify, deploy),
// and deploy alone touches the kernel. Without the stages (--observe-only, no state database)
// changes that would touch the kernel are refused with the reason.

export interface ManagerOptions {
  host: Host;
  clock: Clock;
  log: Logger;
  journal: Journal;
  notifier: Notifier;
  store: ObservationStore | undefined;
  state: () => Readonly<LoopState>;
  config: Config;
  /** Re-reads the configuration files; throws (ConfigError) when they are not valid. */
  loadConfig: () => Config;
  version: string;
  /** Decide, verify and deploy; undefined when this daemon only observes. */
  stages?: Stages | undefined;
  /** Why the stages are missing or the kernel cannot be changed (refusals say it). */
  observeOnlyReason?: string | undefined;
}

export class DaemonManager implements ManagerBackend, LoopHandler {
  readonly name = "interfaces";
  readonly #options: ManagerOptions;
  readonly #listeners = new Set<(event: ManagerEvent) => void>();
  readonly #startedAt: number;
  readonly #modeChanges: HistoryEntry[] = [];
  #config: Config;
  readonly #control: StageControl | undefined;
  #busReady = false;
  #ready = false;
  #lastTick = Number.NEGATIVE_INFINITY;
  #watchdog: NodeJS.Timeout | undefined;
  #lastStatusLine = "";

  constructor(options: ManagerOptions) {
    this.#options = options;
    this.#config = options.config;
    this.#startedAt = options.clock.now();
    this.#control = options.stages ? new StageControl(options.stages, options.store) : undefined;
  }

  get #mode(): Mode {
    return this.#options.stages?.autopilot.mode ?? "observe";
  }

  get #notWired(): string {
    const why = this.#options.observeOnlyReason ?? "it runs without its state database";
    return `this schedctld observes only: ${why}`;
  }

  /** Events from the stages (policy changed, rolled back) reach the bus here. */
  publish(event: ManagerEvent): void {
    this.#emit(event);
  }

  /** The bus name is owned (or the daemon runs without a bus): READY=1 may follow the first sample. */
  busReady(): void {
    this.#busReady = true;
  }

  /**
   * Pings systemd's watchdog at half its interval while the loop keeps ticking. A timer alone
   * would outlive a hung loop; pings from the loop alone would come too seldom when samples are
   * further apart than the watchdog allows.
   */
  startWatchdog(sampleIntervalMs: number): void {
    const { notifier, clock } = this.#options;
    const interval = notifier.watchdogIntervalMs;
    if (interval === undefined) return;
    const stale = 3 * sampleIntervalMs + interval;
    this.#watchdog = setInterval(() => {
      if (clock.monotonic() - this.#lastTick <= stale) notifier.watchdog();
    }, interval);
    this.#watchdog.unref();
  }

  // LoopHandler: systemd's view and the bus's events follow the loop.

  onSample(): void {
    const { notifier, clock } = this.#options;
    const line = this.#statusLine();
    if (!this.#ready && this.#busReady) {
      this.#ready = true;
      notifier.ready(line);
    } else if (this.#ready && line !== this.#lastStatusLine) {
      notifier.status(line);
    }
    this.#lastStatusLine = line;
    this.#lastTick = clock.monotonic();
    this.#emit({ type: "state" });
  }

  onPhaseChange(change: PhaseChange): void {
    this.#options.journal.record({
      type: "phase-change",
      phase: change.to.class,
      fromPhase: change.from?.class,
      signature: change.to.signature,
      drift: change.drift,
    });
    this.#emit({
      type: "phase-changed",
      phase: change.to.class,
      signature: change.to.signature,
      drift: change.drift,
    });
  }

  onStop(): void {
    clearInterval(this.#watchdog);
    this.#options.notifier.stopping();
  }

  // ManagerBackend

  properties(): ManagerProperties {
    return {
      mode: this.#mode,
      activePolicy: this.#control?.activePolicy()?.name ?? "",
      phase: this.#options.state().phase?.class ?? "",
      schedExtState: readSchedExtStatus(this.#options.host).state,
      llmBudget: this.#budget(),
      version: this.#options.version,
    };
  }

  status(): Status {
    const state = this.#options.state();
    const kernel = readSchedExtStatus(this.#options.host);
    return {
      version: this.#options.version,
      mode: this.#mode,
      schedExt: { state: kernel.state, ops: kernel.ops ?? null },
      activePolicy: this.#control?.activePolicy() ?? null,
      phase: state.phase ?? null,
      profile: state.profile ?? null,
      lastDecisions: this.#control?.lastDecisions(5) ?? [],
      llm: this.#budget(),
      fleet: this.#options.stages?.fleet?.status() ?? NO_FLEET,
      startedAt: this.#startedAt,
      samples: state.ticks,
    };
  }

  listPolicies(): PolicyInfo[] {
    if (this.#control) return this.#control.listPolicies();
    return builtinCatalogue().map(({ manifest }) => ({ ...manifest, verdict: "unverified", active: false }));
  }

  history(limit: number): HistoryEntry[] {
    const phases: HistoryEntry[] = (this.#options.store?.recentPhaseChanges(limit) ?? []).map((change) => ({
      at: change.at,
      kind: "phase",
      summary: `phase ${change.from ? `${change.from.class} -> ` : ""}${change.to.class} (${change.to.signature}, drift ${change.drift.toFixed(1)})`,
      phase: change.to.class,
      signature: change.to.signature,
    }));
    return [...phases, ...(this.#control?.history(limit) ?? []), ...this.#modeChanges]
      .sort((a, b) => b.at - a.at)
      .slice(0, limit);
  }

  explain(): Explanation {
    if (this.#control && readSchedExtStatus(this.#options.host).state !== "unsupported")
      return this.#control.explain(this.#options.state().profile ?? null);
    const kernel = readSchedExtStatus(this.#options.host);
    const status = this.status();
    const lines = [
      kernel.state === "unsupported"
        ? "this kernel has no sched_ext: its default scheduler runs and no policy can be attached"
        : kernel.ops
          ? `the kernel runs ${kernel.ops}, which schedctl did not attach`
          : "no sched_ext policy is attached: the kernel's default scheduler runs",
      this.#notWired,
    ];
    return { policy: null, decision: null, profile: status.profile, verdict: null, lines };
  }

  async setMode(mode: Mode): Promise<void> {
    const stages = this.#options.stages;
    if (mode !== "observe" && (!stages || this.#options.observeOnlyReason))
      throw new BackendError("refused", `cannot switch to ${mode}: ${this.#notWired}`);
    const from = this.#mode;
    await stages?.autopilot.setMode(mode);
    this.#modeChanges.push({
      at: this.#options.clock.now(),
      kind: "mode",
      summary: `mode ${from} -> ${mode}`,
    });
    this.#options.log.info({ mode, from }, `mode ${from} -> ${mode}`);
    this.#emit({ type: "state" });
  }

  async switchPolicy(name: string, tunables: Tunables): Promise<SwitchResult> {
    return this.#require("switch policies").switchPolicy(
      name,
      tunables,
      this.#mode,
      this.#options.state().profile,
    );
  }

  async rollback(): Promise<RollbackResult> {
    return this.#require("roll back").rollback();
  }

  async verifyPolicy(nameOrPath: string): Promise<Verdict> {
    if (!this.#control) throw new BackendError("refused", `cannot verify: ${this.#notWired}`);
    return this.#control.verify(nameOrPath);
  }

  async createPolicy(name: string, source: string): Promise<Verdict> {
    if (!this.#control) throw new BackendError("refused", `cannot create policies: ${this.#notWired}`);
    return this.#control.create(name, source);
  }

  #require(what: string): StageControl {
    if (!this.#control || this.#options.observeOnlyReason)
      throw new BackendError("refused", `cannot ${what}: ${this.#notWired}`);
    return this.#control;
  }

  /** Re-reads the configuration (SIGHUP or Reload); the loop's own settings apply at restart. */
  async reload(): Promise<void> {
    const { notifier, log } = this.#options;
    notifier.reloading();
    try {
      this.#config = this.#options.loadConfig();
      log.info({}, "configuration reloaded (sampling and detection settings apply at the next start)");
      this.#emit({ type: "state" });
    } catch (error) {
      log.error({}, `reload refused, keeping the running configuration: ${(error as Error).message}`);
      throw new BackendError(
        "failed",
        `the configuration is not valid, nothing changed:\n${(error as Error).message}`,
      );
    } finally {
      notifier.ready(this.#statusLine());
    }
  }

  subscribe(listener: (event: ManagerEvent) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  #statusLine(): string {
    const phase = this.#options.state().phase;
    const kernel = readSchedExtStatus(this.#options.host);
    const scheduler = kernel.ops ?? (kernel.state === "unsupported" ? "no sched_ext" : "kernel default");
    const activity = this.#options.stages?.autopilot.activity;
    if (activity && this.#mode !== "observe")
      return `${this.#mode}; phase ${phase ? `${phase.class} (${phase.signature})` : "unknown"}; scheduler ${scheduler}; ${activity}`;
    return `${this.#mode}; phase ${phase ? `${phase.class} (${phase.signature})` : "unknown"}; scheduler ${scheduler}`;
  }

  #budget(): LlmBudget {
    const llm = this.#config.llm;
    const live = this.#options.stages?.decider.llmStatus();
    if (live?.enabled) {
      return {
        provider: llm.provider,
        state: live.breaker === "open" ? "error" : "idle",
        callsLeftHour: Math.max(0, llm.calls_per_hour - (live.callsLastHour ?? 0)),
        callsLeftDay: Math.max(0, llm.calls_per_day - (live.callsLastDay ?? 0)),
        tokensLeftDay: Math.max(0, llm.tokens_per_day - (live.tokensLastDay ?? 0)),
        spentUsdToday: live.costLastDayUsd ?? 0,
      };
    }
    return {
      provider: llm.provider,
      state: llm.provider === "none" ? "disabled" : "idle",
      callsLeftHour: llm.calls_per_hour,
      callsLeftDay: llm.calls_per_day,
      tokensLeftDay: llm.tokens_per_day,
      spentUsdToday: 0,
    };
  }

  #emit(event: ManagerEvent): void {
    for (const listener of this.#listeners) listener(event);
  }
}
