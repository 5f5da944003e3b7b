import type { PhaseKind } from "./day.ts";
import { HEADLINE, mainPolicy, median, type PhaseKpis, type RunRecord } from "./kpi.ts";

// The comparison: for each phase of the day its KPI under the kernel default, on day 1 and on
// the learned days (medians over the repetitions), the ratios, and the default-against-itself
// band beside each ratio (a ratio inside the band is a tie). Ends in the bench's one line. Pure.

export interface PhaseRow {
  phase: number;
  kind: Exclude<PhaseKind, "idle">;
  kpi: keyof PhaseKpis;
  baseline: number | undefined;
  day1: number | undefined;
  learned: number | undefined;
  day1Ratio: number | undefined;
  learnedRatio: number | undefined;
  /** How far a baseline run strayed from the baseline median, as a fraction (0.35 = +-35%). */
  band: number | undefined;
  verdict: "better" | "tie" | "worse" | "n/a";
  /** The scheduler that ran longest in the phase, on the learned days. */
  learnedPolicy: string;
  adaptS: number | undefined;
  /** For latency phases: p50 as well. */
  p50?: { baseline?: number; learned?: number; ratio?: number };
}

export interface DayReport {
  rows: PhaseRow[];
  summary: {
    latencyP50Ratio?: number;
    latencyP99Ratio?: number;
    buildRatio?: number;
    batchRatio?: number;
    mixedP99Ratio?: number;
    adaptS?: number;
    regressions: number;
    worstRatio?: number;
    rollbacks: number;
    noiseP99?: number;
  };
  runs: { baseline: number; day1: number; learned: number };
}

const ratio = (a: number | undefined, b: number | undefined) =>
  a === undefined || b === undefined || b <= 0 ? undefined : a / b;

/** The largest deviation of a baseline run from the baseline median (none below two runs). */
export function noiseBand(values: readonly number[]): number | undefined {
  if (values.length < 2) return undefined;
  const m = median(values);
  if (m === undefined || m <= 0) return undefined;
  return Math.max(...values.map((v) => Math.abs(v / m - 1)));
}

export function judge(r: number | undefined, band: number | undefined): PhaseRow["verdict"] {
  if (r === undefined) return "n/a";
  const b = band ?? 0;
  if (r > 1 + b) return "worse";
  if (r < 1 - b) return "better";
  return "tie";
}

export function buildReport(runs: readonly RunRecord[]): DayReport {
  const byMode = (mode: RunRecord["mode"]) => runs.filter((r) => r.mode === mode);
  const baseline = byMode("baseline");
  const day1 = byMode("day1");
  const learned = byMode("learned");
  const template = (baseline[0] ?? runs[0])?.phases ?? [];
  const rows: PhaseRow[] = [];
  for (const p of template) {
    if (p.kind === "idle") continue;
    const kpi = HEADLINE[p.kind];
    const values = (group: RunRecord[], key: keyof PhaseKpis = kpi) =>
      group.flatMap((r) => {
        const v = r.phases.find((q) => q.phase === p.phase)?.kpis[key];
        return v === undefined ? [] : [v];
      });
    const base = values(baseline);
    const b = median(base);
    const d1 = median(values(day1));
    const l = median(values(learned));
    const learnedPhases = learned.flatMap((r) => r.phases.filter((q) => q.phase === p.phase));
    const band = noiseBand(base);
    const row: PhaseRow = {
      phase: p.phase,
      kind: p.kind,
      kpi,
      baseline: b,
      day1: d1,
      learned: l,
      day1Ratio: ratio(d1, b),
      learnedRatio: ratio(l, b),
      band,
      verdict: judge(ratio(l, b), band),
      learnedPolicy: mostCommon(learnedPhases.map(mainPolicy)),
      adaptS: median(learnedPhases.flatMap((q) => (q.adaptS === undefined ? [] : [q.adaptS]))),
    };
    if (p.kind === "latency") {
      const b50 = median(values(baseline, "p50Us"));
      const l50 = median(values(learned, "p50Us"));
      row.p50 = { baseline: b50, learned: l50, ratio: ratio(l50, b50) };
    }
    rows.push(row);
  }
  const kindMedian = (kind: PhaseRow["kind"], pick: (r: PhaseRow) => number | undefined) =>
    median(rows.filter((r) => r.kind === kind).flatMap((r) => (pick(r) === undefined ? [] : [pick(r)!])));
  const learnedRatios = rows.flatMap((r) => (r.learnedRatio === undefined ? [] : [r.learnedRatio]));
  const autoRuns = [...day1, ...learned];
  return {
    rows,
    summary: {
      latencyP50Ratio: kindMedian("latency", (r) => r.p50?.ratio),
      latencyP99Ratio: kindMedian("latency", (r) => r.learnedRatio),
      buildRatio: kindMedian("build", (r) => r.learnedRatio),
      batchRatio: kindMedian("batch", (r) => r.learnedRatio),
      mixedP99Ratio: kindMedian("mixed", (r) => r.learnedRatio),
      adaptS: median(rows.flatMap((r) => (r.adaptS === undefined ? [] : [r.adaptS]))),
      regressions: rows.filter((r) => r.verdict === "worse").length,
      worstRatio: learnedRatios.length ? Math.max(...learnedRatios) : undefined,
      rollbacks: autoRuns.reduce((n, r) => n + r.daemon.filter((d) => d.event === "rollback").length, 0),
      noiseP99: maxOf(rows.filter((r) => r.kind === "latency").map((r) => r.band)),
    },
    runs: { baseline: baseline.length, day1: day1.length, learned: learned.length },
  };
}

function maxOf(values: (number | undefined)[]): number | undefined {
  const defined = values.filter((v): v is number => v !== undefined);
  return defined.length ? Math.max(...defined) : undefined;
}

function mostCommon(values: string[]): string {
  const counts = new Map<string, number>();
  for (const v of values) counts.set(v, (counts.get(v) ?? 0) + 1);
  return [...counts].sort((a, b) => b[1] - a[1])[0]?.[0] ?? "-";
}

const KPI_LABEL: Record<keyof PhaseKpis, string> = {
  p50Us: "p50 us",
  p99Us: "p99 us",
  p999Us: "p99.9 us",
  rps: "req/s",
  makespanMs: "makespan ms",
  meanCompletionMs: "mean done ms",
};

const fmt = (v: number | undefined, digits = 2) => (v === undefined ? "-" : v.toFixed(digits));
const num = (v: number | undefined) => (v === undefined ? "-" : v >= 100 ? v.toFixed(0) : v.toFixed(1));
const pct = (v: number | undefined) => (v === undefined ? "-" : `±${Math.round(v * 100)}%`);

/** The per-phase table, one line per non-idle phase (and a p50 line under each latency phase). */
export function formatTable(report: DayReport): string {
  const header = [
    "#",
    "phase",
    "KPI",
    "default",
    "day 1",
    "ratio",
    "learned",
    "ratio",
    "band",
    "verdict",
    "policy (learned)",
    "adapt s",
  ];
  const lines: string[][] = [];
  for (const r of report.rows) {
    lines.push([
      String(r.phase),
      r.kind,
      KPI_LABEL[r.kpi],
      num(r.baseline),
      num(r.day1),
      fmt(r.day1Ratio),
      num(r.learned),
      fmt(r.learnedRatio),
      pct(r.band),
      r.verdict,
      r.learnedPolicy,
      fmt(r.adaptS, 1),
    ]);
    if (r.p50)
      lines.push([
        "",
        "",
        KPI_LABEL.p50Us,
        num(r.p50.baseline),
        "",
        "",
        num(r.p50.learned),
        fmt(r.p50.ratio),
        "",
        "",
        "",
        "",
      ]);
  }
  const widths = header.map((h, i) => Math.max(h.length, ...lines.map((l) => l[i]!.length)));
  const row = (cells: string[]) =>
    cells
      .map((c, i) => (i < 3 || i >= 9 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!)))
      .join("  ")
      .trimEnd();
  const { baseline, day1, learned } = report.runs;
  return [
    `runs: default x${baseline}, day 1 x${day1}, learned day x${learned} (medians; ratio = run / default, lower is better; band = default against itself)`,
    row(header),
    row(widths.map((w) => "-".repeat(w))),
    ...lines.map(row),
  ].join("\n");
}

/**
 * When schedctl asked its LLM: the calls of each phase on day 1 and on the learned days (summed
 * over their runs), and one line `llm: day1_calls=N learned_calls=M first_sight_calls=F`
 * (F: day 1's calls in phases met for the first time that day).
 */
export function formatLlmCalls(runs: readonly RunRecord[]): string {
  const day1 = runs.filter((r) => r.mode === "day1");
  const learned = runs.filter((r) => r.mode === "learned");
  const template = day1[0]?.phases ?? [];
  const calls = (group: RunRecord[], phase: number) =>
    group.reduce((n, r) => n + (r.phases.find((p) => p.phase === phase)?.llmCalls ?? 0), 0);
  const seen = new Set<string>();
  let firstSight = 0;
  const lines = ["LLM calls per phase (day 1 | learned days, all runs)"];
  for (const p of template) {
    const first = !seen.has(p.kind);
    seen.add(p.kind);
    const d1 = calls(day1, p.phase);
    if (first) firstSight += d1;
    lines.push(
      `${String(p.phase).padEnd(3)}${p.kind.padEnd(9)}${first ? "first sight " : "again       "}${String(d1).padStart(3)} | ${calls(learned, p.phase)}`,
    );
  }
  const total = (group: RunRecord[]) =>
    group.reduce((n, r) => n + r.phases.reduce((m, p) => m + p.llmCalls, 0), 0);
  lines.push(
    `llm: day1_calls=${total(day1)} learned_calls=${total(learned)} first_sight_calls=${firstSight}`,
  );
  return lines.join("\n");
}

/** The bench's last line. */
export function finalLine(report: DayReport): string {
  const s = report.summary;
  const v = (x: number | undefined, digits = 2) => (x === undefined ? "na" : x.toFixed(digits));
  return (
    `autopilot: latency_p50_ratio=${v(s.latencyP50Ratio)} latency_p99_ratio=${v(s.latencyP99Ratio)} ` +
    `build_ratio=${v(s.buildRatio)} batch_ratio=${v(s.batchRatio)} mixed_p99_ratio=${v(s.mixedP99Ratio)} ` +
    `adapt_s=${v(s.adaptS, 1)} regressions=${s.regressions} worst_ratio=${v(s.worstRatio)} ` +
    `rollbacks=${s.rollbacks} noise_p99=${v(s.noiseP99)}`
  );
}
