import { execFileSync } from "node:child_process";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { which } from "../sandbox/exec.ts";
import { buildReport, type DayReport, finalLine, formatLlmCalls, formatTable } from "./report.ts";
import type { DayOutcome } from "./run.ts";
import { renderTimeline, timelineModel } from "./timeline.ts";

// After the day: the per-phase table, the bench's last line, and the timeline picture (SVG
// always, PNG where rsvg-convert is installed).

export interface Presented {
  report: DayReport;
  table: string;
  line: string;
  svg?: string;
  png?: string;
}

export function presentDay(outcome: DayOutcome, outDir: string | undefined, subtitle: string): Presented {
  const report = buildReport(outcome.records);
  const table = formatTable(report);
  const presented: Presented = {
    report,
    table: outcome.llm ? `${table}\n\n${formatLlmCalls(outcome.records)}` : table,
    line: finalLine(report),
  };
  const baseline = outcome.records.find((r) => r.mode === "baseline");
  const autopilot = outcome.records.filter((r) => r.mode !== "baseline").at(-1);
  if (outDir && baseline && autopilot) {
    mkdirSync(outDir, { recursive: true });
    const svg = join(outDir, "autopilot.svg");
    writeFileSync(svg, renderTimeline(timelineModel(baseline, autopilot, subtitle)));
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

/** What the picture compares, for its subtitle. */
export function subtitleOf(outcome: DayOutcome): string {
  const autopilot = outcome.records.filter((r) => r.mode !== "baseline").at(-1);
  const what = autopilot?.mode === "learned" ? "the learned day" : "day 1";
  return `sched_ext kernel under qemu TCG, 2 vCPUs: a kernel-default run against ${what}${outcome.autoMode.ready ? "" : " (schedctld could only observe)"}; emulated timings, compare ratios only`;
}
