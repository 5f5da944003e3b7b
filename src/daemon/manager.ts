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
  type Status,
} from "../dbus/backend.ts";
import type { Clock } from "../host/clock.ts";
import type { Host } from "../host/host.ts";
import type { Journal } from "../journal/journal.ts";
import { readSchedExtStatus } from "../kernel/sysfs.ts";
import type { Logger } from "../log/logger.ts";
import type { ObservationStore } from "../observe/persistence.ts";
import type { PhaseChange } from "../observe/types.ts";
import { builtinCatalogue } from "../policies/catalogue.ts";
import type { LoopHandler, LoopState } from "./loop.ts";
import type { Notifier } from "./notify.ts";

// The daemon as the bus, the journal and systemd see it, for the daemon as it stands: the
// observe loop. Reads report the loop's state and the kernel's own sysfs; deciding and
// deploying are not wired into the loop yet, so changes that would touch the kernel are
// refused with a reason rather than pretended.

const NOT_WIRED =
  "this schedctld observes only: deciding, verifying and deploying are not wired into its loop yet";

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
}

export class DaemonManager implements ManagerBackend, LoopHandler {
  readonly name = "interfaces";
  readonly #options: ManagerOptions;
  readonly #listeners = new Set<(event: ManagerEvent) => void>();
  readonly #startedAt: number;
  readonly #modeChanges: HistoryEntry[] = [];
  #config: Config;
  #mode: Mode = "observe";
  #busReady = false;
  #ready = false;
  #lastTick = Number.NEGATIVE_INFINITY;
  #watchdog: NodeJS.Timeout | undefined;
  #lastStatusLine = "";

  constructor(options: ManagerOptions) {
    this.#options = options;
    this.#config = options.config;
    this.#startedAt = options.clock.now();
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
      activePolicy: "",
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
      activePolicy: null,
      phase: state.phase ?? null,
      profile: state.profile ?? null,
      lastDecisions: [],
      llm: this.#budget(),
      startedAt: this.#startedAt,
      samples: state.ticks,
    };
  }

  listPolicies(): PolicyInfo[] {
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
    return [...phases, ...this.#modeChanges].sort((a, b) => b.at - a.at).slice(0, limit);
  }

  explain(): Explanation {
    const kernel = readSchedExtStatus(this.#options.host);
    const status = this.status();
    const lines = [
      kernel.state === "unsupported"
        ? "this kernel has no sched_ext: its default scheduler runs and no policy can be attached"
        : kernel.ops
          ? `the kernel runs ${kernel.ops}, which schedctl did not attach`
          : "no sched_ext policy is attached: the kernel's default scheduler runs",
      NOT_WIRED,
    ];
    return { policy: null, decision: null, profile: status.profile, verdict: null, lines };
  }

  async setMode(mode: Mode): Promise<void> {
    if (mode !== "observe") throw new BackendError("refused", `cannot switch to ${mode}: ${NOT_WIRED}`);
    this.#modeChanges.push({ at: this.#options.clock.now(), kind: "mode", summary: `mode set to ${mode}` });
    this.#mode = mode;
  }

  async switchPolicy(): Promise<never> {
    throw new BackendError("refused", NOT_WIRED);
  }

  async rollback(): Promise<never> {
    throw new BackendError("refused", `nothing to roll back: ${NOT_WIRED}`);
  }

  async verifyPolicy(): Promise<never> {
    throw new BackendError("refused", NOT_WIRED);
  }

  async createPolicy(): Promise<never> {
    throw new BackendError("refused", NOT_WIRED);
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
    return `${this.#mode}; phase ${phase ? `${phase.class} (${phase.signature})` : "unknown"}; scheduler ${scheduler}`;
  }

  #budget(): LlmBudget {
    const llm = this.#config.llm;
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
