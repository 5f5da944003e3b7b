import { FEATURE_NAMES, type FeatureName } from "./features.ts";
import type { Features, MovedFeature } from "./types.ts";

// Streaming phase-change detection: a two-sided CUSUM (the Page-Hinkley test in its recursive
// form) per feature, over features put on a common scale. Each feature is first transformed so
// its noise is roughly even across its range (logarithms for rates that span decades), then
// divided by its spread in the current phase, never less than a floor that says how small a
// change still matters.

export interface DetectorOptions {
  /** Alarm threshold on the accumulated drift, in spreads. */
  threshold: number;
  /** Deviation tolerated before drift accumulates, in spreads. */
  tolerance: number;
  /** Samples after a change before the next one is reported (a change seen sooner is held, not lost). */
  minDwell: number;
  /**
   * Consecutive samples beyond the tolerance a moderate shift needs, plus one (the new level must
   * hold past a blip of this length); a strong shift needs min(confirm, 2).
   */
  confirm: number;
}

interface Scale {
  transform(x: number): number;
  /** The smallest spread assumed, in transformed units: smaller changes are not phase changes. */
  floor: number;
}

const log2p = (x: number) => Math.log2(1 + Math.max(0, x));

export const SCALES: Record<FeatureName, Scale> = {
  cpu_util: { transform: (x) => x, floor: 0.04 },
  // Gauges read at one instant per window: far noisier than the counters, hence wider floors.
  runnable_per_cpu: { transform: log2p, floor: 0.5 },
  run_delay_per_cpu_time: { transform: (x) => log2p(4 * x), floor: 0.25 },
  ctxsw_per_sec_per_cpu: { transform: (x) => log2p(x / 100), floor: 0.3 },
  psi_cpu_some: { transform: (x) => x, floor: 0.05 },
  psi_io_some: { transform: (x) => x, floor: 0.05 },
  psi_memory_some: { transform: (x) => x, floor: 0.05 },
  top_cgroup_share: { transform: (x) => x, floor: 0.08 },
  blocked_per_cpu: { transform: log2p, floor: 0.5 },
  forks_per_sec: { transform: (x) => log2p(x / 5), floor: 0.5 },
};

/** Samples kept for re-estimating a new phase; older ones live on only in the running sums. */
const HISTORY = 64;
/** Samples over which a new phase's level and spread are learned (detection runs meanwhile). */
const LEARN = 30;
/** How fast an established phase's level follows slow drift (only inlier samples move it). */
const FOLLOW = 0.02;
const INLIER = 2;
/** Smallest shift (in spreads) of a feature's recent median that counts as a phase change. */
const MIN_SHIFT = 2.5;
/**
 * Drift (root sum of squares, in spreads, of each feature's smallest shift over the last two
 * samples) at which two samples are enough: a load starting or stopping outright moves several
 * features by many spreads, a blip within a phase moves fewer, less.
 */
const STRONG_DRIFT = 8;
/** Drift a moderate shift must hold over its `confirm + 1` samples: one feature barely past MIN_SHIFT is noise. */
const MODERATE_DRIFT = 4.5;

export interface Detection {
  /** Index (count of features pushed, from 0) of the first window of the new phase. */
  start: number;
  /** Index of the window at which the change was detected. */
  at: number;
  drift: number;
  moved: MovedFeature[];
  /** Raw mean features of the phase that ended and of the new phase so far. */
  before: Features;
  after: Features;
}

interface Point {
  y: number[];
  x: Features;
}

interface Cusum {
  up: number;
  down: number;
  upStart: number;
  downStart: number;
  upRun: number;
  downRun: number;
  /** The sums before the current run began, to undo a spike that did not persist. */
  upBase: number;
  downBase: number;
}

const N = FEATURE_NAMES.length;

export class PhaseDetector {
  readonly #options: DetectorOptions;
  #index = -1;
  readonly #history: Point[] = [];
  /** First window of the current phase and the window at which it was detected. */
  #start = 0;
  #detectedAt = 0;
  #mean: number[] | undefined;
  #spread: number[] = new Array(N).fill(0);
  /** The level and scale of the phase before the current one: a young phase swinging back toward it is one load alternating. */
  #previous: { mean: number[]; scale: number[] } | undefined;
  #cusum: Cusum[] = [];
  #sum = new Array<number>(N).fill(0);
  #count = 0;

  constructor(options: DetectorOptions) {
    this.#options = options;
  }

  /** Raw mean features of the current phase so far. */
  get phaseMean(): Features {
    return toFeatures(this.#sum.map((s) => s / Math.max(1, this.#count)));
  }

  push(features: Features): Detection | undefined {
    this.#index++;
    const point: Point = { x: features, y: FEATURE_NAMES.map((f) => SCALES[f].transform(features[f])) };
    this.#history.push(point);
    if (this.#history.length > HISTORY) this.#history.shift();
    this.#add(point, 1);
    if (!this.#mean) {
      if (this.#index - this.#detectedAt + 1 >= this.#options.minDwell) this.#learn();
      return undefined;
    }
    const alarms = this.#gate(this.#step(point.y));
    if (alarms.length === 0) {
      if (this.#index - this.#start >= LEARN) this.#follow(point.y);
      else if (!this.#pending(point.y)) this.#learn();
      return undefined;
    }
    // Within the dwell the alarm is held (its sums and run go on) and reported once the dwell is over.
    if (this.#index - this.#detectedAt < this.#options.minDwell) return undefined;
    return this.#change(alarms);
  }

  /**
   * Whether a young phase's sample may be the start of the next phase, so must not be learned (it
   * would widen the spread until the next change hid in it): it is far off the level on some
   * feature, and not a swing back toward the previous phase (every feature between the two
   * levels, give or take MIN_SHIFT spreads), which is how a load that alternates looks. Learned
   * after all if its run ends unconfirmed, because learning reads every sample since the phase
   * began.
   */
  #pending(y: number[]): boolean {
    const mean = this.#mean!;
    const far = y.some((v, j) => Math.abs(v - mean[j]!) >= MIN_SHIFT * this.#scale(j));
    if (!far) return false;
    const p = this.#previous;
    if (!p) return true;
    return y.some((v, j) => {
      const low = Math.min(mean[j]! - MIN_SHIFT * this.#scale(j), p.mean[j]! - MIN_SHIFT * p.scale[j]!);
      const high = Math.max(mean[j]! + MIN_SHIFT * this.#scale(j), p.mean[j]! + MIN_SHIFT * p.scale[j]!);
      return v < low || v > high;
    });
  }

  /**
   * Learns the phase's level (mean) and spread (scaled mean absolute deviation) from its samples
   * so far, leaving out the first one, which usually straddles the boundary. Called at the end of
   * the dwell and again on every sample until LEARN samples are in, so a phase whose load swings
   * learns the swing as its spread instead of alarming on it.
   */
  #learn(): void {
    const n = Math.min(this.#index - this.#start + 1, this.#history.length);
    const points = this.#history.slice(-n);
    const use = points.length >= 3 ? points.slice(1) : points;
    const fresh = !this.#mean;
    this.#mean ??= new Array<number>(N).fill(0);
    for (let j = 0; j < N; j++) {
      const ys = use.map((p) => p.y[j]!);
      const m = ys.reduce((a, b) => a + b, 0) / ys.length;
      this.#mean[j] = m;
      this.#spread[j] = 1.2533 * (ys.reduce((a, y) => a + Math.abs(y - m), 0) / ys.length);
    }
    if (fresh) this.#cusum = Array.from({ length: N }, () => freshCusum(this.#index + 1));
  }

  #scale(j: number): number {
    return Math.max(SCALES[FEATURE_NAMES[j]!].floor, this.#spread[j]!);
  }

  /** Advances every feature's CUSUM; returns the features that alarmed. */
  #step(y: number[]): number[] {
    const { threshold, tolerance, confirm } = this.#options;
    const fast = Math.min(confirm, 2);
    const moderate = confirm + 1;
    const cap = threshold / fast;
    for (let j = 0; j < N; j++) {
      const c = this.#cusum[j]!;
      const z = (y[j]! - this.#mean![j]!) / this.#scale(j);
      if (z > tolerance) {
        if (c.upRun === 0) c.upBase = c.up;
        c.upRun++;
      } else {
        // A run too short to confirm a moderate shift was a blip: undo what it added.
        if (c.upRun > 0 && c.upRun < moderate) c.up = c.upBase;
        c.upRun = 0;
      }
      if (-z > tolerance) {
        if (c.downRun === 0) c.downBase = c.down;
        c.downRun++;
      } else {
        if (c.downRun > 0 && c.downRun < moderate) c.down = c.downBase;
        c.downRun = 0;
      }
      // One sample adds at most its share of the threshold: a change must last `fast` samples.
      c.up = Math.max(0, c.up + Math.min(z - tolerance, cap));
      c.down = Math.max(0, c.down + Math.min(-z - tolerance, cap));
      if (c.up === 0) c.upStart = this.#index + 1;
      if (c.down === 0) c.downStart = this.#index + 1;
    }
    const needed =
      this.#heldDrift(fast) >= STRONG_DRIFT
        ? fast
        : this.#heldDrift(moderate) >= MODERATE_DRIFT
          ? moderate
          : Number.POSITIVE_INFINITY;
    const alarms: number[] = [];
    for (let j = 0; j < N; j++) {
      const c = this.#cusum[j]!;
      if ((c.up >= threshold && c.upRun >= needed) || (c.down >= threshold && c.downRun >= needed))
        alarms.push(j);
    }
    return alarms;
  }

  /**
   * The evidence of the last `n` samples: per feature the shift all of them show (the smallest,
   * in spreads, when they agree in direction), combined as a root sum of squares.
   */
  #heldDrift(n: number): number {
    const last = this.#history.slice(-n);
    let sum = 0;
    for (let j = 0; j < N; j++) {
      const z = last.map((p) => (p.y[j]! - this.#mean![j]!) / this.#scale(j));
      const held = z.every((v) => v > 0) ? Math.min(...z) : z.every((v) => v < 0) ? -Math.max(...z) : 0;
      if (held > this.#options.tolerance) sum += held * held;
    }
    return Math.sqrt(sum);
  }

  /**
   * Keeps the alarms whose shift is large enough to be a new phase. A CUSUM can also cross its
   * threshold by adding up a small bias over a long time; such a feature's level is moved to
   * where its recent samples are, and its sums start over.
   */
  #gate(alarms: number[]): number[] {
    return alarms.filter((j) => {
      const c = this.#cusum[j]!;
      const start = Math.max(c.up > c.down ? c.upStart : c.downStart, this.#index - this.#history.length + 1);
      const recent = median(this.#history.slice(start - this.#index - 1).map((p) => p.y[j]!));
      if (Math.abs(recent - this.#mean![j]!) >= MIN_SHIFT * this.#scale(j)) return true;
      this.#mean![j] = recent;
      this.#cusum[j] = freshCusum(this.#index + 1);
      return false;
    });
  }

  /** Lets an established phase's level and spread follow slow drift, from inlier samples only. */
  #follow(y: number[]): void {
    for (let j = 0; j < N; j++) {
      const deviation = y[j]! - this.#mean![j]!;
      const scale = this.#scale(j);
      // The spread takes every sample, clipped (skipping outliers would shrink it over time);
      // the level takes only inliers.
      const clipped = Math.min(Math.abs(deviation), 3 * scale);
      this.#spread[j] = (1 - FOLLOW) * this.#spread[j]! + FOLLOW * 1.2533 * clipped;
      if (Math.abs(deviation) <= INLIER * scale) this.#mean![j]! += FOLLOW * deviation;
    }
  }

  /**
   * Declares a change the features did not show on their own (the dominant cgroup changed hands
   * while the totals stayed alike), its new phase beginning at window `start`. Refused (undefined)
   * while the current phase is still within its dwell.
   */
  forceChange(start: number): Detection | undefined {
    if (!this.#mean || this.#index - this.#detectedAt < this.#options.minDwell) return undefined;
    return this.#change([FEATURE_NAMES.indexOf("top_cgroup_share")], start);
  }

  #change(alarms: number[], from?: number): Detection {
    const { tolerance } = this.#options;
    let start = from ?? this.#index;
    for (const j of from === undefined ? alarms : []) {
      const c = this.#cusum[j]!;
      const runStart = c.up > c.down ? c.upStart : c.downStart;
      start = Math.min(start, runStart);
    }
    start = Math.max(start, this.#index - this.#history.length + 1, this.#detectedAt + 1);
    const fresh = this.#history.slice(start - this.#index - 1);
    for (const p of fresh) this.#add(p, -1);
    const before = this.phaseMean;
    const moved: MovedFeature[] = [];
    let drift = 0;
    for (let j = 0; j < N; j++) {
      const name = FEATURE_NAMES[j]!;
      const score = (median(fresh.map((p) => p.y[j]!)) - this.#mean![j]!) / this.#scale(j);
      if (Math.abs(score) <= 2 * tolerance && !alarms.includes(j)) continue;
      const after = fresh.reduce((s, p) => s + p.x[name], 0) / fresh.length;
      moved.push({ feature: name, from: before[name], to: after, score: round(score) });
      drift += score * score;
    }
    moved.sort((a, b) => Math.abs(b.score) - Math.abs(a.score));
    this.#sum.fill(0);
    this.#count = 0;
    // The new phase's mean leaves out its first window when it can: that one straddles the boundary.
    for (const p of fresh.length >= 2 ? fresh.slice(1) : fresh) this.#add(p, 1);
    const after = this.phaseMean;
    this.#previous = { mean: [...this.#mean!], scale: this.#mean!.map((_, j) => this.#scale(j)) };
    this.#start = start;
    this.#detectedAt = this.#index;
    // The new phase's reference is the samples that confirmed it; it grows from later samples
    // that are not the start of yet another phase (see #pending).
    this.#mean = undefined;
    this.#learn();
    return { start, at: this.#index, drift: round(Math.sqrt(drift)), moved, before, after };
  }

  #add(p: Point, sign: 1 | -1): void {
    for (let j = 0; j < N; j++) this.#sum[j]! += sign * p.x[FEATURE_NAMES[j]!];
    this.#count += sign;
  }
}

function freshCusum(start: number): Cusum {
  return { up: 0, down: 0, upStart: start, downStart: start, upRun: 0, downRun: 0, upBase: 0, downBase: 0 };
}

function median(values: number[]): number {
  if (values.length === 0) return 0;
  const s = [...values].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

function toFeatures(values: number[]): Features {
  const out = {} as Features;
  FEATURE_NAMES.forEach((name, j) => {
    out[name] = values[j]!;
  });
  return out;
}

function round(x: number): number {
  return Math.round(x * 100) / 100;
}
