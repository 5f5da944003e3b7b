import type { Clock } from "../host/clock.ts";
import type { Logger } from "../log/logger.ts";
import type { ObservationStore } from "../observe/persistence.ts";
import type { ObservePipeline } from "../observe/pipeline.ts";
import type { SampleSource } from "../observe/sampler.ts";
import type { PhaseChange, Profile, Sample } from "../observe/types.ts";

// The daemon's one loop. It owns time: every tick takes a sample, turns it into a profile,
// detects phase changes, stores and logs them, then hands them to the stages plugged in as
// handlers (decide, verify, deploy, D-Bus, sd_notify in later issues). Slow work never runs
// inside a tick: a handler starts it as an async job and posts its result back with
// `context.post`, which the loop applies at the start of the next tick, so every change of state
// happens here, in order.

export interface TickContext {
  /** The loop's state after this tick's observation. */
  readonly state: Readonly<LoopState>;
  /** Queues `apply` to run inside the loop at the start of the next tick (results of async jobs). */
  post(source: string, apply: () => void | Promise<void>): void;
  /** Aborted when the daemon stops: pass it to async jobs so they cancel. */
  readonly signal: AbortSignal;
  /** The phase change this tick reports (handed to onPhaseChange after onProfile), if any. */
  readonly change: PhaseChange | undefined;
}

/** A stage plugged into the loop. Handlers run in the order given, after the tick is stored. */
export interface LoopHandler {
  readonly name: string;
  onSample?(sample: Sample, context: TickContext): void | Promise<void>;
  onProfile?(profile: Profile, context: TickContext): void | Promise<void>;
  onPhaseChange?(change: PhaseChange, context: TickContext): void | Promise<void>;
  onStop?(): void | Promise<void>;
}

export interface LoopState {
  ticks: number;
  /** Ticks whose deadline had already passed when the previous tick ended (the host was slow). */
  skippedTicks: number;
  lastSampleAt: number | undefined;
  /** Monotonic milliseconds the latest sample took to read. */
  lastSampleMs: number | undefined;
  profile: Profile | undefined;
  /** The current phase: its signature, class and when it began. */
  phase: { signature: string; class: Profile["class"]; since: number } | undefined;
  phaseChanges: number;
  /** Signals the host lacks right now. */
  lacks: string[];
}

export interface LoopOptions {
  clock: Clock;
  source: SampleSource;
  pipeline: ObservePipeline;
  /** Where samples and phase changes are kept; undefined when the state database is unavailable. */
  store: ObservationStore | undefined;
  log: Logger;
  /** Milliseconds between ticks; 0 runs the source as fast as it gives (trace replay). */
  intervalMs: number;
  handlers?: LoopHandler[];
  /** A profile is logged at info level every this many ticks (and on every phase change). */
  profileLogEvery?: number;
}

export class DaemonLoop {
  readonly state: LoopState = {
    ticks: 0,
    skippedTicks: 0,
    lastSampleAt: undefined,
    lastSampleMs: undefined,
    profile: undefined,
    phase: undefined,
    phaseChanges: 0,
    lacks: [],
  };
  readonly #options: LoopOptions;
  readonly #handlers: LoopHandler[];
  readonly #posted: { source: string; apply: () => void | Promise<void> }[] = [];
  readonly #stop = new AbortController();
  #storeFailed = false;

  constructor(options: LoopOptions) {
    this.#options = options;
    this.#handlers = options.handlers ?? [];
  }

  /** Asks a running loop to stop after the current tick. */
  stop(): void {
    this.#stop.abort();
  }

  get signal(): AbortSignal {
    return this.#stop.signal;
  }

  /** Ticks until stopped or until the source runs dry; then closes the source and the handlers. */
  async run(): Promise<void> {
    const { clock, intervalMs } = this.#options;
    const start = clock.monotonic();
    let deadline = start;
    try {
      while (!this.#stop.signal.aborted) {
        if (!(await this.tick())) break;
        if (intervalMs <= 0) continue;
        deadline += intervalMs;
        const now = clock.monotonic();
        if (now > deadline) {
          // Overran: skip the missed ticks rather than sampling in a burst.
          const missed = Math.floor((now - deadline) / intervalMs) + 1;
          this.state.skippedTicks += missed;
          deadline += missed * intervalMs;
        }
        await clock.sleep(deadline - clock.monotonic(), this.#stop.signal).catch(() => {});
      }
    } finally {
      await this.#close();
    }
  }

  /** One tick; false when the source has no more samples. */
  async tick(): Promise<boolean> {
    await this.#applyPosted();
    const started = this.#options.clock.monotonic();
    const sample = this.#options.source.next();
    if (!sample) return false;
    this.state.ticks++;
    this.state.lastSampleAt = sample.at;
    this.state.lastSampleMs = this.#options.clock.monotonic() - started;
    this.#noteLacks(sample.lacks);
    const step = this.#options.pipeline.push(sample);
    this.#record(sample, step?.profile, step?.change);
    const context: TickContext = {
      state: this.state,
      signal: this.#stop.signal,
      post: (source, apply) => this.#posted.push({ source, apply }),
      change: step?.change,
    };
    for (const handler of this.#handlers) {
      await this.#guard(handler.name, async () => {
        await handler.onSample?.(sample, context);
        if (step) await handler.onProfile?.(step.profile, context);
        if (step?.change) await handler.onPhaseChange?.(step.change, context);
      });
    }
    return true;
  }

  /** Every effect of an observation in one place: state, store, log. */
  #record(sample: Sample, profile: Profile | undefined, change: PhaseChange | undefined): void {
    const { log, store } = this.#options;
    this.#persist("sample", () => store?.appendSample(sample));
    if (!profile) return;
    this.state.profile = profile;
    if (change) {
      this.state.phaseChanges++;
      this.state.phase = { signature: profile.signature, class: profile.class, since: change.at };
      this.#persist("phase change", () => store?.recordPhaseChange(change));
      log.info(
        {
          event: "phase",
          from: change.from?.signature,
          to: change.to.signature,
          class: change.to.class,
          drift: change.drift,
          moved: change.moved.map((m) => `${m.feature} ${round(m.from)}->${round(m.to)} (${m.score})`),
          topCgroups: profile.topCgroups.slice(0, 3).map((c) => `${c.path} ${Math.round(c.cpuShare * 100)}%`),
          topProcesses: profile.topProcesses.slice(0, 3).map((p) => `${p.comm}[${p.pid}]`),
        },
        change.from
          ? `phase change: ${change.from.signature} -> ${change.to.signature}`
          : `first phase: ${change.to.signature}`,
      );
    }
    if (!change && this.state.phase && this.state.phase.signature !== profile.signature) {
      // A young phase's signature settles as its mean does; the phase itself goes on.
      log.debug(
        {
          event: "phase-signature",
          from: this.state.phase.signature,
          to: profile.signature,
          class: profile.class,
        },
        `phase signature settled: ${this.state.phase.signature} -> ${profile.signature}`,
      );
      this.state.phase = { ...this.state.phase, signature: profile.signature, class: profile.class };
    }
    const every = this.#options.profileLogEvery ?? 10;
    const fields = {
      event: "profile",
      signature: profile.signature,
      class: profile.class,
      features: roundAll(profile.features),
    };
    if (change || this.state.ticks % every === 0)
      log.info(fields, `profile ${profile.class} ${profile.signature}`);
    else log.debug(fields, "profile");
  }

  #persist(what: string, write: () => void): void {
    try {
      write();
      if (this.#storeFailed) this.#options.log.info({}, "the state database accepts writes again");
      this.#storeFailed = false;
    } catch (error) {
      // The store failing (disk full, file removed) must not stop observation: say so once.
      if (!this.#storeFailed)
        this.#options.log.error(
          { error: String(error) },
          `cannot store the ${what}: ${(error as Error).message}`,
        );
      this.#storeFailed = true;
    }
  }

  #noteLacks(lacks: string[]): void {
    const before = new Set(this.state.lacks);
    const now = new Set(lacks);
    for (const l of now) {
      if (before.has(l)) continue;
      const reason =
        this.#options.source.lacks.find((known) => known.signal === l)?.reason ??
        "the sample source did not say why";
      this.#options.log.warn({ signal: l, reason }, `lacking ${l}: ${reason}; going on without it`);
    }
    for (const l of before)
      if (!now.has(l)) this.#options.log.info({ signal: l }, `signal ${l} is available again`);
    this.state.lacks = [...now];
  }

  async #applyPosted(): Promise<void> {
    const posted = this.#posted.splice(0);
    for (const { source, apply } of posted) await this.#guard(source, apply);
  }

  async #guard(name: string, work: () => void | Promise<void>): Promise<void> {
    try {
      await work();
    } catch (error) {
      this.#options.log.error(
        { stage: name, error: String(error) },
        `${name} failed: ${(error as Error).message}`,
      );
    }
  }

  async #close(): Promise<void> {
    for (const handler of this.#handlers) await this.#guard(handler.name, async () => handler.onStop?.());
    this.#options.source.close();
  }
}

function round(x: number): number {
  return Math.round(x * 1000) / 1000;
}

function roundAll(features: Profile["features"]): Record<string, number> {
  return Object.fromEntries(Object.entries(features).map(([k, v]) => [k, round(v)]));
}
