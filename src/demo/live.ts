import type { DayPhase, ScheduledRun } from "./day.ts";
import { kpiMetric, kpiMetrics } from "./day-file.ts";
import type { DayEvent } from "./events.ts";
import { measure } from "./kpi.ts";

// The live view of a day: what runs now (the run, the phase, the scheduler in the kernel, the
// last KPI) and each thing the daemon did as it happened. Pure: events in, lines out; demo.ts
// draws them (a status block redrawn in place on a terminal, plain lines elsewhere).

const MODE_LABEL: Record<ScheduledRun["mode"], string> = {
  baseline: "kernel default (schedctl observing)",
  day1: "autopilot, day 1 (empty store)",
  learned: "autopilot, learned day",
};

export class LiveView {
  readonly #day: readonly DayPhase[];
  readonly #runs: readonly ScheduledRun[];
  #run: ScheduledRun | undefined;
  #phase: DayPhase | undefined;
  #phaseStart = 0;
  #now = 0;
  #policy = "kernel default";
  #kpi = "";
  #daemonPhase = "";

  constructor(day: readonly DayPhase[], runs: readonly ScheduledRun[]) {
    this.#day = day;
    this.#runs = runs;
  }

  /** Takes one event; returns the lines worth printing for it (the log of the day). */
  push(event: DayEvent): string[] {
    const stamp = () => `[${this.#clock()}]`;
    switch (event.kind) {
      case "mark": {
        const m = event.mark;
        // A guest the emulator crashed is booted again: its clock starts over.
        if (m.event === "run-start" && m.t < this.#now) this.#now = 0;
        this.#now = Math.max(this.#now, m.t);
        if (m.event === "run-start") {
          this.#run = this.#runs.find((r) => r.index === m.run);
          this.#phase = undefined;
          return [
            `── run ${(m.run ?? 0) + 1}/${this.#runs.length}: ${this.#run ? MODE_LABEL[this.#run.mode] : m.mode}`,
          ];
        }
        if (m.event === "phase-start") {
          this.#phase = this.#day.find((p) => p.index === m.phase);
          this.#phaseStart = m.t;
          this.#kpi = "";
          return [
            `${stamp()} phase ${(m.phase ?? 0) + 1}/${this.#day.length}: ${m.name}${this.#phase?.recurring ? " (again)" : ""}`,
          ];
        }
        if (m.event === "eject")
          return [`${stamp()} !! injected: the kernel ejects the running scheduler (sysrq S)`];
        if (m.event === "run-end") return [`${stamp()} run ${(m.run ?? 0) + 1} done`];
        return [];
      }
      case "kernel": {
        this.#now = Math.max(this.#now, event.change.t);
        const c = event.change;
        this.#policy =
          c.state === "enabled" && c.ops
            ? c.ops
            : c.state === "disabled"
              ? "kernel default"
              : `${c.state} ${c.ops}`;
        return [`${stamp()} kernel: now ${this.#policy}`];
      }
      case "round": {
        const phase = this.#day.find((p) => p.index === event.round.phase);
        const kpi = phase?.spec.kpi;
        if (!phase || !kpi) return [];
        const round = measure(event.round, phase.spec);
        const metrics = kpiMetrics(kpi);
        const shown = [kpiMetric(kpi).name, ...phase.spec.also].flatMap((name) =>
          round.figures[name] === undefined ? [] : [`${metrics[name]!.label} ${round.figures[name]}`],
        );
        this.#kpi = `${phase.name}: ${round.error ?? shown.join(", ")}`;
        return [];
      }
      case "daemon": {
        this.#now = Math.max(this.#now, event.t);
        const line = describeDaemon(event);
        if (event.event === "phase") this.#daemonPhase = String(event.fields.class ?? "");
        return line ? [`${stamp()} schedctld: ${line}`] : [];
      }
      case "store": {
        const d = event.dump;
        const agree = storeAgreesWithKernel(d) ? "agree" : "DISAGREE";
        return [
          `${stamp()} end of run: store says ${d.controller?.policy ?? "kernel default"}, kernel runs ${d.kernel.state === "enabled" ? d.kernel.ops : "the default"} (${agree}); ${d.phases.length} phase changes, ${d.deployments.length} deployments`,
        ];
      }
      default:
        return [];
    }
  }

  /** The status block: where the day is and what runs now. */
  render(): string[] {
    const run = this.#run;
    const phase = this.#phase;
    const elapsed = Math.max(0, this.#now - this.#phaseStart);
    const done = run ? run.index * this.#day.length + (phase ? phase.index : 0) : 0;
    const total = this.#runs.length * this.#day.length;
    const bar = progressBar(done / Math.max(1, total), 24);
    return [
      `${bar} run ${run ? run.index + 1 : 0}/${this.#runs.length} ${run ? MODE_LABEL[run.mode] : "booting the sched_ext VM"}`,
      `phase   ${phase ? `${phase.index + 1}/${this.#day.length} ${phase.name}, ${elapsed.toFixed(0)}/${phase.seconds} s` : "-"}${this.#daemonPhase ? `   (schedctld sees: ${this.#daemonPhase})` : ""}`,
      `policy  ${this.#policy}`,
      `KPI     ${this.#kpi || "-"}`,
    ];
  }

  #clock(): string {
    return `${this.#now.toFixed(1).padStart(6)}s`;
  }
}

function describeDaemon(line: Extract<DayEvent, { kind: "daemon" }>): string | undefined {
  const f = line.fields;
  switch (line.event) {
    case "phase":
      return `phase change -> ${f.class} (${f.to})`;
    case "decision":
    case "verification":
    case "deploy":
    case "rollback":
    case "llm-consultation":
      return line.msg;
    default:
      return line.level >= 40 ? `${line.level >= 50 ? "error" : "warning"}: ${line.msg}` : undefined;
  }
}

/** The daemon's store and the kernel name the same scheduler (or both none of ours). */
export function storeAgreesWithKernel(dump: Extract<DayEvent, { kind: "store" }>["dump"]): boolean {
  const kernelOps = dump.kernel.state === "enabled" ? dump.kernel.ops : null;
  const storeOps = dump.controller?.opsName ?? null;
  const attached =
    dump.controller?.phase !== undefined &&
    dump.controller.phase !== "idle" &&
    dump.controller.phase !== "fallback_default";
  return attached ? storeOps === kernelOps : kernelOps === null;
}

function progressBar(fraction: number, width: number): string {
  const filled = Math.round(Math.min(1, Math.max(0, fraction)) * width);
  return `[${"#".repeat(filled)}${"-".repeat(width - filled)}]`;
}
