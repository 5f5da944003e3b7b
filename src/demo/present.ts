import { execFileSync } from "node:child_process";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { which } from "../sandbox/exec.ts";
import { type DayPhase, isIdle } from "./day.ts";
import { kpiMetric, kpiMetrics } from "./day-file.ts";
import {
  buildReport,
  type DayMachine,
  type DayReport,
  finalLine,
  formatLlmCalls,
  formatTable,
} from "./report.ts";
import type { DayOutcome } from "./run.ts";
import { type PictureKpi, renderTimeline, timelineModel } from "./timeline.ts";

// After the day: the per-phase table, the bench's last line, and the timeline picture (SVG
// always, PNG where rsvg-convert is installed).

export interface Presented {
  report: DayReport;
  table: string;
  line: string;
  svg?: string;
  png?: string;
}

export function presentDay(
  outcome: DayOutcome,
  outDir: string | undefined,
  subtitle: string,
  machine: DayMachine,
): Presented {
  const report = buildReport(outcome.records, outcome.day, outcome.file);
  const table = formatTable(report);
  const presented: Presented = {
    report,
    table: outcome.llm ? `${table}\n\n${formatLlmCalls(outcome.records)}` : table,
    line: finalLine(report, machine),
  };
  const baseline = outcome.records.find((r) => r.mode === "baseline");
  const autopilot = outcome.records.filter((r) => r.mode !== "baseline").at(-1);
  const kpi = pictureKpi(outcome.day);
  if (outDir && baseline && autopilot && kpi) {
    mkdirSync(outDir, { recursive: true });
    const svg = join(outDir, "autopilot.svg");
    const idle = new Set(outcome.day.filter(isIdle).map((p) => p.index));
    writeFileSync(svg, renderTimeline(timelineModel(baseline, autopilot, subtitle, kpi, idle)));
    presented.svg = svg;
    const convert = which("rsvg-convert");
    if (convert) {
      const png = join(outDir, "autopilot.png");
      execFileSync(convert, ["-b", "white", "-o", png, svg]);
      presented.png = png;
    }
  }
  return presented;
}

/** The picture follows the KPI of the day's first phase of work, in every phase that measures it. */
export function pictureKpi(day: readonly DayPhase[]): PictureKpi | undefined {
  const first = day.find((p) => p.spec.kpi);
  if (!first?.spec.kpi) return undefined;
  const { name, ...metric } = kpiMetric(first.spec.kpi);
  const phases = day.filter((p) => p.spec.kpi && kpiMetrics(p.spec.kpi)[name]).map((p) => p.index);
  return { of: first.name, metric: name, ...metric, phases: new Set(phases) };
}

/** What the picture compares, for its subtitle. */
export function subtitleOf(outcome: DayOutcome): string {
  const autopilot = outcome.records.filter((r) => r.mode !== "baseline").at(-1);
  const what = autopilot?.mode === "learned" ? "the learned day" : "day 1";
  return `sched_ext kernel under qemu TCG, 2 vCPUs: a kernel-default run against ${what}${outcome.autoMode.ready ? "" : " (schedctld could only observe)"}; emulated timings, compare ratios only`;
}
