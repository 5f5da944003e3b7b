import { describe, expect, it } from "vitest";
import {
  type DeployEvent,
  type Effect,
  initialState,
  reconcile,
  transition,
} from "../../../src/deploy/machine.ts";
import type { ControllerState, DeployConfig, Kpis, Placed } from "../../../src/deploy/types.ts";
import type { SchedExtStatus } from "../../../src/kernel/types.ts";

const config: DeployConfig = {
  probationSeconds: 10,
  regressionRatio: 1.25,
  quarantineAfter: 2,
  keepPolicyOnStop: false,
};

function placed(name: string, digit: string): Placed {
  const hash = digit.repeat(64);
  return {
    ref: { origin: "builtin", name, tunables: {}, hash },
    loadable: { kind: "object", hash, objectPath: `/cache/${name}.bpf.o`, opsName: `schedctl_${name}` },
  };
}
const A = placed("vtime", "a");
const B = placed("latency", "b");
const calm: Kpis = { psiCpuSome: 0.2, runDelayPerCpuTime: 0.5, cgroupPsiCpuSome: 0.05 };
const hurt: Kpis = { psiCpuSome: 0.2, runDelayPerCpuTime: 0.5, cgroupPsiCpuSome: 0.6 };
const calmHost: Kpis = { psiCpuSome: 0.2, runDelayPerCpuTime: 0.5 };
const busyHost: Kpis = { psiCpuSome: 0.5, runDelayPerCpuTime: 4 };
const enabled = (ops: string, enableSeq = 7): SchedExtStatus => ({
  supported: true,
  state: "enabled",
  ops,
  enableSeq,
});

/** Feeds events in order; returns the final state and every effect. */
function run(
  state: ControllerState,
  events: [number, DeployEvent][],
): { state: ControllerState; effects: Effect[] } {
  const effects: Effect[] = [];
  for (const [now, event] of events) {
    const step = transition(state, event, now, config);
    state = step.state;
    effects.push(...step.effects);
  }
  return { state, effects };
}

const apply = (target: Placed, operator = false): Extract<DeployEvent, { type: "apply" }> => ({
  type: "apply",
  target,
  signature: "sig-latency",
  cgroup: "/api.service",
  reason: "phase changed",
  operator,
});

/** A in place as known-good, with calm KPIs recorded. */
function activeOnA(): ControllerState {
  return run(initialState(0), [
    [0, apply(A)],
    [10, { type: "recorded", deploymentId: 1 }],
    [100, { type: "swapped", ok: true, enableSeq: 7, gapMs: 40 }],
    [1_000, { type: "kpis", kpis: calm }],
    [2_000, { type: "kpis", kpis: calm }],
    [3_000, { type: "kpis", kpis: calm }],
    [4_000, { type: "kpis", kpis: calm }],
    [11_200, { type: "kpis", kpis: calm }],
    [12_200, { type: "kpis", kpis: calm }],
  ]).state;
}

describe("deployment state machine", () => {
  it("deploys, holds probation for the window, then marks the policy known-good", () => {
    const { state, effects } = run(activeOnA(), [
      [20_000, apply(B)],
      [20_010, { type: "recorded", deploymentId: 2 }],
      [20_100, { type: "swapped", ok: true, enableSeq: 8, gapMs: 35 }],
      [21_000, { type: "kpis", kpis: calm }],
      [22_000, { type: "kpis", kpis: calm }],
      [23_000, { type: "kpis", kpis: calm }],
      [24_000, { type: "kpis", kpis: calm }],
      [25_000, { type: "kernel", status: enabled("schedctl_latency", 8), events: [] }],
    ]);
    expect(state.phase).toBe("probation");
    expect(effects.filter((e) => e.type === "swap")).toEqual([{ type: "swap", to: B }]);
    const late = run(state, [
      [30_200, { type: "kernel", status: enabled("schedctl_latency", 8), events: [] }],
    ]);
    expect(late.state.phase, "the window is over but only four samples were judged").toBe("probation");
    const done = run(state, [[30_200, { type: "kpis", kpis: calm }]]);
    expect(done.state.phase).toBe("active");
    expect(done.state.lastGood?.ref.name).toBe("latency");
    expect(done.effects).toContainEqual({
      type: "updateDeployment",
      patch: { outcome: "passed", reason: "passed probation", probation: [calm, calm, calm, calm, calm] },
    });
  });

  it("rolls back to the known-good policy when the targeted cgroup's KPI regresses", () => {
    const { state, effects } = run(activeOnA(), [
      [20_000, apply(B)],
      [20_010, { type: "recorded", deploymentId: 2 }],
      [20_100, { type: "swapped", ok: true, enableSeq: 8, gapMs: 35 }],
      [21_000, { type: "kpis", kpis: hurt }],
      [22_000, { type: "kpis", kpis: hurt }],
      [23_000, { type: "kpis", kpis: hurt }],
      [24_000, { type: "kpis", kpis: hurt }],
      [25_000, { type: "kpis", kpis: hurt }],
    ]);
    expect(state.phase).toBe("rolling_back");
    expect(state.current).toEqual(A);
    expect(state.reason).toMatch(/KPI regression: cgroupPsiCpuSome 0\.050 -> 0\.600/);
    expect(effects).toContainEqual({ type: "swap", to: A });
    expect(effects).toContainEqual(
      expect.objectContaining({ type: "probationFailed", hash: B.ref.hash, signature: "sig-latency" }),
    );
    const restored = run(state, [[24_000, { type: "swapped", ok: true, enableSeq: 9, gapMs: 30 }]]);
    expect(restored.state.phase).toBe("active");
    expect(restored.state.current).toEqual(A);
  });

  it("does not call a regression on near-zero KPIs", () => {
    const idle: Kpis = { psiCpuSome: 0.001, runDelayPerCpuTime: 0.01 };
    const busier: Kpis = { psiCpuSome: 0.02, runDelayPerCpuTime: 0.05 };
    const { state } = run(initialState(0), [
      [0, { type: "kpis", kpis: idle }],
      [1, apply(B)],
      [2, { type: "swapped", ok: true, enableSeq: 3, gapMs: 1 }],
      [3, { type: "kpis", kpis: busier }],
      [4, { type: "kpis", kpis: busier }],
      [5, { type: "kpis", kpis: busier }],
      [6, { type: "kpis", kpis: busier }],
      [7, { type: "kpis", kpis: busier }],
    ]);
    expect(state.phase).toBe("probation");
  });

  it("treats an ejection as a failure, stores the kernel's reason and restores the known-good policy", () => {
    const { state, effects } = run(activeOnA(), [
      [20_000, apply(B)],
      [20_010, { type: "recorded", deploymentId: 2 }],
      [20_100, { type: "swapped", ok: true, enableSeq: 8, gapMs: 35 }],
      [
        23_000,
        {
          type: "kernel",
          status: { supported: true, state: "disabled", ops: undefined, enableSeq: 8 },
          events: [
            {
              at: 22_900,
              kind: "disabled",
              ops: "schedctl_latency",
              reason: "runnable task stall",
              raw: "...",
            },
          ],
        },
      ],
    ]);
    expect(state.phase).toBe("rolling_back");
    expect(state.reason).toBe("latency lost: sched_ext disabled: runnable task stall");
    expect(effects).toContainEqual({
      type: "updateDeployment",
      patch: expect.objectContaining({ outcome: "ejected", kernelReason: "runnable task stall" }),
    });
    expect(effects.at(-1)).toEqual({ type: "swap", to: A });
  });

  it("falls back to the kernel default when the known-good policy itself is ejected, and when restoring fails", () => {
    const ejected = run(activeOnA(), [
      [20_000, { type: "kernel", status: enabled("someone_else", 99), events: [] }],
    ]);
    expect(ejected.state.reason).toMatch(/another scheduler took over/);
    expect(ejected.effects.at(-1)).toEqual({ type: "swap", to: undefined });
    expect(ejected.state.lastGood).toBeUndefined();
    const done = run(ejected.state, [[20_500, { type: "swapped", ok: true, enableSeq: 99, gapMs: 0 }]]);
    expect(done.state.phase).toBe("fallback_default");

    const failing = run(activeOnA(), [
      [20_000, apply(B)],
      [20_100, { type: "swapped", ok: false, error: "EBUSY" }],
    ]);
    expect(failing.state.current).toEqual(A);
    const restoreFails = run(failing.state, [[20_200, { type: "swapped", ok: false, error: "verifier" }]]);
    expect(restoreFails.effects).toEqual([{ type: "swap", to: undefined }]);
    expect(restoreFails.state.current).toBeUndefined();
  });

  it("honours pause and pin for the autopilot but not for the operator", () => {
    const paused = run(activeOnA(), [
      [20_000, { type: "pause" }],
      [20_001, apply(B)],
    ]);
    expect(paused.state.current).toEqual(A);
    expect(paused.state.phase).toBe("active");
    const pinned = run(paused.state, [[20_002, { ...apply(B, true), pin: true }]]);
    expect(pinned.state.phase).toBe("deploying");
    expect(pinned.state.pinned).toBe(B.ref.hash);
  });

  it("rolls back on the operator's word, and judges a cgroup decision against that cgroup's own baseline", () => {
    const now = run(activeOnA(), [
      [20_000, apply(B)],
      [20_010, { type: "recorded", deploymentId: 2 }],
      [20_100, { type: "swapped", ok: true, enableSeq: 8, gapMs: 35 }],
      [21_000, { type: "rollback", reason: "operator asked for a rollback" }],
      [21_500, { type: "swapped", ok: true, enableSeq: 9, gapMs: 30 }],
    ]);
    expect(now.state).toMatchObject({ phase: "active", current: A, reason: "restored known-good vtime" });
    expect(now.effects).toContainEqual({
      type: "updateDeployment",
      patch: { outcome: "rolled_back", reason: "operator asked for a rollback", probation: [] },
    });

    const quiet: Kpis = { psiCpuSome: 0.2, runDelayPerCpuTime: 0.5, cgroupPsiCpuSome: 0.01 };
    const judged = run(initialState(0), [
      [0, { type: "kpis", kpis: { psiCpuSome: 0.2, runDelayPerCpuTime: 0.5 } }],
      [1, { ...apply(B), baseline: [quiet, quiet] }],
      [2, { type: "swapped", ok: true, enableSeq: 3, gapMs: 1 }],
      [3, { type: "kpis", kpis: hurt }],
      [4, { type: "kpis", kpis: hurt }],
      [5, { type: "kpis", kpis: hurt }],
      [6, { type: "kpis", kpis: hurt }],
      [7, { type: "kpis", kpis: hurt }],
    ]);
    expect(judged.state.reason).toMatch(/cgroupPsiCpuSome 0\.010 -> 0\.600/);
    expect(judged.effects.at(-1)).toEqual({ type: "swap", to: undefined });
  });

  it("returns to the kernel default when the phase calls for it: no rollback, no failure, default afterwards", () => {
    const released = run(activeOnA(), [
      [20_000, { type: "release", reason: "planner chose the kernel default" }],
    ]);
    expect(released.state.phase).toBe("releasing");
    expect(released.state.current).toBeUndefined();
    expect(released.state.lastGood).toBeUndefined();
    expect(released.effects).toEqual([{ type: "swap", to: undefined }]);
    // Nothing else may start while the detach is in flight.
    expect(run(released.state, [[20_001, apply(B)]]).effects).toEqual([]);
    const done = run(released.state, [[20_300, { type: "swapped", ok: true, enableSeq: 7, gapMs: 0 }]]);
    expect(done.state).toMatchObject({
      phase: "idle",
      reason: "kernel default restored (chosen for the phase)",
    });

    // During probation the deployment ends as superseded, never as a failure.
    const onProbation = run(initialState(0), [
      [0, apply(B)],
      [10, { type: "recorded", deploymentId: 4 }],
      [100, { type: "swapped", ok: true, enableSeq: 3, gapMs: 20 }],
      [500, { type: "release", reason: "idle phase" }],
    ]);
    expect(onProbation.effects.some((e) => e.type === "probationFailed")).toBe(false);
    expect(onProbation.effects).toContainEqual({
      type: "updateDeployment",
      patch: { outcome: "superseded", reason: "idle phase", probation: [] },
    });
    // A later policy that fails falls back to the default, not to one good for another phase.
    const later = run(done.state, [
      [30_000, apply(B)],
      [30_010, { type: "recorded", deploymentId: 5 }],
      [30_100, { type: "swapped", ok: true, enableSeq: 8, gapMs: 20 }],
      [30_200, { type: "rollback", reason: "ejected" }],
    ]);
    expect(later.effects.at(-1)).toEqual({ type: "swap", to: undefined });
    // Nothing of ours attached: nothing to release.
    expect(run(initialState(0), [[1, { type: "release", reason: "x" }]]).effects).toEqual([]);
  });

  it("judges a decision that names a cgroup by that cgroup alone", () => {
    const before: Kpis = { psiCpuSome: 0.2, runDelayPerCpuTime: 0.5, cgroupPsiCpuSome: 0.3 };
    // The hogs wait more (host KPIs rise), the service waits less: the policy does its job.
    const after: Kpis = { psiCpuSome: 0.5, runDelayPerCpuTime: 4, cgroupPsiCpuSome: 0.1 };
    const events: [number, DeployEvent][] = [
      [1, { ...apply(B), baseline: [before, before] }],
      [2, { type: "swapped", ok: true, enableSeq: 3, gapMs: 1 }],
      ...[3, 4, 5, 6, 7].map((t): [number, DeployEvent] => [t, { type: "kpis", kpis: after }]),
    ];
    expect(run(initialState(0), events).state.phase).toBe("probation");
    const untargeted: [number, DeployEvent][] = [
      [1, { ...apply(B), baseline: [calmHost, calmHost] }],
      [2, { type: "swapped", ok: true, enableSeq: 3, gapMs: 1 }],
      ...[3, 4, 5, 6, 7].map((t): [number, DeployEvent] => [t, { type: "kpis", kpis: busyHost }]),
    ];
    expect(run(initialState(0), untargeted).state.reason).toMatch(/runDelayPerCpuTime 0\.500 -> 4\.000/);
  });

  it("judges a service by the time it waited for others, not for its own threads", () => {
    // The policy runs the service's threads one after another on a CPU kept for them: they wait
    // for each other more ("some" rises) and for the hogs less ("full" falls).
    const before: Kpis = {
      psiCpuSome: 0.2,
      runDelayPerCpuTime: 0.5,
      cgroupPsiCpuSome: 0.25,
      cgroupPsiCpuFull: 0.2,
    };
    const after: Kpis = {
      psiCpuSome: 0.2,
      runDelayPerCpuTime: 0.5,
      cgroupPsiCpuSome: 0.4,
      cgroupPsiCpuFull: 0.01,
    };
    const probation = (cgroupKpi?: "cgroupPsiCpuFull"): [number, DeployEvent][] => [
      [1, { ...apply(B), ...(cgroupKpi && { cgroupKpi }), baseline: [before, before] }],
      [2, { type: "swapped", ok: true, enableSeq: 3, gapMs: 1 }],
      ...[3, 4, 5, 6, 7].map((t): [number, DeployEvent] => [t, { type: "kpis", kpis: after }]),
    ];
    const service = run(initialState(0), probation("cgroupPsiCpuFull")).state;
    expect(service.phase).toBe("probation");
    expect(service.probation?.cgroupKpi).toBe("cgroupPsiCpuFull");
    expect(run(initialState(0), probation()).state.reason).toMatch(/cgroupPsiCpuSome 0\.250 -> 0\.400/);
  });

  it("stores the kernel's reason when it arrives after the state changed", () => {
    const { effects } = run(activeOnA(), [[20_000, { type: "kernelSaid", reason: "disabled by sysrq-S" }]]);
    expect(effects).toEqual([{ type: "updateDeployment", patch: { kernelReason: "disabled by sysrq-S" } }]);
  });

  it("leaves the default in place on stop unless told to keep the policy", () => {
    const stopped = run(activeOnA(), [[20_000, { type: "stopped", kept: false }]]);
    expect(stopped.state.phase).toBe("idle");
    expect(stopped.state.current).toBeUndefined();
    expect(stopped.state.lastGood).toEqual(A);
  });
});

describe("reconcile at start", () => {
  const verified = (h: string) => h === A.ref.hash || h === B.ref.hash;

  it("keeps an active verified policy the kernel still runs", () => {
    const step = reconcile(
      activeOnA(),
      enabled("schedctl_vtime", 12),
      ["/sys/fs/bpf/schedctl/a"],
      verified,
      50_000,
    );
    expect(step.effects).toEqual([]);
    expect(step.state).toMatchObject({ phase: "active", current: A, enableSeq: 12 });
  });

  it("replaces a policy left in probation by a killed daemon with the known-good one", () => {
    const midProbation = run(activeOnA(), [
      [20_000, apply(B)],
      [20_010, { type: "recorded", deploymentId: 2 }],
      [20_100, { type: "swapped", ok: true, enableSeq: 8, gapMs: 35 }],
    ]).state;
    const step = reconcile(
      midProbation,
      enabled("schedctl_latency", 8),
      ["/sys/fs/bpf/schedctl/b"],
      verified,
      50_000,
    );
    expect(step.state.phase).toBe("rolling_back");
    expect(step.effects).toContainEqual({ type: "swap", to: A });
    expect(step.effects[0]).toMatchObject({ type: "updateDeployment", patch: { outcome: "rolled_back" } });
  });

  it("detaches an unknown or unverified policy when nothing known-good exists", () => {
    const step = reconcile(
      initialState(0),
      enabled("schedctl_mystery", 3),
      ["/sys/fs/bpf/schedctl/x"],
      () => false,
      1,
    );
    expect(step.effects).toEqual([{ type: "swap", to: undefined }]);
    expect(step.state.reason).toMatch(/ops "schedctl_mystery" attached.*restoring the kernel default/);
  });

  it("cleans orphaned pinned links even when sched_ext is disabled, and does nothing when all is quiet", () => {
    const disabled: SchedExtStatus = { supported: true, state: "disabled", ops: undefined, enableSeq: 3 };
    expect(reconcile(initialState(0), disabled, ["/sys/fs/bpf/schedctl/x"], verified, 1).effects).toEqual([
      { type: "swap", to: undefined },
    ]);
    expect(reconcile(initialState(0), disabled, [], verified, 1).effects).toEqual([]);
  });
});
