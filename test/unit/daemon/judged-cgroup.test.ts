import { describe, expect, it } from "vitest";
import { judgedCgroup } from "../../../src/daemon/autopilot.ts";
import type { Decision } from "../../../src/decide/types.ts";
import { profile } from "../../helpers/decide-fixtures.ts";

const decision = (cgroup?: string): Decision => ({
  at: 0,
  signature: "sig",
  class: "throughput",
  policy: { kind: "policy", origin: "builtin", name: "batch-order", tunables: {} },
  chooser: "planner",
  rationale: "",
  confidence: 1,
  ...(cgroup && { cgroup }),
  candidates: [],
});

describe("the cgroup a probation judges", () => {
  const batch = profile("throughput", "sig-batch", {
    topCgroups: [
      { path: "/batch.slice/jobs.service", cpuShare: 0.9, psiCpuSome: 0.9, psiCpuFull: 0, tasks: 41 },
      { path: "/system.slice/cron.service", cpuShare: 0.01, psiCpuSome: 0.02, tasks: 1 },
    ],
  });

  it("judges a service the decision names by its PSI full: the time it waited for others", () => {
    expect(judgedCgroup(decision("/system.slice/api.service"), batch)).toEqual({
      cgroup: "/system.slice/api.service",
      cgroupKpi: "cgroupPsiCpuFull",
    });
  });

  it("judges other work by the unit doing it and its PSI some, when the decision names none", () => {
    expect(judgedCgroup(decision(), batch)).toEqual({
      cgroup: "/batch.slice/jobs.service",
      cgroupKpi: "cgroupPsiCpuSome",
    });
  });

  it("falls back to the host's KPIs when no unit is at work", () => {
    expect(judgedCgroup(decision(), profile("throughput", "sig-bare", { topCgroups: [] }))).toEqual({});
  });
});
