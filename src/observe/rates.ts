// Cumulative kernel counters turned into per-window increments. A counter can go backwards for
// two reasons: a 32-bit counter wrapped (old kernels' per-CPU fields), or the thing counted was
// reset (a cgroup removed and re-created under the same path, a pid reused). Neither may show up
// as a huge or negative rate.

const WRAP32 = 2 ** 32;

/**
 * The increase of a cumulative counter from `prev` to `cur`. When it went backwards: a wrap if
 * `prev` was in the top half of the 32-bit range and the wrapped increase is plausible, else a
 * reset (what was counted since the reset is `cur`). `max` bounds what one window can hold
 * (e.g. elapsed time x CPUs for CPU time); a result above it is clamped.
 */
export function counterDelta(prev: number, cur: number, max = Number.POSITIVE_INFINITY): number {
  if (!Number.isFinite(prev) || !Number.isFinite(cur)) return 0;
  let delta: number;
  if (cur >= prev) delta = cur - prev;
  else if (prev < WRAP32 && prev >= WRAP32 / 2 && cur + WRAP32 - prev <= max) delta = cur + WRAP32 - prev;
  else delta = cur;
  return Math.min(Math.max(0, delta), max);
}

/** counterDelta for optional fields: undefined when either side lacks the counter. */
export function optionalDelta(
  prev: number | undefined,
  cur: number | undefined,
  max?: number,
): number | undefined {
  if (prev === undefined || cur === undefined) return undefined;
  return counterDelta(prev, cur, max);
}

/** A fraction clamped to 0..1 (rounding in the kernel's counters can overshoot slightly). */
export function fraction(part: number, whole: number): number {
  if (!(whole > 0)) return 0;
  return Math.min(1, Math.max(0, part / whole));
}
