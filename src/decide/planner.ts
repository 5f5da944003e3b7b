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
  /** Posterior draws used to estimate each candidate's chance of being the best. */
  draws?: number;
}

export interface LocalPlan {
  chosen: Candidate;
  /** The chosen candidate's share of posterior draws it wins (its chance of being the best). */
  confidence: number;
  summaries: CandidateSummary[];
  rationale: string;
}

/** Spread of one outcome's log ratio: the VM's run-to-run noise is about +-35%. */
const OBSERVATION_SD = 0.35;
/** Pseudo-outcomes the prior is worth. */
const PRIOR_WEIGHT = 2;
/** A failed or rolled-back probation counts as at least this bad. */
const FAILED_LOG_RATIO = Math.log(1.3);
/** On an idle phase a policy must be known to beat the default by this much to replace it. */
const IDLE_MARGIN = Math.log(1 / 0.95);

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
  const posteriors = candidates.map((c) => posterior(c, profile, ownOutcomes, classOutcomes, options));
  const eligible = posteriors.filter((p) => !p.excluded);
  const idle = profile.class === "idle";
  // On idle, no exploration: a policy replaces the default only on evidence, never on hope.
  const draw = (p: Posterior) => (idle || p.sd === 0 ? p.mean : p.mean + p.sd * gaussian(options.random));
  const idleFloor = (p: Posterior) =>
    p.candidate.key === DEFAULT_KEY || !idle || (p.evidence > 0 && p.mean < -IDLE_MARGIN);
  const pool = eligible.filter(idleFloor);
  // One draw per candidate per round; the lowest draw wins the round.
  const pickFrom = () => {
    let best = pool[0]!;
    let bestDraw = draw(best);
    for (const p of pool.slice(1)) {
      const d = draw(p);
      if (d < bestDraw) [best, bestDraw] = [p, d];
    }
    return best;
  };
  const chosen = pickFrom();
  const draws = options.draws ?? 256;
  const wins = new Map<string, number>();
  for (let i = 0; i < draws; i++) {
    const winner = pickFrom().candidate.key;
    wins.set(winner, (wins.get(winner) ?? 0) + 1);
  }
  const share = (key: string) => (wins.get(key) ?? 0) / draws;
  const summaries: CandidateSummary[] = posteriors.map((p) => ({
    key: p.candidate.key,
    policy: p.candidate.policy,
    expectedLogRatio: round(p.mean),
    evidence: round(p.evidence),
    winShare: share(p.candidate.key),
    ...(p.excluded && { excluded: p.excluded }),
  }));
  const confidence = share(chosen.candidate.key);
  return {
    chosen: chosen.candidate,
    confidence,
    summaries,
    rationale: explain(profile, chosen, confidence, posteriors),
  };
}

function posterior(
  candidate: Candidate,
  profile: Profile,
  own: readonly Outcome[],
  classWide: readonly Outcome[],
  options: PlannerOptions,
): Posterior {
  if (candidate.key === DEFAULT_KEY) return { candidate, mean: 0, sd: 0, evidence: 0 };
  const mine = own.filter((o) => policyKey(o.policy) === candidate.key);
  const failures = mine.filter((o) => !o.passed || o.rolledBack).length;
  let excluded: string | undefined;
  if (mine.some((o) => o.quarantined)) excluded = "quarantined for this signature";
  else if (failures >= options.quarantineAfter)
    excluded = `failed probation ${failures} times on this signature`;
  const others = classWide.filter(
    (o) => o.signature !== profile.signature && policyKey(o.policy) === candidate.key,
  );
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
      : `picked ${chosen.candidate.key}: expected KPI ratio ${Math.exp(chosen.mean).toFixed(2)} from ${round(chosen.evidence)} weighted outcome(s)`;
  const skipped = excluded.length > 0 ? `; excluded ${excluded.join(", ")}` : "";
  return `planner: ${profile.class} phase; ${what}; best in ${Math.round(confidence * 100)}% of posterior draws among ${all.length} candidate(s)${skipped}`;
}

function round(x: number): number {
  return Math.round(x * 1000) / 1000;
}
