// The day: a scripted, seeded sequence of workload phases, each in the cgroup a real unit would
// have, and the schedule of runs (the kernel default, day 1, the learned day) that one VM boot
// goes through. Pure data: the guest script is written from it and the report reads it back.

export type PhaseKind = "idle" | "latency" | "build" | "batch" | "mixed";

/** The units the phases run in (cgroup v2 paths below the mount). */
export const UNITS = {
  service: "system.slice/api.service",
  build: "user.slice/build.scope",
  batch: "batch.slice/jobs.service",
  /** The CPU hogs the service competes with in the latency phase. */
  hogs: "user.slice/hogs.scope",
} as const;

export interface DayPhase {
  /** Position in the day, from 0. */
  index: number;
  kind: PhaseKind;
  /** Seconds the phase lasts; its loads repeat in rounds until then. */
  seconds: number;
  /** The phase was seen earlier in the same day (a second sight tests reuse). */
  recurring: boolean;
  /** A quiet pause before the phase starts, as between the jobs of a real day. */
  pauseSeconds: number;
}

export interface DayOptions {
  seed: number;
  /** Length of each non-idle phase. */
  phaseSeconds: number;
  idleSeconds: number;
  /** Quiet seconds between two phases of work (none after an idle phase). */
  pauseSeconds?: number;
  /** Each phase once (CI's short day) instead of a day whose phases recur. */
  short?: boolean;
}

const FIRST_SIGHT: readonly PhaseKind[] = ["latency", "build", "batch", "mixed"];

/**
 * idle, then each kind of work once; the full day then brings back three of them in a seeded
 * order, so day 1 already meets a phase a second time.
 */
export function buildDay(options: DayOptions): DayPhase[] {
  const kinds: PhaseKind[] = ["idle", ...FIRST_SIGHT];
  if (!options.short) kinds.push(...shuffle<PhaseKind>(["latency", "build", "batch"], options.seed));
  const seen = new Set<PhaseKind>();
  return kinds.map((kind, index) => {
    const recurring = seen.has(kind) && kind !== "idle";
    seen.add(kind);
    return {
      index,
      kind,
      seconds: kind === "idle" ? options.idleSeconds : options.phaseSeconds,
      recurring,
      pauseSeconds: index > 0 && kinds[index - 1] !== "idle" ? (options.pauseSeconds ?? 0) : 0,
    };
  });
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

function shuffle<T>(items: T[], seed: number): T[] {
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
