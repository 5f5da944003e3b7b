import type { Clock } from "../host/clock.ts";
import type { Kernel, KernelEvent } from "../kernel/types.ts";
import type { Logger } from "../log/logger.ts";
import type { Profile } from "../observe/types.ts";
import type { PolicyRef } from "../policies/types.ts";
import { kpisFromProfile } from "./kpis.ts";
import {
  BASELINE_SAMPLES,
  type DeployEvent,
  type Effect,
  initialState,
  reconcile,
  refuseApply,
  transition,
} from "./machine.ts";
import type {
  CgroupKpi,
  ControllerState,
  DeployConfig,
  DeploymentStore,
  Kpis,
  Loadable,
  Placed,
  TransitionRecord,
  VerdictLookup,
} from "./types.ts";

// The effectful half of the deployment controller: it feeds the pure machine, persists and
// logs every transition, and runs swaps as async jobs whose results re-enter as events, so the
// daemon's loop never waits on a swap. Its own short watchdog poll of sched_ext's sysfs state
// catches an ejection between the daemon's ticks.

export interface ControllerDeps {
  kernel: Kernel;
  store: DeploymentStore;
  verdicts: VerdictLookup;
  clock: Clock;
  logger: Logger;
  config: DeployConfig;
  /** How often the kernel's state is polled while a policy is attached; 0: only on watch(). */
  watchdogMs?: number;
}

export interface ApplyRequest {
  ref: PolicyRef;
  loadable: Loadable;
  /** The workload signature the decision was made for (probation failures count against it). */
  signature?: string;
  /** The cgroup the decision targets: its KPIs join the probation guard. */
  cgroup?: string;
  /** Which of its pressures judges the probation (default: "some"). */
  cgroupKpi?: CgroupKpi;
  reason: string;
  /** Pre-swap KPIs of the phase the decision was made for (default: the latest samples). */
  baseline?: Kpis[];
}

export type ApplyResult = { accepted: true } | { accepted: false; reason: string };

export interface TransitionNotice extends TransitionRecord {
  /** Monotonic ms of the transition (for measuring reaction times). */
  monotonic: number;
  state: ControllerState;
}

const DETACH_TIMEOUT_MS = 10_000;
const ATTACH_TIMEOUT_MS = 20_000;

export class DeployController {
  readonly #deps: ControllerDeps;
  #state: ControllerState;
  #job: Promise<void> = Promise.resolve();
  #timer: NodeJS.Timeout | undefined;
  #listeners: ((notice: TransitionNotice) => void)[] = [];
  #kernelListeners: ((reason: string) => void)[] = [];
  #started: Promise<void> | undefined;
  /** The latest profiles, so that a decision naming a cgroup gets that cgroup's baseline too. */
  #profiles: Profile[] = [];

  constructor(deps: ControllerDeps) {
    this.#deps = deps;
    this.#state = initialState(deps.clock.now());
  }

  get state(): ControllerState {
    return this.#state;
  }

  onTransition(listener: (notice: TransitionNotice) => void): void {
    this.#listeners.push(listener);
  }

  /** The kernel's own reason each time it disabled a scheduler of ours ("runnable task stall", ...). */
  onKernelDisabled(listener: (reason: string) => void): void {
    this.#kernelListeners.push(listener);
  }

  /**
   * Reconciles the kernel with the store, then starts the watchdog poll. Called again, it
   * returns the first call's promise: the daemon starts reconciling before it has loaded the
   * rest of itself, and its autopilot awaits that same reconciliation later.
   */
  start(): Promise<void> {
    this.#started ??= this.#reconcileAndWatch();
    return this.#started;
  }

  async #reconcileAndWatch(): Promise<void> {
    const { kernel, store, clock } = this.#deps;
    const stored = store.loadState() ?? initialState(clock.now());
    this.#state = stored;
    const step = reconcile(
      stored,
      kernel.status(),
      kernel.pinnedLinks(),
      (h) => this.#verified(h),
      clock.now(),
    );
    this.#commit("reconcile", step.state);
    this.#run(step.effects);
    await this.#job;
    const every = this.#deps.watchdogMs ?? 250;
    if (every > 0) {
      this.#timer = setInterval(() => this.#pollKernel(), every);
      this.#timer.unref();
    }
  }

  /** One daemon tick: the latest KPIs (when the sampler has them) and the kernel's state. */
  watch(kpis: Kpis | undefined): void {
    if (kpis) this.#dispatch({ type: "kpis", kpis });
    this.#pollKernel();
  }

  /** One daemon tick from observe's Profile: host KPIs, and the targeted cgroup's during probation. */
  watchProfile(profile: Profile): void {
    this.#profiles = [...this.#profiles, profile].slice(-BASELINE_SAMPLES);
    this.watch(kpisFromProfile(profile, this.#state.probation?.cgroup));
  }

  apply(request: ApplyRequest): ApplyResult {
    return this.#apply(request, false, false);
  }

  /** Operator: deploy this policy and keep it until unpinned (the autopilot leaves it alone). */
  pin(request: ApplyRequest): ApplyResult {
    return this.#apply(request, true, true);
  }

  unpin(): void {
    this.#dispatch({ type: "unpin" });
  }

  pause(): void {
    this.#dispatch({ type: "pause" });
  }

  resume(): void {
    this.#dispatch({ type: "resume" });
  }

  rollbackNow(reason = "operator asked for a rollback"): ApplyResult {
    if (!this.#state.current) return { accepted: false, reason: "no policy of ours is attached" };
    if (this.#state.phase === "deploying" || this.#state.phase === "rolling_back") {
      return { accepted: false, reason: `a swap is in flight (${this.#state.phase})` };
    }
    this.#dispatch({ type: "rollback", reason });
    return { accepted: true };
  }

  /** The autopilot chose the kernel default: detach ours, with no failure counted against it. */
  release(reason: string): ApplyResult {
    const { phase, current, pinned } = this.#state;
    if (!current || (phase !== "active" && phase !== "probation"))
      return { accepted: false, reason: `nothing of ours to release (${phase})` };
    if (pinned) return { accepted: false, reason: `the operator pinned ${pinned}` };
    this.#dispatch({ type: "release", reason });
    return { accepted: true };
  }

  /** Resolves when no swap job is in flight. */
  async settled(): Promise<void> {
    let seen: Promise<void>;
    do {
      seen = this.#job;
      await seen;
    } while (seen !== this.#job);
  }

  /** Stops the watchdog; restores the kernel default unless the policy is to be kept. */
  async stop(keepPolicy = this.#deps.config.keepPolicyOnStop): Promise<void> {
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = undefined;
    await this.settled();
    if (!keepPolicy) await this.#deps.kernel.detach({ timeoutMs: DETACH_TIMEOUT_MS });
    this.#dispatch({ type: "stopped", kept: keepPolicy });
  }

  #apply(request: ApplyRequest, operator: boolean, pin: boolean): ApplyResult {
    const { ref, loadable } = request;
    if (ref.hash !== loadable.hash)
      return { accepted: false, reason: "the loadable is not the referenced policy's build" };
    const verdict = this.#deps.verdicts.getVerdict(ref.hash);
    if (!verdict?.passed) {
      return {
        accepted: false,
        reason: verdict
          ? `its verdict failed at the ${verdict.stage} stage: ${verdict.log.split("\n").slice(0, 3).join(" | ")}`
          : "it has no verdict: verify it first",
      };
    }
    if (verdict.opsName !== undefined && verdict.opsName !== loadable.opsName) {
      return {
        accepted: false,
        reason: `ops name ${loadable.opsName} differs from the verified ${verdict.opsName}`,
      };
    }
    if (!operator && request.signature && this.#deps.store.isQuarantined(ref.hash, request.signature)) {
      return { accepted: false, reason: `${ref.name} is quarantined for this workload signature` };
    }
    const event: DeployEvent = {
      type: "apply",
      target: { ref, loadable },
      reason: request.reason,
      operator,
      pin,
      ...(request.signature ? { signature: request.signature } : {}),
      ...(request.cgroup ? { cgroup: request.cgroup } : {}),
      ...(request.cgroupKpi ? { cgroupKpi: request.cgroupKpi } : {}),
      ...(request.baseline && request.baseline.length > 0
        ? { baseline: request.baseline }
        : request.cgroup && this.#profiles.length > 0
          ? { baseline: this.#profiles.map((p) => kpisFromProfile(p, request.cgroup)) }
          : {}),
    };
    const refused = refuseApply(this.#state, event);
    if (refused) return { accepted: false, reason: refused };
    this.#dispatch(event);
    return { accepted: true };
  }

  #verified(hash: string): boolean {
    return this.#deps.verdicts.getVerdict(hash)?.passed === true;
  }

  #pollKernel(): void {
    const phase = this.#state.phase;
    if (phase !== "probation" && phase !== "active") return;
    try {
      const { kernel } = this.#deps;
      const events = kernel.readEvents();
      this.#dispatch({ type: "kernel", status: kernel.status(), events });
      this.#tellKernelDisabled(events);
    } catch (error) {
      this.#internalError(error);
    }
  }

  #dispatch(event: DeployEvent): void {
    const step = transition(this.#state, event, this.#deps.clock.now(), this.#deps.config);
    this.#commit(event.type, step.state);
    this.#run(step.effects);
  }

  #commit(eventName: string, next: ControllerState): void {
    const before = this.#state;
    this.#state = next;
    if (next === before && eventName !== "reconcile") return;
    // Passed probation (or needed none): a crash from now on keeps it attached.
    if (next.phase === "active" && before.phase !== "active") this.#deps.kernel.confirm();
    const { store, logger, clock } = this.#deps;
    store.saveState(next);
    if (next.phase === before.phase && next.reason === before.reason && eventName !== "reconcile") return;
    const record: TransitionRecord = {
      at: clock.now(),
      from: before.phase,
      to: next.phase,
      event: eventName,
      reason: next.reason,
      hash: next.current?.ref.hash,
    };
    store.appendTransition(record);
    logger.info(
      { ...record, policy: next.current?.ref.name },
      `deploy: ${before.phase} -> ${next.phase}: ${next.reason}`,
    );
    const notice = { ...record, monotonic: clock.monotonic(), state: next };
    for (const listener of this.#listeners) listener(notice);
  }

  #run(effects: Effect[]): void {
    for (const effect of effects) {
      try {
        this.#effect(effect);
      } catch (error) {
        this.#internalError(error);
      }
    }
  }

  #effect(effect: Effect): void {
    const { store, config, logger, clock } = this.#deps;
    switch (effect.type) {
      case "startDeployment":
        this.#dispatch({ type: "recorded", deploymentId: store.saveDeployment(effect.record) });
        return;
      case "updateDeployment": {
        const id = this.#state.deploymentId;
        const row = id === undefined ? undefined : store.getDeployment(id);
        if (!row) return;
        const ended = effect.patch.outcome !== undefined && effect.patch.outcome !== "in_probation";
        store.saveDeployment({ ...row, ...effect.patch, ...(ended ? { endedAt: clock.now() } : {}) });
        return;
      }
      case "probationFailed": {
        const failures = store.addProbationFailure(effect.hash, effect.signature);
        if (failures >= config.quarantineAfter) {
          store.quarantine({
            hash: effect.hash,
            policy: effect.policy,
            signature: effect.signature,
            at: clock.now(),
            reason: `${failures} probation failures; last: ${effect.reason}`,
          });
          logger.warn(
            { hash: effect.hash, policy: effect.policy, signature: effect.signature },
            "deploy: policy quarantined",
          );
        }
        return;
      }
      case "swap":
        this.#job = this.#job.then(() => this.#swap(effect.to));
        return;
    }
  }

  async #swap(to: Placed | undefined): Promise<void> {
    const { kernel, clock } = this.#deps;
    const started = clock.monotonic();
    try {
      if (to && !this.#verified(to.ref.hash)) throw new Error(`${to.ref.name} has no passing verdict`);
      await kernel.detach({ timeoutMs: DETACH_TIMEOUT_MS });
      this.#noteKernelReason();
      if (!to) {
        const status = kernel.status();
        if (status.state !== "disabled" && status.state !== "unsupported") {
          throw new Error(`sched_ext still ${status.state} (ops "${status.ops}") after detaching`);
        }
        this.#dispatch({ type: "swapped", ok: true, enableSeq: status.enableSeq, gapMs: 0 });
        return;
      }
      // A new policy is attached in probation; a restored known-good one is proven already.
      await kernel.attach(to.loadable, {
        timeoutMs: ATTACH_TIMEOUT_MS,
        probation: this.#state.phase === "deploying",
      });
      const gapMs = clock.monotonic() - started;
      this.#noteKernelReason();
      const status = kernel.status();
      if (status.state !== "enabled" || status.ops !== to.loadable.opsName) {
        throw new Error(`after attaching, the kernel reports ${status.state} with ops "${status.ops}"`);
      }
      this.#dispatch({ type: "swapped", ok: true, enableSeq: status.enableSeq, gapMs });
    } catch (error) {
      this.#dispatch({ type: "swapped", ok: false, error: brief((error as Error).message) });
    }
  }

  /** Passes on why the kernel disabled a scheduler (not our own detaches), once it has said so. */
  #noteKernelReason(): void {
    const events = this.#deps.kernel.readEvents();
    const disabled = this.#tellKernelDisabled(events);
    if (!disabled) return;
    const details = events.filter((e) => e.kind === "error" && e.ops === disabled.ops).map((e) => e.reason);
    const reason = details.length ? `${disabled.reason}: ${details.join("; ")}` : disabled.reason;
    this.#deps.logger.warn({ ops: disabled.ops, reason }, "deploy: the kernel disabled a scheduler");
    this.#dispatch({ type: "kernelSaid", reason });
  }

  /** The kernel's latest disable of a scheduler (not our own detach), told to the listeners. */
  #tellKernelDisabled(events: KernelEvent[]): KernelEvent | undefined {
    const disabled = events.findLast(
      (e) => e.kind === "disabled" && e.reason !== "unregistered from user space",
    );
    if (disabled) for (const listener of this.#kernelListeners) listener(disabled.reason);
    return disabled;
  }

  #internalError(error: unknown): void {
    this.#deps.logger.error({ err: (error as Error).message }, "deploy: internal error");
    if (this.#state.current && this.#state.phase !== "deploying" && this.#state.phase !== "rolling_back") {
      this.#dispatch({ type: "rollback", reason: `internal error: ${(error as Error).message}` });
    }
  }
}

/** A failure's first line and its last few (where bpftool and the verifier say why), for reasons and logs. */
function brief(message: string): string {
  const lines = message.trim().split("\n");
  if (lines.length <= 6) return lines.join(" | ");
  return [lines[0], "...", ...lines.slice(-4)].join(" | ");
}
