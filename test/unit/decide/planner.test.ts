import { describe, expect, it } from "vitest";
import { candidatesFor, policyKey, targetCgroup, workloadKey } from "../../../src/decide/candidates.ts";
import { plan } from "../../../src/decide/planner.ts";
import { seededRandom } from "../../../src/decide/random.ts";
import type { ChosenPolicy, Outcome } from "../../../src/decide/types.ts";
import { builtinCatalogue } from "../../../src/policies/catalogue.ts";
import { Manifest } from "../../../src/policies/types.ts";
import { CATALOGUE, profile, serviceUnderHogs } from "../../helpers/decide-fixtures.ts";

const options = (seed = 1) => ({ quarantineAfter: 2, classWeight: 0.3, random: seededRandom(seed) });
const builtin = (name: string, tunables: Record<string, string | number | string[]> = {}): ChosenPolicy => ({
  kind: "policy",
  origin: "builtin",
  name,
  tunables,
});

function outcome(
  signature: string,
  policy: ChosenPolicy,
  kpiRatio: number,
  extra: Partial<Outcome> = {},
): Outcome {
  return {
    at: 0,
    signature,
    class: "latency",
    policy,
    kpiRatio,
    passed: kpiRatio < 1.25,
    rolledBack: kpiRatio >= 1.25,
    quarantined: false,
    ...extra,
  };
}

describe("candidates", () => {
  it("offers the default plus the policies made for the class, favouring the service waiting for CPU", () => {
    const p = serviceUnderHogs();
    const keys = candidatesFor(p, CATALOGUE, 4).map((c) => c.key);
    expect(keys).toEqual([
      "default",
      "builtin:latency?slice_us=2000",
      'builtin:cgroup-boost?cgroups=["/system.slice/api.service"]',
    ]);
    expect(targetCgroup(p)).toBe("/system.slice/api.service");
  });

  it("tries each order of an enum tunable and, for throughput work, favours the busiest cgroup", () => {
    const p = profile("throughput", "sig-batch", {
      topCgroups: [
        { path: "/batch.slice/jobs.service", cpuShare: 0.9, psiCpuSome: 0.2, tasks: 40 },
        { path: "/system.slice/cron.service", cpuShare: 0.05, psiCpuSome: 0.1, tasks: 1 },
      ],
    });
    const keys = candidatesFor(p, CATALOGUE, 10).map((c) => c.key);
    expect(keys).toContain('builtin:batch-order?order="shortest"');
    expect(keys).toContain('builtin:batch-order?order="longest"');
    expect(targetCgroup(p)).toBe("/batch.slice/jobs.service");
  });

  it("draws on the repository's own manifests for every class", () => {
    const catalogue = builtinCatalogue().map((p) => p.manifest);
    const latency = candidatesFor(serviceUnderHogs(), catalogue, 4);
    expect(latency.map((c) => c.policy.kind === "policy" && c.policy.name)).toEqual([
      false,
      "cgroup-boost",
      "latency",
    ]);
    expect(latency.find((c) => c.cgroup)?.cgroup).toBe("/system.slice/api.service");
    const idle = profile("idle", "sig-idle");
    expect(plan(idle, candidatesFor(idle, catalogue, 4), [], [], options()).chosen.key).toBe("default");
    const io = profile("io", "sig-io");
    expect(candidatesFor(io, catalogue, 4).map((c) => c.key)).toEqual(["default"]);
  });

  it("leaves out a cgroup policy when there is no cgroup to favour", () => {
    const keys = candidatesFor(profile("latency", "s"), CATALOGUE, 4).map((c) => c.key);
    expect(keys).toEqual(["default", "builtin:latency?slice_us=2000"]);
  });
});

describe("planner", () => {
  it("keeps the kernel default on an idle phase, surely, even when a policy claims to suit idle", () => {
    const idleFriendly = Manifest.parse({ ...CATALOGUE[0], name: "idle-ish", workloads: ["idle"] });
    const p = profile("idle", "sig-idle");
    for (let seed = 1; seed <= 20; seed++) {
      const result = plan(p, candidatesFor(p, [idleFriendly], 4), [], [], options(seed));
      expect(result.chosen.key).toBe("default");
      expect(result.confidence).toBe(1);
    }
  });

  it("replaces the default on an idle phase only on evidence that something beats it", () => {
    const idleFriendly = Manifest.parse({
      ...CATALOGUE[0],
      name: "idle-ish",
      workloads: ["idle"],
      tunables: {},
    });
    const p = profile("idle", "sig-idle");
    const policy = builtin("idle-ish");
    const evidence = [
      outcome("sig-idle", policy, 0.7, { class: "idle" }),
      outcome("sig-idle", policy, 0.75, { class: "idle" }),
    ];
    const result = plan(p, candidatesFor(p, [idleFriendly], 4), evidence, evidence, options());
    expect(result.chosen.key).toBe("builtin:idle-ish");
  });

  it("explores among the class's policies on a new phase and says it is unsure", () => {
    const p = serviceUnderHogs();
    const chosen = new Set<string>();
    for (let seed = 1; seed <= 30; seed++) {
      const result = plan(p, candidatesFor(p, CATALOGUE, 4), [], [], options(seed));
      chosen.add(result.chosen.key);
      expect(result.confidence).toBeLessThan(0.7);
    }
    expect(chosen.size).toBeGreaterThanOrEqual(2);
  });

  it("tries a policy on the first sight of a phase of work (the default is known without trying it)", () => {
    const p = serviceUnderHogs("sig-first");
    for (let seed = 1; seed <= 40; seed++)
      expect(plan(p, candidatesFor(p, CATALOGUE, 4), [], [], options(seed)).chosen.key).not.toBe("default");
  });

  it("learns from other phases of the same class and becomes confident", () => {
    const p = serviceUnderHogs("sig-new-latency");
    const latency = builtin("latency", { slice_us: 2000 });
    const boost = builtin("cgroup-boost", { cgroups: ["/system.slice/api.service"] });
    const classWide = [
      ...Array.from({ length: 8 }, (_, i) => outcome(`sig-old-${i}`, latency, 0.45)),
      ...Array.from({ length: 4 }, (_, i) => outcome(`sig-old-${i}`, boost, 1.2)),
    ];
    const result = plan(p, candidatesFor(p, CATALOGUE, 4), [], classWide, options());
    expect(result.chosen.key).toBe(policyKey(latency));
    expect(result.confidence).toBeGreaterThanOrEqual(0.7);
    const summary = result.summaries.find((s) => s.key === policyKey(latency))!;
    expect(Math.exp(summary.expectedLogRatio)).toBeLessThan(0.7);
    expect(result.rationale).toMatch(/picked builtin:latency/);
  });

  it("never re-picks a policy quarantined for the signature, nor one that failed probation too often", () => {
    const p = serviceUnderHogs();
    const latency = builtin("latency", { slice_us: 2000 });
    const boost = builtin("cgroup-boost", { cgroups: ["/system.slice/api.service"] });
    const own = [
      outcome("sig-latency", latency, 0.3, { quarantined: true }),
      outcome("sig-latency", boost, 1.5),
      outcome("sig-latency", boost, 1.6),
    ];
    for (let seed = 1; seed <= 40; seed++) {
      const result = plan(p, candidatesFor(p, CATALOGUE, 4), own, own, options(seed));
      expect(result.chosen.key).toBe("default");
    }
    const summaries = plan(p, candidatesFor(p, CATALOGUE, 4), own, own, options()).summaries;
    expect(summaries.find((s) => s.key === policyKey(latency))?.excluded).toBe(
      "quarantined for this signature",
    );
    expect(summaries.find((s) => s.key === policyKey(boost))?.excluded).toMatch(/failed probation 2 times/);
  });

  it("finds the better order for a batch phase from outcomes", () => {
    const p = profile("throughput", "sig-batch", {
      topCgroups: [{ path: "/batch.slice/jobs.service", cpuShare: 0.9, psiCpuSome: 0.2, tasks: 40 }],
    });
    const longest = builtin("batch-order", { order: "longest" });
    const shortest = builtin("batch-order", { order: "shortest" });
    const own: Outcome[] = [
      { ...outcome("sig-batch", longest, 0.78), class: "throughput" },
      { ...outcome("sig-batch", longest, 0.8), class: "throughput" },
      { ...outcome("sig-batch", shortest, 1.05), class: "throughput" },
      { ...outcome("sig-batch", shortest, 1.1), class: "throughput" },
    ];
    const picks = new Map<string, number>();
    for (let seed = 1; seed <= 50; seed++) {
      const batchOnly = CATALOGUE.filter((m) => m.name === "batch-order");
      const key = plan(p, candidatesFor(p, batchOnly, 10), own, own, options(seed)).chosen.key;
      picks.set(key, (picks.get(key) ?? 0) + 1);
    }
    expect(picks.get(policyKey(longest)) ?? 0).toBeGreaterThan(25);
    expect(picks.get(policyKey(shortest)) ?? 0).toBeLessThan(picks.get(policyKey(longest)) ?? 0);
  });

  it("is assured once a tried policy beats the default, and not before", () => {
    const p = serviceUnderHogs("sig-x");
    const latency = builtin("latency", { slice_us: 2000 });
    expect(plan(p, candidatesFor(p, CATALOGUE, 4), [], [], options()).assurance).toBe(0);
    const own = [outcome("sig-x", latency, 0.5), outcome("sig-x", latency, 0.55)];
    expect(plan(p, candidatesFor(p, CATALOGUE, 4), own, own, options()).assurance).toBeGreaterThan(0.9);
    const bad = [outcome("sig-x", latency, 1.4)];
    expect(plan(p, candidatesFor(p, CATALOGUE, 4), bad, bad, options()).assurance).toBeLessThan(0.5);
  });

  it("is repeatable for a given seed", () => {
    const p = serviceUnderHogs();
    const a = plan(p, candidatesFor(p, CATALOGUE, 4), [], [], options(7));
    const b = plan(p, candidatesFor(p, CATALOGUE, 4), [], [], options(7));
    expect(a).toEqual(b);
  });
});

describe("the service the host exists for", () => {
  const service = { path: "/system.slice/api.service", cpuShare: 0.2, psiCpuSome: 0.4, tasks: 3 };
  const catalogue = builtinCatalogue().map((p) => p.manifest);

  it("weighs a service under CPU hogs as a latency phase even when the hogs make it look like throughput", () => {
    const p = profile("throughput", "sig-hogs", {
      topCgroups: [{ path: "/user.slice/hogs.scope", cpuShare: 0.75, psiCpuSome: 0.3, tasks: 2 }, service],
    });
    const candidates = candidatesFor(p, catalogue, 4);
    const names = candidates.map((c) => (c.policy.kind === "policy" ? c.policy.name : "default"));
    expect(names).toContain("latency");
    expect(names).toContain("cgroup-boost");
    expect(names).not.toContain("batch-order");
    // Every candidate is judged on the service's own KPIs.
    expect(candidates.filter((c) => c.key !== "default").every((c) => c.cgroup === service.path)).toBe(true);
    expect(targetCgroup(p)).toBe(service.path);
  });

  it("favours the service over the busier build in a mixed phase", () => {
    const p = profile("mixed", "sig-mixed", {
      topCgroups: [{ path: "/user.slice/build.scope", cpuShare: 0.8, psiCpuSome: 0.5, tasks: 5 }, service],
    });
    expect(targetCgroup(p)).toBe(service.path);
    const boost = candidatesFor(p, catalogue, 4).find(
      (c) => c.policy.kind === "policy" && c.policy.name === "cgroup-boost",
    );
    expect(boost?.policy).toMatchObject({ tunables: { cgroups: [service.path] } });
  });

  it("does not take a batch unit, or a service that is itself the hog, for one", () => {
    const batch = profile("throughput", "sig-batch", {
      topCgroups: [{ path: "/batch.slice/jobs.service", cpuShare: 0.95, psiCpuSome: 0.6, tasks: 40 }],
    });
    expect(targetCgroup(batch)).toBe("/batch.slice/jobs.service");
    expect(candidatesFor(batch, catalogue, 4).map((c) => c.key)).toContain(
      'builtin:batch-order?horizon_ms=1000&order="shortest"&slice_us=200000',
    );
    const hog = profile("throughput", "sig-busy-service", {
      topCgroups: [{ path: "/system.slice/encoder.service", cpuShare: 0.9, psiCpuSome: 0.5, tasks: 4 }],
    });
    expect(candidatesFor(hog, catalogue, 4).some((c) => c.cgroup === "/system.slice/encoder.service")).toBe(
      false,
    );
  });

  it("names a phase's work by its units, the same on two sights whose signatures and classes differ", () => {
    const first = profile("throughput", "throughput-aaaa", {
      topCgroups: [
        { path: "/user.slice/hogs.scope", cpuShare: 0.73, psiCpuSome: 0.3, tasks: 2 },
        { path: "/system.slice/api.service", cpuShare: 0.21, psiCpuSome: 0.4, tasks: 3 },
        { path: "/user.slice", cpuShare: 0, psiCpuSome: 0, tasks: 0 },
      ],
    });
    const second = profile("mixed", "mixed-bbbb", {
      topCgroups: [
        { path: "/system.slice/api.service", cpuShare: 0.3, psiCpuSome: 0.5, tasks: 3 },
        { path: "/user.slice/hogs.scope", cpuShare: 0.6, psiCpuSome: 0.2, tasks: 2 },
      ],
    });
    expect(workloadKey(first)).toBe("units:/system.slice/api.service,/user.slice/hogs.scope");
    expect(workloadKey(second)).toBe(workloadKey(first));
    const session = (n: number) =>
      profile("throughput", `s${n}`, {
        topCgroups: [{ path: `/user.slice/session-${n}.scope`, cpuShare: 0.9, psiCpuSome: 0, tasks: 1 }],
      });
    expect(workloadKey(session(3))).toBe(workloadKey(session(7)));
    expect(workloadKey(profile("idle", "idle-x"))).toBe("class:idle");
  });
});

describe("a learned phase", () => {
  const p = serviceUnderHogs("sig-learned");
  const latency = builtin("latency", { slice_us: 2000 });
  const boost = builtin("cgroup-boost", { cgroups: ["/system.slice/api.service"] });

  it("prefers the default to a policy measured no better than it there", () => {
    const own = [outcome("sig-learned", latency, 1.1)];
    const result = plan(p, candidatesFor(p, CATALOGUE, 4), own, own, options());
    expect(result.summaries.find((s) => s.key === policyKey(latency))?.excluded).toMatch(
      /no better than the kernel default here \(KPI ratio 1\.10\)/,
    );
    for (let seed = 1; seed <= 30; seed++)
      expect(plan(p, candidatesFor(p, CATALOGUE, 4), own, own, options(seed)).chosen.key).not.toBe(
        policyKey(latency),
      );
  });

  it("stops exploring once its trials are spent: what beat the default, else the default", () => {
    const vtime = builtin("vtime", { slice_us: 5000 });
    const spent = [outcome("sig-learned", latency, 1.2), outcome("sig-learned", vtime, 1.05)];
    for (let seed = 1; seed <= 30; seed++)
      expect(plan(p, candidatesFor(p, CATALOGUE, 4), spent, spent, options(seed)).chosen.key).toBe("default");
    const summary = plan(p, candidatesFor(p, CATALOGUE, 4), spent, spent, options()).summaries;
    expect(summary.find((s) => s.key === policyKey(boost))?.excluded).toBe(
      "2 policies already tried on this phase",
    );
    const won = [outcome("sig-learned", latency, 0.6), outcome("sig-learned", vtime, 1.05)];
    const picks = Array.from(
      { length: 30 },
      (_, i) => plan(p, candidatesFor(p, CATALOGUE, 4), won, won, options(i + 1)).chosen.key,
    );
    // Never an untried one; mostly the winner (the decider's reuse step takes it outright).
    expect(new Set(picks)).toEqual(new Set([policyKey(latency), "default"]));
    expect(picks.filter((k) => k === policyKey(latency)).length).toBeGreaterThan(20);
  });
});
