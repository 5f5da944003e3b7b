import type { Profile } from "../observe/types.ts";
import { type Candidate, DEFAULT_KEY, policyKey } from "./candidates.ts";
import { gaussian, type Random } from "./random.ts";
import type { CandidateSummary, Outcome } from "./types.ts";

// The local planner: Thompson sampling over a handful of candidates per phase. Each candidate's
// log(KPI ratio) has a normal posterior: its prior from the manifests, this signature's outcomes
// at full weight, and other signatures of the same class at a fraction (what worked for one build
// is evidence for the next). The kernel default is the yardstick, exactly 0.

export interface PlannerOptions {
  /** Failed probations of one policy for one signature before it is never tried again for it. */
  quarantineAfter: number;
  /** Weight of another signature's outcome of the same class, relative to this signature's own. */
  classWeight: number;
  random: Random;
  /** Posterior draws used to estimate each candidate's chance of being (near) the best. */
  draws?: number;
}

export interface LocalPlan {
  chosen: Candidate;
  /**
   * The chosen candidate's chance of being the best or within NEAR_BEST of it (the share of
   * posterior draws in which it is): candidates closer than the measurement can tell apart do not
   * make the planner unsure.
   */
  confidence: number;
  /**
   * The probability that the best-known candidate (one with outcomes behind it) beats the kernel
   * default; 0 when nothing has been tried. A planner that already knows something that helps has
   * no need of an LLM, even while it keeps exploring near it.
   */
  assurance: number;
  summaries: CandidateSummary[];
  rationale: string;
}

/** Spread of one outcome's log ratio: the VM's run-to-run noise is about +-35%. */
const OBSERVATION_SD = 0.35;
/** Pseudo-outcomes the prior is worth. */
const PRIOR_WEIGHT = 2;
/** A failed or rolled-back probation counts as at least this bad. */
const FAILED_LOG_RATIO = Math.log(1.3);
/** Candidates within 5% of the best KPI ratio count as equally good (far inside the VM's noise). */
const NEAR_BEST = Math.log(1.05);
/** On an idle phase a policy must be known to beat the default by this much to replace it. */
const IDLE_MARGIN = Math.log(1 / 0.95);
/**
 * Policies a phase may try before the planner stops exploring it: then only what was measured to
 * beat the default there, or the default itself (a learned day must not gamble with the work).
 */
export const MAX_TRIED_PER_PHASE = 2;

interface Posterior {
  candidate: Candidate;
  mean: number;
  sd: number;
  evidence: number;
  excluded?: string;
}

export function plan(
  profile: Profile,
  candidates: readonly Candidate[],
  ownOutcomes: readonly Outcome[],
  classOutcomes: readonly Outcome[],
  options: PlannerOptions,
): LocalPlan {
  const tried = new Set(ownOutcomes.map((o) => policyKey(o.policy)));
  tried.delete(DEFAULT_KEY);
  const ownSignatures = new Set([profile.signature, ...ownOutcomes.map((o) => o.signature)]);
  const classWide = classOutcomes.filter((o) => !ownSignatures.has(o.signature));
  const posteriors = candidates.map((c) => {
    const p = posterior(c, ownOutcomes, classWide, options);
    if (p.excluded || c.key === DEFAULT_KEY || tried.has(c.key) || tried.size < MAX_TRIED_PER_PHASE) return p;
    return { ...p, excluded: `${tried.size} policies already tried on this phase` };
  });
  const eligible = posteriors.filter((p) => !p.excluded);
  const idle = profile.class === "idle";
  // On idle, no exploration: a policy replaces the default only on evidence, never on hope.
  const draw = (p: Posterior) => (idle || p.sd === 0 ? p.mean : p.mean + p.sd * gaussian(options.random));
  const idleFloor = (p: Posterior) =>
    p.candidate.key === DEFAULT_KEY || !idle || (p.evidence > 0 && p.mean < -IDLE_MARGIN);
  const pool = eligible.filter(idleFloor);
  // One draw per candidate per round: the lowest draw wins the round (Thompson sampling), and
  // every candidate within NEAR_BEST of it counts as good as the best in that round.
  const roundWithout = (key: string) =>
    pool
      .filter((p) => p.candidate.key !== key)
      .map((p) => ({ p, d: draw(p) }))
      .reduce((a, b) => (b.d < a.d ? b : a)).p;
  const round = () => {
    const drawn = pool.map((p) => ({ p, d: draw(p) }));
    const best = drawn.reduce((a, b) => (b.d < a.d ? b : a));
    return {
      winner: best.p,
      nearBest: drawn.filter((x) => x.d <= best.d + NEAR_BEST).map((x) => x.p.candidate.key),
    };
  };
  // A phase never seen before is explored: the default is the yardstick (known without trying it),
  // and probation keeps the trial safe; only a trial teaches anything.
  const firstSight = !idle && ownOutcomes.length === 0 && pool.some((p) => p.candidate.key !== DEFAULT_KEY);
  const chosen = firstSight ? roundWithout(DEFAULT_KEY) : round().winner;
  const draws = options.draws ?? 256;
  const near = new Map<string, number>();
  for (let i = 0; i < draws; i++) {
    for (const key of round().nearBest) near.set(key, (near.get(key) ?? 0) + 1);
  }
  const share = (key: string) => (near.get(key) ?? 0) / draws;
  const summaries: CandidateSummary[] = posteriors.map((p) => ({
    key: p.candidate.key,
    policy: p.candidate.policy,
    expectedLogRatio: round3(p.mean),
    evidence: round3(p.evidence),
    winShare: share(p.candidate.key),
    ...(p.excluded && { excluded: p.excluded }),
  }));
  const confidence = share(chosen.candidate.key);
  const assurance = Math.max(
    0,
    ...pool.filter((p) => p.evidence > 0 && p.sd > 0).map((p) => normalCdf(-p.mean / p.sd)),
  );
  return {
    chosen: chosen.candidate,
    confidence,
    assurance,
    summaries,
    rationale: explain(profile, chosen, confidence, posteriors),
  };
}

function posterior(
  candidate: Candidate,
  own: readonly Outcome[],
  classWide: readonly Outcome[],
  options: PlannerOptions,
): Posterior {
  if (candidate.key === DEFAULT_KEY) return { candidate, mean: 0, sd: 0, evidence: 0 };
  const mine = own.filter((o) => policyKey(o.policy) === candidate.key);
  const failures = mine.filter((o) => !o.passed || o.rolledBack).length;
  let excluded: string | undefined;
  const ownLog = mine.length > 0 ? mine.reduce((s, o) => s + observed(o), 0) / mine.length : 0;
  if (mine.some((o) => o.quarantined)) excluded = "quarantined for this signature";
  else if (failures >= options.quarantineAfter)
    excluded = `failed probation ${failures} times on this signature`;
  // Measured no better than the kernel default on this very phase: the default is the better bet.
  else if (mine.length > 0 && ownLog >= 0)
    excluded = `no better than the kernel default here (KPI ratio ${Math.exp(ownLog).toFixed(2)})`;
  const others = classWide.filter((o) => policyKey(o.policy) === candidate.key);
  let weight = PRIOR_WEIGHT;
  let sum = PRIOR_WEIGHT * candidate.priorLogRatio;
  for (const o of mine) {
    weight += 1;
    sum += observed(o);
  }
  for (const o of others) {
    weight += options.classWeight;
    sum += options.classWeight * observed(o);
  }
  const evidence = weight - PRIOR_WEIGHT;
  return {
    candidate,
    mean: sum / weight,
    sd: OBSERVATION_SD / Math.sqrt(weight),
    evidence,
    ...(excluded && { excluded }),
  };
}

function observed(o: Outcome): number {
  const x = Math.log(o.kpiRatio);
  return !o.passed || o.rolledBack ? Math.max(x, FAILED_LOG_RATIO) : x;
}

function explain(profile: Profile, chosen: Posterior, confidence: number, all: readonly Posterior[]): string {
  const excluded = all.filter((p) => p.excluded).map((p) => `${p.candidate.key} (${p.excluded})`);
  const what =
    chosen.candidate.key === DEFAULT_KEY
      ? "kept the kernel default (nothing is known to beat it)"
      : `picked ${chosen.candidate.key}: expected KPI ratio ${Math.exp(chosen.mean).toFixed(2)} from ${round3(chosen.evidence)} weighted outcome(s)`;
  const skipped = excluded.length > 0 ? `; excluded ${excluded.join(", ")}` : "";
  return `planner: ${profile.class} phase; ${what}; best (within 5%) in ${Math.round(confidence * 100)}% of posterior draws among ${all.length} candidate(s)${skipped}`;
}

/** Φ(x), by Abramowitz and Stegun 7.1.26 (error below 1.5e-7). */
function normalCdf(x: number): number {
  const z = Math.abs(x) / Math.SQRT2;
  const t = 1 / (1 + 0.3275911 * z);
  const poly =
    t * (0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429))));
  const erf = 1 - poly * Math.exp(-z * z);
  return x >= 0 ? (1 + erf) / 2 : (1 - erf) / 2;
}

function round3(x: number): number {
  return Math.round(x * 1000) / 1000;
}
