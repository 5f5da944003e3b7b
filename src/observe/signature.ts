import { classify } from "./classify.ts";
import type { FeatureName, Features, WorkloadClass } from "./types.ts";

// A phase's signature: its class, its features put into coarse levels, and who dominates it (the
// busiest cgroups, with run-specific parts of their names blurred). Equal signatures mean "the
// same kind of work by the same cgroups"; later stages reuse decisions keyed by it.

/** Level edges per feature; a value below edges[0] is level 0. Coarse on purpose. */
const LEVELS: Partial<Record<FeatureName, readonly number[]>> = {
  cpu_util: [0.1, 0.4, 0.75],
  runnable_per_cpu: [0.75, 2, 6],
  run_delay_per_cpu_time: [0.1, 0.5, 2],
  ctxsw_per_sec_per_cpu: [500, 3000, 20000],
  psi_cpu_some: [0.15, 0.5],
  psi_io_some: [0.1, 0.4],
  psi_memory_some: [0.1, 0.4],
  forks_per_sec: [10, 100, 1000],
};

/** A level is kept while the value stays within its edges widened by this fraction. */
const MARGIN = 0.3;
/** A cgroup belongs to the identity when its mean share of the busy CPU time is at least this. */
const DOMINANT_SHARE = 0.25;
const MAX_DOMINANT = 2;

export interface SignatureState {
  class: WorkloadClass;
  levels: Partial<Record<FeatureName, number>>;
  cgroups: string[];
  signature: string;
}

/**
 * The signature of a phase from its mean features and mean cgroup shares. With `previous` (the
 * same phase's last state) every level and the class keep their value unless the mean left them
 * by more than the margin, so a phase's signature does not flicker as its mean settles.
 */
export function phaseSignature(
  mean: Features,
  cgroupShares: ReadonlyMap<string, number>,
  previous?: SignatureState,
): SignatureState {
  const cls = classify(mean, previous?.class);
  const levels: Partial<Record<FeatureName, number>> = {};
  for (const [name, edges] of Object.entries(LEVELS) as [FeatureName, readonly number[]][]) {
    levels[name] = level(mean[name], edges, previous?.levels[name]);
  }
  const cgroups = dominantCgroups(cgroupShares, previous);
  const canonical = JSON.stringify([cls, Object.entries(levels), cgroups]);
  const hash =
    fnv1a(canonical, 0x811c9dc5).toString(16).padStart(8, "0") +
    (fnv1a(canonical, 0x01000193) & 0xff).toString(16).padStart(2, "0");
  return { class: cls, levels, cgroups, signature: `${cls}-${hash}` };
}

/** The busiest cgroups' blurred names; one that was dominant stays while above 80% of the bar. */
function dominantCgroups(shares: ReadonlyMap<string, number>, previous?: SignatureState): string[] {
  const names = [...shares]
    .map(([path, share]) => ({ name: blur(path), share }))
    .filter(({ name, share }) => share >= DOMINANT_SHARE * (previous?.cgroups.includes(name) ? 0.8 : 1))
    .sort((a, b) => b.share - a.share)
    .slice(0, MAX_DOMINANT)
    .map((c) => c.name);
  return [...new Set(names)].sort();
}

function level(value: number, edges: readonly number[], previous: number | undefined): number {
  let plain = 0;
  while (plain < edges.length && value >= edges[plain]!) plain++;
  if (previous === undefined || previous === plain) return plain;
  const low = previous === 0 ? Number.NEGATIVE_INFINITY : edges[previous - 1]! * (1 - MARGIN);
  const high = previous >= edges.length ? Number.POSITIVE_INFINITY : edges[previous]! * (1 + MARGIN);
  return value >= low && value < high ? previous : plain;
}

/**
 * A cgroup path with run-specific parts blurred: long hex ids (containers) become "*", numbers
 * (session-3.scope, user-1000.slice, app@2.service) become "#".
 */
export function blur(path: string): string {
  return path.replace(/[0-9a-f]{12,}/g, "*").replace(/[0-9]+/g, "#");
}

/**
 * FNV-1a, 32 bits: a stable name for a short canonical string, not a secret (node:crypto would
 * cost the sampling process 5 MB for nothing).
 */
function fnv1a(text: string, seed: number): number {
  let h = seed >>> 0;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h >>> 0;
}
