import { describe, expect, it } from "vitest";
import { defaultConfig } from "../../../src/config/schema.ts";
import { Decider } from "../../../src/decide/decider.ts";
import { createDecider } from "../../../src/decide/index.ts";
import { MemoryDecideStore } from "../../../src/decide/memory.ts";
import { seededRandom } from "../../../src/decide/random.ts";
import { Decision } from "../../../src/decide/types.ts";
import { ManualClock } from "../../../src/host/clock.ts";
import { createMemoryLogger } from "../../../src/log/logger.ts";
import type { Tunables } from "../../../src/policies/types.ts";
import { CATALOGUE, change, profile, serviceUnderHogs } from "../../helpers/decide-fixtures.ts";

function plannerOnly(store = new MemoryDecideStore()) {
  const config = defaultConfig();
  const decider = new Decider({
    decide: config.decide,
    llmConfig: config.llm,
    quarantineAfter: config.deploy.quarantine_after,
    catalogue: () => CATALOGUE,
    store,
    llm: { disabled: "disabled: no provider configured" },
    random: seededRandom(3),
    now: () => 5_000,
    logger: createMemoryLogger(),
  });
  return { decider, store };
}

describe("Decider without an LLM", () => {
  it("says the LLM is disabled and decides on the planner alone, even on a large drift", async () => {
    const { decider, store } = plannerOnly();
    expect(decider.llmStatus()).toEqual({ enabled: false, summary: "disabled: no provider configured" });
    const { id, decision } = await decider.decide(change(serviceUnderHogs(), 50));
    expect(id).toBe(1);
    expect(Decision.parse(decision)).toEqual(decision);
    expect(decision.chooser).toBe("planner");
    expect(decision.rationale).toMatch(/no LLM: LLM disabled: no provider configured/);
    expect(decision.candidates.map((c) => c.key)).toContain("default");
    expect(store.decisions).toHaveLength(1);
    expect(store.consultations).toHaveLength(0);
  });

  it("keeps the default for an idle phase", async () => {
    const { decider } = plannerOnly();
    const { decision } = await decider.decide(change(profile("idle", "sig-idle"), 20));
    expect(decision.policy).toEqual({ kind: "default" });
    expect(decision.confidence).toBe(1);
  });

  it("reuses what passed probation on a known phase, and stops reusing it after a rollback", async () => {
    const { decider } = plannerOnly();
    const p = serviceUnderHogs();
    const first = await decider.decide(change(p, 10));
    expect(first.decision.chooser).toBe("planner");
    const policy =
      first.decision.policy.kind === "default"
        ? {
            kind: "policy" as const,
            origin: "builtin" as const,
            name: "latency",
            tunables: { slice_us: 2000 },
          }
        : first.decision.policy;
    decider.recordOutcome({
      at: 6_000,
      signature: p.signature,
      class: p.class,
      policy,
      kpiRatio: 0.6,
      passed: true,
      rolledBack: false,
      decisionId: first.id,
    });
    const again = await decider.decide(change(p, 10));
    expect(again.decision.chooser).toBe("reuse");
    expect(again.decision.policy).toEqual(policy);
    expect(again.decision.rationale).toMatch(/passed probation 1 of 1 time\(s\).*mean KPI ratio 0\.60/);

    decider.recordOutcome({
      at: 7_000,
      signature: p.signature,
      class: p.class,
      policy,
      kpiRatio: 1.5,
      passed: false,
      rolledBack: true,
    });
    const after = await decider.decide(change(p, 10));
    expect(after.decision.chooser).toBe("planner");
  });

  it("never picks a policy again once deploy quarantined it for the signature", async () => {
    const { decider } = plannerOnly();
    const p = serviceUnderHogs();
    for (const name of ["latency", "cgroup-boost"]) {
      const tunables: Tunables =
        name === "latency" ? { slice_us: 2000 } : { cgroups: ["/system.slice/api.service"] };
      decider.recordOutcome({
        at: 1,
        signature: p.signature,
        class: p.class,
        policy: { kind: "policy", origin: "builtin", name, tunables },
        kpiRatio: 2,
        passed: false,
        rolledBack: true,
        quarantined: true,
      });
    }
    for (let i = 0; i < 10; i++) {
      const { decision } = await decider.decide(change(p, 10));
      expect(decision.policy).toEqual({ kind: "default" });
    }
  });

  it("learns a phase by its work: a second sight with another signature reuses the first one's winner", async () => {
    const { decider } = plannerOnly();
    const day1 = serviceUnderHogs("throughput-1111");
    const first = await decider.decide(change(day1, 10));
    expect(first.decision.workload).toBe("units:/batch.slice/hogs.service,/system.slice/api.service");
    const latency = {
      kind: "policy" as const,
      origin: "builtin" as const,
      name: "latency",
      tunables: { slice_us: 2000 },
    };
    decider.recordOutcome({
      at: 6_000,
      signature: day1.signature,
      class: "throughput",
      policy: latency,
      kpiRatio: 0.5,
      passed: true,
      rolledBack: false,
      workload: first.decision.workload,
    });
    // Day 2: the same units at work, but the first windows quantised to another signature and class.
    const day2 = { ...serviceUnderHogs("mixed-2222"), class: "mixed" as const };
    const again = await decider.decide(change(day2, 10));
    expect(again.decision.chooser).toBe("reuse");
    expect(again.decision.policy).toEqual(latency);
    expect(again.decision.signature).toBe("mixed-2222");

    // A policy that lost there on day 1 is not tried again on day 2: the default instead.
    const { decider: other } = plannerOnly();
    for (const name of ["latency", "cgroup-boost"]) {
      const tunables: Tunables =
        name === "latency" ? { slice_us: 2000 } : { cgroups: ["/system.slice/api.service"] };
      other.recordOutcome({
        at: 1,
        signature: day1.signature,
        class: "throughput",
        policy: { kind: "policy", origin: "builtin", name, tunables },
        kpiRatio: name === "latency" ? 1.4 : 1.1,
        passed: name !== "latency",
        rolledBack: name === "latency",
        workload: first.decision.workload,
      });
    }
    for (let i = 0; i < 10; i++) {
      expect((await other.decide(change(day2, 10))).decision.policy).toEqual({ kind: "default" });
    }
  });

  it("does not reuse one work's winner for other work that happens to share its signature", async () => {
    const { decider } = plannerOnly();
    const build = profile("throughput", "throughput-1cfe", {
      topCgroups: [{ path: "/user.slice/build.scope", cpuShare: 0.9, psiCpuSome: 0.8, tasks: 5 }],
    });
    const first = await decider.decide(change(build, 10));
    decider.recordOutcome({
      at: 6_000,
      signature: build.signature,
      class: "throughput",
      policy: { kind: "policy", origin: "builtin", name: "throughput", tunables: { slice_us: 20000 } },
      kpiRatio: 0.85,
      passed: true,
      rolledBack: false,
      workload: first.decision.workload,
    });
    expect((await decider.decide(change(build, 10))).decision.chooser).toBe("reuse");
    // The build again, now beside a service that waits for it: the same signature, other work.
    const mixed = profile("throughput", "throughput-1cfe", {
      topCgroups: [
        { path: "/user.slice/build.scope", cpuShare: 0.74, psiCpuSome: 0.87, tasks: 5 },
        { path: "/system.slice/api.service", cpuShare: 0.15, psiCpuSome: 0.3, psiCpuFull: 0.2, tasks: 3 },
      ],
    });
    const { decision } = await decider.decide(change(mixed, 10));
    expect(decision.chooser).toBe("planner");
    expect(decision.workload).toBe("units:/system.slice/api.service,/user.slice/build.scope");
    expect(decision.cgroup).toBe("/system.slice/api.service");
  });

  it("keeps the default while no unit is at work (a daemon starting, a pause between jobs)", async () => {
    const { decider } = plannerOnly();
    const starting = profile("mixed", "mixed-start", { features: { cpu_util: 0.4 } });
    for (let i = 0; i < 5; i++)
      expect((await decider.decide(change(starting, 0))).decision.policy).toEqual({ kind: "default" });
    // Without cgroup v2 the host's work is weighed as it is.
    const flat = { ...profile("mixed", "mixed-flat"), lacks: ["cgroup2"] };
    expect((await decider.decide(change(flat, 5))).decision.candidates.length).toBeGreaterThan(1);
  });

  it("refuses a malformed outcome with a clear error", () => {
    const { decider } = plannerOnly();
    expect(() =>
      decider.recordOutcome({
        at: 1,
        signature: "s",
        class: "latency",
        policy: { kind: "default" },
        kpiRatio: -1,
        passed: true,
        rolledBack: false,
      }),
    ).toThrow(/kpiRatio/);
  });

  it("stores an operator's choice as such", () => {
    const { decider, store } = plannerOnly();
    const stored = decider.recordOperatorDecision(
      serviceUnderHogs(),
      { kind: "default" },
      "maintenance window",
    );
    expect(stored.decision.chooser).toBe("operator");
    expect(store.decisions[0]?.rationale).toBe("operator: maintenance window");
  });
});

describe("createDecider", () => {
  it("wires the planner alone when no provider is configured, and says so", async () => {
    const logger = createMemoryLogger();
    const decider = createDecider({
      config: defaultConfig(),
      store: new MemoryDecideStore(),
      catalogue: () => CATALOGUE,
      clock: new ManualClock(1_000),
      logger,
    });
    expect(decider.llmStatus().summary).toBe("disabled: no provider configured");
    expect(logger.records.some((r) => r.message.includes("the local planner decides alone"))).toBe(true);
    expect((await decider.decide(change(serviceUnderHogs(), 30))).decision.chooser).toBe("planner");
  });
});
