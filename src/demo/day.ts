import type { VmFile } from "../sandbox/types.ts";
import type { DayFile, PhaseSpec } from "./day-file.ts";

// The day: a day file's phases laid out in a seeded order, each in the cgroup a real unit would
// have, and the schedule of runs (the kernel default, day 1, the learned day) that one VM boot
// goes through. Pure data: the guest script is written from it and the report reads it back.

export interface DayPhase {
  /** Position in the day, from 0. */
  index: number;
  /** The phase's name in the day file. */
  name: string;
  spec: PhaseSpec;
  /** Seconds the phase lasts; its loads repeat in rounds until then. */
  seconds: number;
  /** The phase was seen earlier in the same day (a second sight tests reuse). */
  recurring: boolean;
  /** A quiet pause before the phase starts, as between the jobs of a real day. */
  pauseSeconds: number;
}

export interface DayOptions {
  seed: number;
  /** Length of each phase the day file gives no length of its own. */
  phaseSeconds: number;
  /** Quiet seconds between two phases of work (none after an idle phase). */
  pauseSeconds?: number;
  /** The first pass alone (CI's short day) instead of a day whose phases recur. */
  short?: boolean;
}

/** A phase without a command of its own: the machine rests. */
export const isIdle = (phase: { spec: PhaseSpec }) => phase.spec.run === undefined;

/**
 * The file's order, then (unless short) its phases met again in a seeded order, so day 1
 * already meets a phase a second time.
 */
export function buildDay(file: DayFile, options: DayOptions): DayPhase[] {
  const names = [...file.schedule.order];
  if (!options.short) names.push(...shuffle(file.schedule.again, options.seed));
  const seen = new Set<string>();
  return names.map((name, index) => {
    const spec = file.phases[name]!;
    const recurring = seen.has(name) && spec.run !== undefined;
    seen.add(name);
    const previous = index > 0 ? file.phases[names[index - 1]!] : undefined;
    return {
      index,
      name,
      spec,
      seconds: spec.seconds ?? options.phaseSeconds,
      recurring,
      pauseSeconds: previous?.run !== undefined ? (options.pauseSeconds ?? 0) : 0,
    };
  });
}

/** Every unit the day's commands run in, in the order the day first uses them. */
export function dayUnits(file: DayFile): string[] {
  const units = new Set<string>();
  for (const name of [...file.schedule.order, ...file.schedule.again]) {
    const spec = file.phases[name]!;
    if (spec.unit) units.add(spec.unit);
    for (const b of spec.background) units.add(b.unit);
  }
  return [...units];
}

/** The files the day copies into the guest. */
export function dayFiles(file: DayFile): VmFile[] {
  const files = new Map<string, VmFile>();
  for (const spec of Object.values(file.phases))
    for (const f of spec.files) files.set(f.guest, { hostPath: f.host, guestPath: f.guest });
  return [...files.values()];
}

/** How the daemon runs for a whole day. */
export type RunMode = "baseline" | "day1" | "learned";

export interface ScheduledRun {
  index: number;
  mode: RunMode;
  /** The state directory the daemon uses: the learned days share day 1's. */
  store: "fresh" | "day1";
}

/**
 * The baseline (kernel default, daemon observing) first, then day 1 on an empty store, then the
 * learned day and the baseline alternating, so slow drift of the emulator hits both alike.
 */
export function buildSchedule(repetitions: number): ScheduledRun[] {
  if (!Number.isInteger(repetitions) || repetitions < 1)
    throw new Error(`repetitions must be a whole number >= 1, got ${repetitions}`);
  const modes: RunMode[] = ["baseline", "day1"];
  for (let i = 0; i < repetitions; i++) {
    if (i > 0) modes.push("baseline");
    modes.push("learned");
  }
  return modes.map((mode, index) => ({ index, mode, store: mode === "baseline" ? "fresh" : "day1" }));
}

/** A small seeded generator (mulberry32): the same seed gives the same day. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function shuffle<T>(items: readonly T[], seed: number): T[] {
  const random = seededRandom(seed);
  const out = [...items];
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [out[i], out[j]] = [out[j]!, out[i]!];
  }
  return out;
}

/** Seconds one day takes in the guest, phases only. */
export function daySeconds(day: readonly DayPhase[]): number {
  return day.reduce((sum, p) => sum + p.pauseSeconds + p.seconds, 0);
}
