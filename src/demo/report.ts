import type { Metric } from "../sandbox/tools/parser.ts";
import type { TcgThread } from "../sandbox/types.ts";
import { type DayPhase, isIdle } from "./day.ts";
import { type DayFile, kpiMetric, kpiMetrics } from "./day-file.ts";
import { mainPolicy, median, type RunRecord } from "./kpi.ts";

// The comparison: for each phase of the day its KPI under the kernel default, on day 1 and on
// the learned days (medians over the repetitions), the ratios, and the default-against-itself
// band beside each ratio (a ratio inside the band is a tie). Ends in the bench's one line, whose
// figures the day file's [summary] names. Pure.

/** One figure of a phase: its medians and ratios (lower is better: for a figure where higher is better, default / run). */
export interface FigureRow extends Metric {
  metric: string;
  baseline: number | undefined;
  day1: number | undefined;
  learned: number | undefined;
  day1Ratio: number | undefined;
  learnedRatio: number | undefined;
  /** How far a baseline run strayed from the baseline median, as a fraction (0.35 = +-35%). */
  band: number | undefined;
}

export interface PhaseRow {
  phase: number;
  name: string;
  /** The phase's KPI, then the figures its `also` shows. */
  kpi: FigureRow;
  also: FigureRow[];
  verdict: "better" | "tie" | "worse" | "n/a";
  /** The scheduler that ran longest in the phase, on the learned days. */
  learnedPolicy: string;
  adaptS: number | undefined;
}

export interface DayReport {
  rows: PhaseRow[];
  summary: {
    /** The day file's [summary] figures, in its order. */
    figures: { key: string; figure: "ratio" | "band"; value: number | undefined }[];
    adaptS?: number;
    regressions: number;
    worstRatio?: number;
    rollbacks: number;
  };
  runs: { baseline: number; day1: number; learned: number };
}

/** Run against the default, lower is better whichever way the figure goes. */
const ratio = (a: number | undefined, b: number | undefined, better: Metric["better"] = "lower") => {
  if (a === undefined || b === undefined) return undefined;
  const [run, base] = better === "lower" ? [a, b] : [b, a];
  return base <= 0 ? undefined : run / base;
};

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

export function buildReport(runs: readonly RunRecord[], day: readonly DayPhase[], file: DayFile): DayReport {
  const byMode = (mode: RunRecord["mode"]) => runs.filter((r) => r.mode === mode);
  const baseline = byMode("baseline");
  const day1 = byMode("day1");
  const learned = byMode("learned");
  const rows: PhaseRow[] = [];
  for (const p of day) {
    if (isIdle(p) || !p.spec.kpi) continue;
    const metrics = kpiMetrics(p.spec.kpi);
    const figure = (metric: string): FigureRow => {
      const values = (group: RunRecord[]) =>
        group.flatMap((r) => {
          const v = r.phases.find((q) => q.phase === p.index)?.kpis[metric];
          return v === undefined ? [] : [v];
        });
      const base = values(baseline);
      const b = median(base);
      const d1 = median(values(day1));
      const l = median(values(learned));
      const { better, label } = metrics[metric]!;
      return {
        metric,
        label,
        better,
        baseline: b,
        day1: d1,
        learned: l,
        day1Ratio: ratio(d1, b, better),
        learnedRatio: ratio(l, b, better),
        band: noiseBand(base),
      };
    };
    const kpi = figure(kpiMetric(p.spec.kpi).name);
    const learnedPhases = learned.flatMap((r) => r.phases.filter((q) => q.phase === p.index));
    rows.push({
      phase: p.index,
      name: p.name,
      kpi,
      also: p.spec.also.map(figure),
      verdict: judge(kpi.learnedRatio, kpi.band),
      learnedPolicy: mostCommon(learnedPhases.map(mainPolicy)),
      adaptS: median(learnedPhases.flatMap((q) => (q.adaptS === undefined ? [] : [q.adaptS]))),
    });
  }
  const figuresOf = (phase: string, metric: string | undefined) =>
    rows
      .filter((r) => r.name === phase)
      .flatMap((r) => [r.kpi, ...r.also].filter((f) => f.metric === (metric ?? r.kpi.metric)));
  const defined = (values: (number | undefined)[]) => values.filter((v): v is number => v !== undefined);
  const learnedRatios = defined(rows.map((r) => r.kpi.learnedRatio));
  const autoRuns = [...day1, ...learned];
  return {
    rows,
    summary: {
      figures: Object.entries(file.summary).map(([key, entry]) => {
        const figures = figuresOf(entry.phase, entry.metric);
        return {
          key,
          figure: entry.figure,
          value:
            entry.figure === "ratio"
              ? median(defined(figures.map((f) => f.learnedRatio)))
              : maxOf(figures.map((f) => f.band)),
        };
      }),
      adaptS: median(defined(rows.map((r) => r.adaptS))),
      regressions: rows.filter((r) => r.verdict === "worse").length,
      worstRatio: learnedRatios.length ? Math.max(...learnedRatios) : undefined,
      rollbacks: autoRuns.reduce((n, r) => n + r.daemon.filter((d) => d.event === "rollback").length, 0),
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

const fmt = (v: number | undefined, digits = 2) => (v === undefined ? "-" : v.toFixed(digits));
const num = (v: number | undefined) => (v === undefined ? "-" : v >= 100 ? v.toFixed(0) : v.toFixed(1));
const pct = (v: number | undefined) => (v === undefined ? "-" : `±${Math.round(v * 100)}%`);
/** A figure where higher is better says so: its ratio is default / run. */
const label = (f: FigureRow) => (f.better === "higher" ? `${f.label} (higher better)` : f.label);

/** The per-phase table, one line per phase of work (and one under it per figure its `also` names). */
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
    const k = r.kpi;
    lines.push([
      String(r.phase),
      r.name,
      label(k),
      num(k.baseline),
      num(k.day1),
      fmt(k.day1Ratio),
      num(k.learned),
      fmt(k.learnedRatio),
      pct(k.band),
      r.verdict,
      r.learnedPolicy,
      fmt(r.adaptS, 1),
    ]);
    for (const f of r.also)
      lines.push([
        "",
        "",
        label(f),
        num(f.baseline),
        "",
        "",
        num(f.learned),
        fmt(f.learnedRatio),
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
    const first = !seen.has(p.name);
    seen.add(p.name);
    const d1 = calls(day1, p.phase);
    if (first) firstSight += d1;
    lines.push(
      `${String(p.phase).padEnd(3)}${p.name.padEnd(9)}${first ? "first sight " : "again       "}${String(d1).padStart(3)} | ${calls(learned, p.phase)}`,
    );
  }
  const total = (group: RunRecord[]) =>
    group.reduce((n, r) => n + r.phases.reduce((m, p) => m + p.llmCalls, 0), 0);
  lines.push(
    `llm: day1_calls=${total(day1)} learned_calls=${total(learned)} first_sight_calls=${firstSight}`,
  );
  return lines.join("\n");
}

/** Where a day ran: a figure counts only with its emulator mode and kernel beside it. */
export interface DayMachine {
  mode: TcgThread;
  kernel: string;
}

/** The bench's last line: the day's ratios, the autopilot's own figures, the noise bands, then where it ran. */
export function finalLine(report: DayReport, machine: DayMachine): string {
  const s = report.summary;
  const v = (x: number | undefined, digits = 2) => (x === undefined ? "na" : x.toFixed(digits));
  const of = (figure: "ratio" | "band") =>
    s.figures.filter((f) => f.figure === figure).map((f) => `${f.key}=${v(f.value)}`);
  return [
    "autopilot:",
    ...of("ratio"),
    `adapt_s=${v(s.adaptS, 1)}`,
    `regressions=${s.regressions}`,
    `worst_ratio=${v(s.worstRatio)}`,
    `rollbacks=${s.rollbacks}`,
    ...of("band"),
    `mode=${machine.mode}`,
    `kernel=${machine.kernel}`,
  ].join(" ");
}
