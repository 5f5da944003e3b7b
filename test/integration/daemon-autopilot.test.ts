import { afterEach, describe, expect, it } from "vitest";
import { kpiRatio } from "../../src/deploy/kpis.ts";
import { managerOver, openRig, type Rig, type RigOptions } from "../helpers/autopilot-rig.ts";
import { change, profile, serviceEased, serviceUnderHogs } from "../helpers/decide-fixtures.ts";
import { startLlmServer } from "../helpers/llm-server.ts";
import { metricValue } from "../helpers/metrics.ts";

// Decide -> Verify -> Deploy as schedctld wires them: the real decider, the real clang and
// static rules, the real controller and SQLite store, on a fixture host whose sched_ext sysfs
// is written by a fixture kernel (this machine's kernel has no sched_ext; the VM test runs the
// same daemon on the real one). The test drives the autopilot as the loop does: one profile per
// tick, posted job results applied at the start of the next.

const rigs: Rig[] = [];
afterEach(async () => {
  for (const r of rigs.splice(0)) await r.close();
});

async function rig(options: RigOptions = {}): Promise<Rig> {
  const r = await openRig(options);
  rigs.push(r);
  return r;
}

describe("the autopilot: decide -> verify -> deploy", () => {
  it("decides on a phase change, verifies, deploys, passes probation and can explain all of it from the store", async () => {
    const r = await rig();
    await r.stages.autopilot.start();
    const latency = serviceUnderHogs();
    for (let i = 0; i < 10; i++) await r.tick(latency);
    r.stages.autopilot.onPhaseChange(change(latency, 12), r.context);
    const eased = serviceEased(latency);
    await r.until(
      "probation passed",
      () => r.stages.controller.state.phase === "active",
      () => (r.stages.controller.state.phase === "probation" ? eased : latency),
    );

    const ops = r.kernel.status().ops;
    expect(ops).toMatch(/^schedctl_/);
    const [stored] = r.stages.decisions.recentDecisions(1);
    expect(stored!.decision).toMatchObject({
      chooser: "planner",
      signature: "sig-latency",
      class: "latency",
    });
    const current = r.stages.controller.state.current!;
    expect(stored!.decision.policy).toMatchObject({ kind: "policy", name: current.ref.name });
    const verdict = r.stages.verdicts.getVerdict(current.ref.hash);
    expect(verdict).toMatchObject({ passed: true, stage: "kernel", opsName: ops });
    expect(verdict!.log).toMatch(/probation-only/);
    const [deployment] = r.stages.deployments.deployments(1);
    expect(deployment).toMatchObject({ hash: current.ref.hash, outcome: "passed", signature: "sig-latency" });
    expect(deployment!.probation.length).toBeGreaterThanOrEqual(3);
    // The decider learns the measured ratio (the probation samples are stored before it is read).
    await r.tick(latency);
    const learned = r.stages.decisions.outcomeOfDecision(stored!.id);
    expect(learned).toMatchObject({ passed: true, rolledBack: false });
    expect(deployment!.cgroup).toBe("/system.slice/api.service");
    expect(learned!.kpiRatio).toBeCloseTo(
      kpiRatio(deployment!.baseline, deployment!.probation, "cgroupPsiCpuFull"),
      6,
    );
    expect(learned!.kpiRatio).toBeLessThan(0.8);

    // Journalled in order, and the bus heard of the change only once the kernel had it.
    expect(r.journal.map((e) => e.type)).toEqual(["decision", "verification", "deploy", "deploy"]);
    expect(r.journal[2]).toMatchObject({ type: "deploy", state: "probation", policy: current.ref.name });
    expect(r.events).toContainEqual(
      expect.objectContaining({ type: "policy-changed", policy: current.ref.name }),
    );

    const manager = managerOver(r);
    expect(manager.status().activePolicy).toMatchObject({ name: current.ref.name, state: "active" });
    expect(manager.status().lastDecisions[0]).toMatchObject({
      chooser: "planner",
      outcome: expect.stringMatching(/^passed probation/),
    });
    const why = manager.explain();
    expect(why.policy?.hash).toBe(current.ref.hash);
    expect(why.verdict).toMatchObject({ passed: true, stage: "kernel" });
    expect(why.lines.join("\n")).toMatch(
      /chosen by planner[\s\S]*candidate default[\s\S]*verdict: passed[\s\S]*probation: passed/,
    );
    const kinds = new Set(manager.history(50).map((h) => h.kind));
    for (const kind of ["decision", "verification", "deploy"] as const) expect(kinds).toContain(kind);

    // The kernel ejects it: noticed, rolled back to the default, signalled after the kernel confirms.
    r.kernel.eject("runnable task stall");
    await r.until("rolled back", () => r.events.some((e) => e.type === "rolled-back"));
    expect(r.kernel.status().state).toBe("disabled");
    expect(r.stages.deployments.deployments(1)[0]).toMatchObject({ outcome: "ejected" });
    expect(r.journal.some((e) => e.type === "rollback" && e.policy === current.ref.name)).toBe(true);

    // Counted as schedctld's metrics count them: one swap in, one ejection with the kernel's
    // reason, its rollback, and the swap back to the default.
    const count = (name: string, labels: Record<string, string>) => metricValue(r.metrics, name, labels);
    expect(await count("schedctl_swaps_total", { kind: "deploy" })).toBe(1);
    expect(await count("schedctl_ejections_total", { reason: "runnable task stall" })).toBe(1);
    expect(await count("schedctl_rollbacks_total", { reason: "ejected" })).toBe(1);
    expect(await count("schedctl_rollbacks_total", { reason: "kpi_regression" })).toBe(0);
    expect(await count("schedctl_swaps_total", { kind: "default" })).toBe(1);
  }, 120_000);

  it("writes every call to the model in the journal, beside the decision it led to", async () => {
    const llm = await startLlmServer([
      {
        json: {
          optimise: "latency",
          protect_cgroup: "/system.slice/api.service",
          kpi: "the service's wake-up latency",
          rationale: "the service waits behind the hogs",
        },
      },
      {
        json: {
          action: "pick",
          policy: "latency",
          tunables: {},
          rationale: "made for this",
          confidence: 0.9,
        },
      },
    ]);
    try {
      const r = await rig({ llmEndpoint: llm.openaiEndpoint });
      await r.stages.autopilot.start();
      const latency = serviceUnderHogs();
      for (let i = 0; i < 3; i++) await r.tick(latency);
      r.stages.autopilot.onPhaseChange(change(latency, 12), r.context);
      await r.until("the decision", () => r.journal.some((e) => e.type === "decision"));
      const calls = r.journal.filter((e) => e.type === "llm-consultation");
      expect(calls).toEqual([
        expect.objectContaining({
          provider: "openai",
          model: "scripted",
          signature: "sig-latency",
          outcome: "goal ok",
        }),
        expect.objectContaining({ outcome: "synthesis ok", signature: "sig-latency" }),
      ]);
      expect(llm.requests).toHaveLength(2);
      for (const stage of ["goal", "synthesis"])
        expect(
          await metricValue(r.metrics, "schedctl_llm_calls_total", {
            provider: "openai",
            stage,
            result: "ok",
          }),
        ).toBe(1);
      const tokens = (key: "tokensIn" | "tokensOut") =>
        calls.reduce((sum, c) => sum + (c.type === "llm-consultation" ? c[key] : 0), 0);
      expect(tokens("tokensIn")).toBeGreaterThan(0);
      expect(
        await metricValue(r.metrics, "schedctl_llm_tokens_total", { provider: "openai", direction: "input" }),
      ).toBe(tokens("tokensIn"));
      expect(
        await metricValue(r.metrics, "schedctl_llm_tokens_total", {
          provider: "openai",
          direction: "output",
        }),
      ).toBe(tokens("tokensOut"));
      expect(r.journal.find((e) => e.type === "decision")).toMatchObject({
        chooser: "llm",
        policy: expect.stringMatching(/^latency /),
      });
    } finally {
      await llm.close();
    }
  }, 120_000);

  it("never attaches a candidate the verifier refuses, tells the planner, and decides again without it", async () => {
    const r = await rig();
    r.kernel.refuseAll = "R1 invalid mem access 'scalar'";
    await r.stages.autopilot.start();
    const latency = serviceUnderHogs();
    for (let i = 0; i < 3; i++) await r.tick(latency);
    r.stages.autopilot.onPhaseChange(change(latency, 12), r.context);
    await r.until("the verdict", () => r.journal.some((e) => e.type === "verification"));
    await r.until("a second decision", () => r.journal.filter((e) => e.type === "decision").length >= 2);
    await r.tick(latency);
    expect(r.journal.find((e) => e.type === "verification")).toMatchObject({
      passed: false,
      stage: "kernel",
    });
    expect(r.kernel.attached).toEqual([]);
    const refusals = r.journal.filter((e) => e.type === "verification" && !e.passed).length;
    expect(await metricValue(r.metrics, "schedctl_verifier_refusals_total", { stage: "kernel" })).toBe(
      refusals,
    );
    expect(await metricValue(r.metrics, "schedctl_swaps_total", { kind: "deploy" })).toBe(0);
    expect(r.kernel.status().state).toBe("disabled");
    const [again, refused] = r.stages.decisions.recentDecisions(2);
    expect(r.stages.decisions.outcomeOfDecision(refused!.id)).toMatchObject({
      passed: false,
      quarantined: true,
    });
    expect(again!.decision.policy, "the refused candidate is out of the running").not.toEqual(
      refused!.decision.policy,
    );
  }, 120_000);

  it("leaves a change the detector reports to the detector, and decides for work it never reported", async () => {
    const r = await rig();
    await r.stages.autopilot.start();
    const decisions = () => r.stages.decisions.recentDecisions(10).map((d) => d.decision.signature);
    // The detector confirms the service's work on the very window the autopilot would have
    // guessed it: its report, with its drift (the LLM's cue), is the one decided on.
    const latency = serviceUnderHogs();
    const guessAfter = r.config.detect.confirm_samples + 1;
    for (let i = 1; i < guessAfter; i++) r.stages.autopilot.onProfile(latency, r.context);
    const reported = change(latency, 12);
    const reportingTick = { ...r.context, change: reported };
    r.stages.autopilot.onProfile(latency, reportingTick);
    r.stages.autopilot.onPhaseChange(reported, reportingTick);
    await r.until("the reported phase's decision", () => decisions().length === 1);
    expect(decisions()).toEqual(["sig-latency"]);

    // A build takes over and the detector never says so (say, within its dwell): after the
    // detector's confirmation plus a window of grace, the autopilot decides for the build itself.
    const build = profile("throughput", "sig-latency", {
      features: { cpu_util: 1, runnable_per_cpu: 3, psi_cpu_some: 0.5 },
      topCgroups: [{ path: "/user.slice/build.scope", cpuShare: 0.95, psiCpuSome: 0.5, tasks: 8 }],
    });
    for (let i = 1; i < guessAfter; i++) r.stages.autopilot.onProfile(build, r.context);
    expect(decisions(), "not before the detector had its chance").toHaveLength(1);
    r.stages.autopilot.onProfile(build, r.context);
    await r.until("a decision for the unreported work", () => decisions().length === 2, build);
    expect(decisions()[0]).toMatch(/^throughput-work-/);
  }, 120_000);

  it("gives the operator switch and rollback in manual mode, answering with the kernel's state", async () => {
    const r = await rig({ mode: "manual" });
    const manager = managerOver(r);
    await manager.setMode("manual");
    for (let i = 0; i < 3; i++) await r.tick(serviceUnderHogs());
    const switched = await manager.switchPolicy("fifo", {});
    expect(switched).toMatchObject({ policy: "fifo", state: "probation" });
    expect(r.kernel.status()).toMatchObject({ state: "enabled", ops: "schedctl_fifo" });
    expect(manager.status().activePolicy).toMatchObject({ name: "fifo" });
    expect(r.stages.decisions.recentDecisions(1)[0]!.decision.chooser).toBe("operator");
    const back = await manager.rollback();
    expect(back).toMatchObject({ from: "fifo", to: null });
    expect(r.kernel.status().state).toBe("disabled");
    expect(await metricValue(r.metrics, "schedctl_rollbacks_total", { reason: "operator" })).toBe(1);
    expect(await metricValue(r.metrics, "schedctl_swaps_total", { kind: "default" })).toBe(1);
    await expect(manager.switchPolicy("nope", {})).rejects.toMatchObject({ kind: "not-found" });
    await manager.setMode("observe");
    await expect(manager.switchPolicy("fifo", {})).rejects.toMatchObject({ kind: "refused" });
  }, 120_000);
});
