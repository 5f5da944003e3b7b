import { PARSERS } from "../sandbox/tools/registry.ts";
import type { DayPhase, RunMode } from "./day.ts";
import type { KpiSpec, PhaseSpec } from "./day-file.ts";
import type { DaemonLine, DayEvent, KernelChange, Round, StoreDump } from "./events.ts";

// From the day's events to what each run measured: per phase its rounds and the figures its KPI
// source read from each, its KPIs (medians over the rounds), the policies the kernel ran while it lasted and how long the autopilot took to put
// one in place. Pure.

/** A phase's figures by name (medians over its rounds), as its KPI source names them. */
export type PhaseKpis = Record<string, number>;

/** A round with the figures its phase's KPI source read from it (none when it could not). */
export interface MeasuredRound extends Round {
  figures: Record<string, number>;
  /** Why no figure could be read. */
  error?: string;
}

/** What one round measured, by its phase's KPI source: a parser, a regex capture, or its wall time. */
export function roundFigures(round: Round, kpi: KpiSpec): Record<string, number> {
  if ("wall_time" in kpi) return { wall_s: round.end - round.start };
  if (round.status !== 0) throw new Error(`the command exited with status ${round.status}`);
  if ("parser" in kpi) return PARSERS[kpi.parser]!.parse(round.output);
  const m = new RegExp(kpi.regex).exec(round.output);
  const value = m?.[1] === undefined ? Number.NaN : Number(m[1]);
  if (!Number.isFinite(value)) throw new Error(`the regex ${kpi.regex} captured no number`);
  return { [kpi.metric]: value };
}

export function measure(round: Round, spec: PhaseSpec | undefined): MeasuredRound {
  if (!spec?.kpi) return { ...round, figures: {} };
  try {
    return { ...round, figures: roundFigures(round, spec.kpi) };
  } catch (error) {
    return { ...round, figures: {}, error: (error as Error).message };
  }
}

export interface PolicySpan {
  from: number;
  to: number;
  /** The kernel's ops name, or "default" when no sched_ext scheduler runs. */
  policy: string;
}

export interface PhaseRecord {
  run: number;
  phase: number;
  name: string;
  start: number;
  end: number;
  rounds: MeasuredRound[];
  kpis: PhaseKpis;
  policies: PolicySpan[];
  /** Seconds from the phase's start to a new policy in place, when one was put in place. */
  adaptS?: number;
  /** Calls the daemon made to its LLM from the phase's start to the next phase's. */
  llmCalls: number;
}

export interface RunRecord {
  index: number;
  mode: RunMode;
  start: number;
  end: number | undefined;
  phases: PhaseRecord[];
  /** The kernel's scheduler from the first phase's start to the last one's end, pauses included. */
  policies: PolicySpan[];
  daemon: DaemonLine[];
  store: StoreDump | undefined;
  kernelAfterStop: string | undefined;
  ejections: number[];
}

export function median(values: readonly number[]): number | undefined {
  if (values.length === 0) return undefined;
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

/** The kernel's scheduler over time: spans from each reported change to the next. */
export function policyTimeline(changes: readonly KernelChange[], until: number): PolicySpan[] {
  const spans: PolicySpan[] = [];
  changes.forEach((c, i) => {
    const to = changes[i + 1]?.t ?? until;
    const policy = c.state === "enabled" && c.ops ? c.ops : "default";
    const last = spans.at(-1);
    if (last && last.policy === policy) last.to = to;
    else spans.push({ from: c.t, to, policy });
  });
  return spans;
}

function clip(spans: readonly PolicySpan[], from: number, to: number): PolicySpan[] {
  return spans
    .filter((s) => s.to > from && s.from < to)
    .map((s) => ({ ...s, from: Math.max(s.from, from), to: Math.min(s.to, to) }));
}

export function phaseKpis(rounds: readonly MeasuredRound[]): PhaseKpis {
  const kpis: PhaseKpis = {};
  const names = new Set(rounds.flatMap((r) => Object.keys(r.figures)));
  for (const name of names) {
    const m = median(rounds.flatMap((r) => (r.figures[name] === undefined ? [] : [r.figures[name]])));
    if (m !== undefined) kpis[name] = m;
  }
  return kpis;
}

/** The runs of a day, from its events in console order. */
export function collectRuns(events: readonly DayEvent[], day: readonly DayPhase[]): RunRecord[] {
  const runs = new Map<number, RunRecord>();
  const kernel: KernelChange[] = [];
  const open = new Map<string, PhaseRecord>();
  let lastT = 0;
  const runOf = (index: number | undefined) => (index === undefined ? undefined : runs.get(index));
  for (const e of events) {
    if (e.kind === "kernel") {
      kernel.push(e.change);
      lastT = Math.max(lastT, e.change.t);
    } else if (e.kind === "daemon") {
      runOf(e.run)?.daemon.push(e);
    } else if (e.kind === "store") {
      const run = runOf(e.dump.run);
      if (run) run.store = e.dump;
    } else if (e.kind === "kernel-after-stop") {
      const run = runOf(e.run);
      if (run) run.kernelAfterStop = e.state;
    } else if (e.kind === "round") {
      open.get(`${e.round.run}/${e.round.phase}`)?.rounds.push(measure(e.round, day[e.round.phase]?.spec));
    } else {
      const m = e.mark;
      lastT = Math.max(lastT, m.t);
      if (m.event === "run-start" && m.run !== undefined && m.mode)
        runs.set(m.run, {
          index: m.run,
          mode: m.mode,
          start: m.t,
          end: undefined,
          phases: [],
          policies: [],
          daemon: [],
          store: undefined,
          kernelAfterStop: undefined,
          ejections: [],
        });
      else if (m.event === "run-end") {
        const run = runOf(m.run);
        if (run) run.end = m.t;
      } else if (m.event === "eject") runOf(m.run)?.ejections.push(m.t);
      else if (m.event === "phase-start" && m.name && m.phase !== undefined && m.run !== undefined) {
        const record: PhaseRecord = {
          run: m.run,
          phase: m.phase,
          name: m.name,
          start: m.t,
          end: m.t,
          rounds: [],
          kpis: {},
          policies: [],
          llmCalls: 0,
        };
        open.set(`${m.run}/${m.phase}`, record);
        runOf(m.run)?.phases.push(record);
      } else if (m.event === "phase-end" && m.phase !== undefined) {
        const record = open.get(`${m.run}/${m.phase}`);
        if (record) record.end = m.t;
      }
    }
  }
  const timeline = policyTimeline(kernel, lastT);
  for (const run of runs.values()) {
    const first = run.phases[0];
    const last = run.phases.at(-1);
    if (first && last) run.policies = clip(timeline, first.start, last.end);
    run.phases.forEach((phase, i) => {
      const until = run.phases[i + 1]?.start ?? run.end ?? Number.POSITIVE_INFINITY;
      phase.llmCalls = run.daemon.filter(
        (d) => d.event === "llm-consultation" && d.t >= phase.start && d.t < until,
      ).length;
      phase.kpis = phaseKpis(phase.rounds);
      phase.policies = clip(timeline, phase.start, phase.end);
      const placed = kernel.find(
        (c) => c.t >= phase.start && c.t <= phase.end && c.state === "enabled" && c.ops !== "",
      );
      if (placed) phase.adaptS = placed.t - phase.start;
    });
  }
  return [...runs.values()].sort((a, b) => a.index - b.index);
}

/** The scheduler that ran longest during a phase. */
export function mainPolicy(phase: PhaseRecord): string {
  const time = new Map<string, number>();
  for (const s of phase.policies) time.set(s.policy, (time.get(s.policy) ?? 0) + s.to - s.from);
  let best = "default";
  let most = -1;
  for (const [policy, t] of time) if (t > most) [best, most] = [policy, t];
  return best;
}

/** The kernel's scheduler changes over the whole day, for the timeline picture. */
export function kernelChanges(events: readonly DayEvent[]): KernelChange[] {
  return events.flatMap((e) => (e.kind === "kernel" ? [e.change] : []));
}
