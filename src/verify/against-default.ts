import type { PolicyWorkload } from "../policies/types.ts";
import type { AgainstDefault, DefaultThresholds, SandboxFigures } from "./types.ts";

// A candidate's sandbox run judged against the kernel default's runs of the same loads in the
// same boot, the way a reviewer would: each workload the policy claims must hold up. Latency
// claims on wake-up latency and each worker's fair share, throughput claims on CPU throughput,
// mixed claims on all three. A policy passes for the claims that hold; the others are refused
// with the figures, and the autopilot never deploys it for a phase of that kind.

/** Hogs first, then the fork loop: the CPU hogs are the identical workers whose shares compare. */
const FORK_WORKER = -1;

export function compareToDefault(candidate: SandboxFigures, baseline: SandboxFigures): AgainstDefault {
  const hogs = (f: SandboxFigures) => f.progress.slice(0, FORK_WORKER);
  const shares = (f: SandboxFigures) => {
    const units = hogs(f);
    const total = units.reduce((a, b) => a + b, 0);
    return units.map((u) => (total > 0 ? u / total : 0));
  };
  const mine = shares(candidate);
  const theirs = shares(baseline);
  const shareRatios = theirs.map((d, i) => (d > 0 ? (mine[i] ?? 0) / d : 1));
  const ratio = (a: number, b: number) => (b > 0 ? round3(a / b) : 1);
  const forks = (f: SandboxFigures) => f.progress.at(FORK_WORKER) ?? 0;
  return {
    minShareRatio: round3(shareRatios.length ? Math.min(...shareRatios) : 0),
    latencyP99Ratio: ratio(candidate.latencyP99Us, baseline.latencyP99Us),
    cyclictestP99Ratio: ratio(candidate.cyclictestP99Us, baseline.cyclictestP99Us),
    throughputRatio: ratio(candidate.opsPerSec, baseline.opsPerSec),
    forkRatio: ratio(forks(candidate), forks(baseline)),
  };
}

export interface Judgement {
  /** The claimed workloads the figures bear out. */
  admits: PolicyWorkload[];
  /** Why each other claim is refused. */
  refused: string[];
}

export function judgeAgainstDefault(
  a: AgainstDefault,
  claims: readonly PolicyWorkload[],
  t: DefaultThresholds,
): Judgement {
  // Every worker progressing is judged for all (a starved one fails the run before this); a
  // fair share only where a service runs: a throughput claim may trade fairness for the batch's
  // completion (shortest-first), never progress.
  const fairnessProblem =
    a.minShareRatio < t.minWorkerShare
      ? `a CPU-bound worker got ${a.minShareRatio.toFixed(2)} of its share of the work under the default (at least ${t.minWorkerShare})`
      : undefined;
  // Latency ratios as one figure: the geometric mean over the latency loads, not the best of them.
  const latency = round3(Math.sqrt(a.latencyP99Ratio * a.cyclictestP99Ratio));
  const latencyProblem =
    latency > t.maxP99Ratio
      ? `p99 wake-up latency ${latency.toFixed(2)}x the default's (request/response ${a.latencyP99Ratio}x, cyclictest ${a.cyclictestP99Ratio}x; at most ${t.maxP99Ratio}x)`
      : undefined;
  const throughputProblem =
    a.throughputRatio < t.minThroughputRatio
      ? `CPU throughput ${a.throughputRatio.toFixed(2)}x the default's (at least ${t.minThroughputRatio}x)`
      : undefined;
  const admits: PolicyWorkload[] = [];
  const refused: string[] = [];
  for (const claim of claims) {
    const against =
      claim === "latency"
        ? [fairnessProblem, latencyProblem]
        : claim === "throughput"
          ? [throughputProblem]
          : claim === "mixed"
            ? [fairnessProblem, latencyProblem, throughputProblem]
            : [fairnessProblem]; // idle, io, memory: the sandbox's loads measure only fairness
    const why = against.filter((p): p is string => p !== undefined);
    if (why.length === 0) admits.push(claim);
    else refused.push(`not for ${claim} phases: ${why.join("; ")}`);
  }
  return { admits, refused };
}

/** Figures in verdicts keep three decimals. */
export function round3(x: number): number {
  return Math.round(x * 1000) / 1000;
}
