import type { Profile } from "../observe/types.ts";
import type { CgroupKpi, KpiName, Kpis } from "./types.ts";

// The probation guard: mean KPIs under the new policy against the mean before the swap (the
// targeted cgroup's own when the decision names one, else the host's).
// A KPI regresses when it is worse than its baseline by the configured ratio AND by an
// absolute margin, so that near-zero figures (an idle host) cannot fail a policy on noise.

const ABSOLUTE_MARGIN: Record<KpiName, number> = {
  psiCpuSome: 0.05,
  runDelayPerCpuTime: 0.25,
  cgroupPsiCpuSome: 0.05,
  cgroupPsiCpuFull: 0.03,
};

/** Samples of probation needed before a regression is called. */
export const MIN_PROBATION_SAMPLES = 5;

export function kpisFromProfile(profile: Profile, cgroup?: string): Kpis {
  const group = cgroup === undefined ? undefined : profile.topCgroups.find((c) => c.path === cgroup);
  return {
    psiCpuSome: profile.features.psi_cpu_some,
    runDelayPerCpuTime: profile.features.run_delay_per_cpu_time,
    ...(group ? { cgroupPsiCpuSome: group.psiCpuSome } : {}),
    ...(group?.psiCpuFull !== undefined ? { cgroupPsiCpuFull: group.psiCpuFull } : {}),
  };
}

export interface Regression {
  kpi: KpiName;
  baseline: number;
  now: number;
}

export function meanKpis(samples: Kpis[]): Partial<Record<KpiName, number>> {
  const out: Partial<Record<KpiName, number>> = {};
  for (const name of Object.keys(ABSOLUTE_MARGIN) as KpiName[]) {
    const values = samples
      .map((s) => s[name])
      .filter((v): v is number => v !== undefined && Number.isFinite(v));
    if (values.length > 0) out[name] = values.reduce((a, b) => a + b, 0) / values.length;
  }
  return out;
}

export function findRegressions(
  baseline: Kpis[],
  probation: Kpis[],
  ratio: number,
  cgroupKpi: CgroupKpi = "cgroupPsiCpuSome",
): Regression[] {
  if (baseline.length === 0 || probation.length < MIN_PROBATION_SAMPLES) return [];
  const before = meanKpis(baseline);
  const after = meanKpis(probation);
  const found: Regression[] = [];
  // A decision that names the cgroup it serves is judged by that cgroup: a policy that makes a
  // service wait less by making the hogs wait more is doing its job.
  const judged: KpiName[] =
    before[cgroupKpi] !== undefined && after[cgroupKpi] !== undefined ? [cgroupKpi] : HOST_KPIS;
  for (const name of judged) {
    const b = before[name];
    const a = after[name];
    if (b === undefined || a === undefined) continue;
    if (a > b * ratio && a - b > ABSOLUTE_MARGIN[name]) found.push({ kpi: name, baseline: b, now: a });
  }
  return found;
}

const HOST_KPIS: KpiName[] = ["psiCpuSome", "runDelayPerCpuTime"];

/**
 * Probation's KPI over the baseline's, lower is better: the targeted cgroup's pressure when the
 * decision named one, else the host's run delay per CPU time. A small floor keeps near-idle
 * figures from producing wild ratios.
 */
export function kpiRatio(
  baseline: Kpis[],
  probation: Kpis[],
  cgroupKpi: CgroupKpi = "cgroupPsiCpuSome",
): number {
  const before = meanKpis(baseline);
  const after = meanKpis(probation);
  const pick = (name: KpiName, floor: number) =>
    before[name] !== undefined && after[name] !== undefined
      ? (after[name]! + floor) / (before[name]! + floor)
      : undefined;
  return pick(cgroupKpi, 0.01) ?? pick("runDelayPerCpuTime", 0.01) ?? pick("psiCpuSome", 0.01) ?? 1;
}

export function describeRegressions(found: Regression[]): string {
  return found.map((r) => `${r.kpi} ${r.baseline.toFixed(3)} -> ${r.now.toFixed(3)}`).join(", ");
}
