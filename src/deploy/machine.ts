import type { KernelEvent, SchedExtStatus } from "../kernel/types.ts";
import { describeRegressions, findRegressions, MIN_PROBATION_SAMPLES } from "./kpis.ts";
import type {
  CgroupKpi,
  ControllerState,
  DeployConfig,
  DeploymentRecord,
  Kpis,
  Outcome,
  Placed,
} from "./types.ts";

// The deployment controller's logic, free of I/O: (state, event) -> (state, effects). The runner
// (controller.ts) feeds it events (ticks, kernel status, finished swap jobs, operator commands)
// and carries out the effects; every change of phase is logged and stored by the runner.

export type DeployEvent =
  | {
      type: "apply";
      target: Placed;
      signature?: string;
      cgroup?: string;
      cgroupKpi?: CgroupKpi;
      reason: string;
      operator: boolean;
      pin?: boolean;
      /** Pre-swap KPIs including the targeted cgroup's (default: the recent host KPIs). */
      baseline?: Kpis[];
    }
  | { type: "kpis"; kpis: Kpis }
  | { type: "kernel"; status: SchedExtStatus; events: KernelEvent[] }
  | { type: "swapped"; ok: true; enableSeq: number; gapMs: number }
  | { type: "swapped"; ok: false; error: string }
  | { type: "rollback"; reason: string }
  /** Back to the kernel default because that is what the phase should run (no failure, no rollback). */
  | { type: "release"; reason: string }
  /** The kernel's reason for a disable, read after the fact (it is logged after the state changes). */
  | { type: "kernelSaid"; reason: string }
  | { type: "recorded"; deploymentId: number }
  | { type: "pause" }
  | { type: "resume" }
  | { type: "unpin" }
  | { type: "stopped"; kept: boolean };

export type Effect =
  /** Detach whatever is attached, wait for disabled, attach `to` (none: stay on the kernel default). */
  | { type: "swap"; to: Placed | undefined }
  | { type: "startDeployment"; record: Omit<DeploymentRecord, "id"> }
  | { type: "updateDeployment"; patch: Partial<DeploymentRecord> }
  | { type: "probationFailed"; hash: string; policy: string; signature: string; reason: string };

export interface Step {
  state: ControllerState;
  effects: Effect[];
}

/** How many pre-swap KPI samples form the baseline. */
export const BASELINE_SAMPLES = 10;

export function initialState(now: number): ControllerState {
  return { phase: "idle", paused: false, reason: "started", since: now, recent: [] };
}

/** Why an apply cannot start now (undefined: it can). */
export function refuseApply(
  state: ControllerState,
  event: Extract<DeployEvent, { type: "apply" }>,
): string | undefined {
  if (state.phase === "deploying" || state.phase === "rolling_back" || state.phase === "releasing")
    return `a swap is in flight (${state.phase})`;
  if (!event.operator && state.paused) return "the autopilot is paused";
  if (!event.operator && state.pinned) return `the operator pinned ${state.pinned}`;
  if (
    state.current?.ref.hash === event.target.ref.hash &&
    (state.phase === "active" || state.phase === "probation")
  ) {
    return `${event.target.ref.name} (${event.target.ref.hash.slice(0, 12)}) is already attached`;
  }
  return undefined;
}

export function transition(
  state: ControllerState,
  event: DeployEvent,
  now: number,
  config: DeployConfig,
): Step {
  const at = (patch: Partial<ControllerState>, reason: string): ControllerState => ({
    ...state,
    ...patch,
    reason,
    since: patch.phase && patch.phase !== state.phase ? now : state.since,
  });
  switch (event.type) {
    case "apply": {
      const refused = refuseApply(state, event);
      if (refused) return { state, effects: [] };
      const effects: Effect[] = [];
      if (state.phase === "probation")
        effects.push(finish("superseded", `replaced by ${event.target.ref.name}`));
      effects.push(
        {
          type: "startDeployment",
          record: {
            hash: event.target.ref.hash,
            policy: event.target.ref.name,
            signature: event.signature,
            cgroup: event.cgroup,
            startedAt: now,
            endedAt: undefined,
            outcome: "in_probation",
            reason: event.reason,
            kernelReason: undefined,
            gapMs: undefined,
            baseline: event.baseline ?? state.recent,
            probation: [],
          },
        },
        { type: "swap", to: event.target },
      );
      const next = at(
        {
          phase: "deploying",
          current: event.target,
          ...(event.pin ? { pinned: event.target.ref.hash } : {}),
          probation: {
            startedAt: now,
            until: now,
            baseline: event.baseline ?? state.recent,
            samples: [],
            ...(event.signature ? { signature: event.signature } : {}),
            ...(event.cgroup ? { cgroup: event.cgroup } : {}),
            ...(event.cgroup && event.cgroupKpi ? { cgroupKpi: event.cgroupKpi } : {}),
          },
        },
        event.reason,
      );
      return { state: withoutUndefined(next, "deploymentId", "enableSeq"), effects };
    }
    case "recorded":
      return { state: { ...state, deploymentId: event.deploymentId }, effects: [] };
    case "swapped":
      return swapped(state, event, now, config, at);
    case "kpis": {
      const recent = [...state.recent, event.kpis].slice(-BASELINE_SAMPLES);
      if (state.phase !== "probation" || !state.probation)
        return { state: { ...state, recent }, effects: [] };
      const probation = { ...state.probation, samples: [...state.probation.samples, event.kpis] };
      return judgeProbation({ ...state, recent, probation }, now, config, at);
    }
    case "kernel": {
      if ((state.phase !== "probation" && state.phase !== "active") || !state.current)
        return { state, effects: [] };
      const { status } = event;
      const ours =
        status.state === "enabled" &&
        status.ops === state.current.loadable.opsName &&
        (state.enableSeq === undefined || status.enableSeq === state.enableSeq);
      if (!ours) {
        const kernelReason = event.events.findLast(
          (e) => e.kind === "disabled" || e.kind === "error",
        )?.reason;
        const what =
          status.state === "enabled"
            ? `another scheduler took over (ops "${status.ops}", enable_seq ${status.enableSeq})`
            : `sched_ext ${status.state}${kernelReason ? `: ${kernelReason}` : ""}`;
        return rollBack(state, `${state.current.ref.name} lost: ${what}`, "ejected", kernelReason, at);
      }
      if (state.phase === "probation") return judgeProbation(state, now, config, at);
      return { state, effects: [] };
    }
    case "rollback": {
      if (
        !state.current ||
        state.phase === "deploying" ||
        state.phase === "rolling_back" ||
        state.phase === "releasing"
      )
        return { state, effects: [] };
      return rollBack(state, event.reason, "rolled_back", undefined, at);
    }
    case "release": {
      if (!state.current || state.pinned || (state.phase !== "active" && state.phase !== "probation"))
        return { state, effects: [] };
      const effects: Effect[] =
        state.phase === "probation" && state.deploymentId !== undefined
          ? [finish("superseded", event.reason, state.probation?.samples)]
          : [];
      effects.push({ type: "swap", to: undefined });
      // The default is what this phase runs now: a later failure falls back to it, not to a
      // policy that was good for some other phase.
      const next = withoutUndefined(
        at({ phase: "releasing" }, `${state.current.ref.name} released: ${event.reason}`),
        "current",
        "lastGood",
        "probation",
        "enableSeq",
      );
      return { state: next, effects };
    }
    case "kernelSaid":
      if (state.deploymentId === undefined) return { state, effects: [] };
      return { state, effects: [{ type: "updateDeployment", patch: { kernelReason: event.reason } }] };
    case "pause":
      return { state: { ...state, paused: true }, effects: [] };
    case "resume":
      return { state: { ...state, paused: false }, effects: [] };
    case "unpin":
      return { state: withoutUndefined({ ...state }, "pinned"), effects: [] };
    case "stopped":
      if (event.kept) return { state: at({}, "stopped; policy kept attached"), effects: [] };
      return {
        state: withoutUndefined(
          at({ phase: "idle" }, "stopped; kernel default restored"),
          "current",
          "probation",
          "enableSeq",
        ),
        effects: state.phase === "probation" ? [finish("superseded", "daemon stopped during probation")] : [],
      };
  }
}

function swapped(
  state: ControllerState,
  event: Extract<DeployEvent, { type: "swapped" }>,
  now: number,
  config: DeployConfig,
  at: (patch: Partial<ControllerState>, reason: string) => ControllerState,
): Step {
  if (state.phase === "deploying") {
    if (!event.ok) {
      const failed = rollBack(
        state,
        `attaching ${state.current?.ref.name} failed: ${event.error}`,
        "swap_failed",
        undefined,
        at,
      );
      return failed;
    }
    const probation = state.probation!;
    return {
      state: at(
        {
          phase: "probation",
          enableSeq: event.enableSeq,
          probation: { ...probation, startedAt: now, until: now + config.probationSeconds * 1000 },
        },
        `${state.current?.ref.name} attached (gap ${event.gapMs.toFixed(0)} ms); probation`,
      ),
      effects: [{ type: "updateDeployment", patch: { gapMs: event.gapMs } }],
    };
  }
  if (state.phase === "releasing") {
    const reason = event.ok
      ? "kernel default restored (chosen for the phase)"
      : `detaching failed: ${event.error}`;
    return {
      state: withoutUndefined(at({ phase: event.ok ? "idle" : "fallback_default" }, reason), "deploymentId"),
      effects: [],
    };
  }
  if (state.phase !== "rolling_back") return { state, effects: [] };
  if (event.ok && state.current) {
    return {
      state: withoutUndefined(
        at({ phase: "active", enableSeq: event.enableSeq }, `restored known-good ${state.current.ref.name}`),
        "probation",
        // The restored policy is no deployment of its own: later events leave the failed one's row alone.
        "deploymentId",
      ),
      effects: [],
    };
  }
  if (event.ok) {
    return {
      state: withoutUndefined(
        at({ phase: "fallback_default" }, "kernel default restored"),
        "probation",
        "enableSeq",
        "deploymentId",
      ),
      effects: [],
    };
  }
  if (state.current) {
    // Restoring the known-good policy failed: fall back to the kernel default.
    return {
      state: withoutUndefined(
        at({}, `restoring ${state.current.ref.name} failed: ${event.error}`),
        "current",
      ),
      effects: [{ type: "swap", to: undefined }],
    };
  }
  return {
    state: withoutUndefined(
      at({ phase: "fallback_default" }, `detaching failed: ${event.error}`),
      "probation",
      "enableSeq",
    ),
    effects: [],
  };
}

function judgeProbation(
  state: ControllerState,
  now: number,
  config: DeployConfig,
  at: (patch: Partial<ControllerState>, reason: string) => ControllerState,
): Step {
  const probation = state.probation!;
  const regressions = findRegressions(
    probation.baseline,
    probation.samples,
    config.regressionRatio,
    probation.cgroupKpi,
  );
  if (regressions.length > 0) {
    return rollBack(
      state,
      `KPI regression: ${describeRegressions(regressions)}`,
      "rolled_back",
      undefined,
      at,
    );
  }
  // A policy passes only after the whole window and enough samples to have been judged on.
  if (now < probation.until || probation.samples.length < MIN_PROBATION_SAMPLES)
    return { state, effects: [] };
  const current = state.current!;
  return {
    state: withoutUndefined(
      at({ phase: "active", lastGood: current }, `${current.ref.name} passed probation`),
      "probation",
    ),
    effects: [finish("passed", "passed probation", probation.samples)],
  };
}

function rollBack(
  state: ControllerState,
  reason: string,
  outcome: Outcome,
  kernelReason: string | undefined,
  at: (patch: Partial<ControllerState>, reason: string) => ControllerState,
): Step {
  const failing = state.current;
  const effects: Effect[] = [];
  if (
    state.deploymentId !== undefined &&
    (state.phase === "probation" || state.phase === "deploying" || outcome === "ejected")
  ) {
    effects.push(finish(outcome, reason, state.probation?.samples, kernelReason));
  }
  const signature = state.probation?.signature;
  if (failing && signature && state.phase !== "active") {
    effects.push({
      type: "probationFailed",
      hash: failing.ref.hash,
      policy: failing.ref.name,
      signature,
      reason,
    });
  }
  const target = state.lastGood && state.lastGood.ref.hash !== failing?.ref.hash ? state.lastGood : undefined;
  // An active known-good policy that fails is no longer known-good.
  const lastGood = state.lastGood?.ref.hash === failing?.ref.hash ? undefined : state.lastGood;
  effects.push({ type: "swap", to: target });
  const next = withoutUndefined(
    at(
      { phase: "rolling_back", ...(target ? { current: target } : {}), ...(lastGood ? { lastGood } : {}) },
      reason,
    ),
    "enableSeq",
    ...(target ? [] : (["current"] as const)),
    ...(lastGood ? [] : (["lastGood"] as const)),
  );
  return { state: next, effects };
}

function finish(outcome: Outcome, reason: string, probation?: Kpis[], kernelReason?: string): Effect {
  return {
    type: "updateDeployment",
    patch: {
      outcome,
      reason,
      ...(probation ? { probation } : {}),
      ...(kernelReason ? { kernelReason } : {}),
    },
  };
}

function withoutUndefined<K extends keyof ControllerState>(
  state: ControllerState,
  ...keys: K[]
): ControllerState {
  const copy = { ...state };
  for (const k of keys) delete copy[k];
  return copy;
}

/**
 * At start: bring the stored state and the kernel's into agreement. A policy is kept only when
 * the kernel runs exactly what the store says was active and its verdict still passes;
 * anything else (an unfinished probation, an unknown ops, leftover pinned links) is replaced by
 * the last known-good policy or the kernel default.
 */
export function reconcile(
  stored: ControllerState,
  status: SchedExtStatus,
  pinnedLinks: string[],
  isVerified: (hash: string) => boolean,
  now: number,
): Step {
  const base: ControllerState = withoutUndefined({ ...stored, since: now }, "probation", "enableSeq");
  const lastGood = stored.lastGood && isVerified(stored.lastGood.ref.hash) ? stored.lastGood : undefined;
  const clean = withoutUndefined(base, ...(lastGood ? [] : (["lastGood"] as const)));
  if (!status.supported) {
    return {
      state: withoutUndefined(
        { ...clean, phase: "idle", reason: "reconciled: this kernel has no sched_ext" },
        "current",
      ),
      effects: [],
    };
  }
  const current = stored.current;
  if (
    status.state === "enabled" &&
    stored.phase === "active" &&
    current &&
    status.ops === current.loadable.opsName &&
    isVerified(current.ref.hash)
  ) {
    return {
      state: {
        ...clean,
        phase: "active",
        current,
        enableSeq: status.enableSeq,
        reason: `reconciled: ${current.ref.name} still attached`,
      },
      effects: [],
    };
  }
  const effects: Effect[] = [];
  if (stored.deploymentId !== undefined && (stored.phase === "probation" || stored.phase === "deploying")) {
    effects.push(
      finish("rolled_back", "the daemon restarted before probation ended", stored.probation?.samples),
    );
  }
  const attachedSomething = status.state !== "disabled" || pinnedLinks.length > 0 || current !== undefined;
  if (!attachedSomething) {
    return {
      state: withoutUndefined({ ...clean, reason: "reconciled: nothing attached" }, "current"),
      effects,
    };
  }
  const target =
    lastGood && lastGood.ref.hash !== (stored.phase === "active" ? undefined : current?.ref.hash)
      ? lastGood
      : undefined;
  const what =
    status.state === "enabled"
      ? `ops "${status.ops}" attached`
      : `sched_ext ${status.state}, ${pinnedLinks.length} pinned link(s)`;
  effects.push({ type: "swap", to: target });
  const state = withoutUndefined(
    {
      ...clean,
      phase: "rolling_back",
      ...(target ? { current: target } : {}),
      reason: `reconciled (${what}, stored phase ${stored.phase}): restoring ${target ? target.ref.name : "the kernel default"}`,
    },
    ...(target ? [] : (["current"] as const)),
  );
  return { state, effects };
}
