import type { Features, WorkloadClass } from "./types.ts";

// The class label of a phase, from its mean features. Each class has an entry test and a looser
// test to stay in it, so a phase hovering at a threshold keeps its label (hysteresis).

interface ClassRule {
  name: Exclude<WorkloadClass, "mixed">;
  /** `slack` scales the thresholds: 1 to enter, STAY to remain. */
  test(f: Features, slack: number): boolean;
}

/** Thresholds are loosened by this factor for the class a phase already has. */
const STAY = 0.75;

const RULES: ClassRule[] = [
  { name: "memory", test: (f, s) => f.psi_memory_some >= 0.1 * s },
  {
    name: "io",
    test: (f, s) => (f.psi_io_some >= 0.2 * s || f.blocked_per_cpu >= 0.5 * s) && f.cpu_util < 0.7 / s,
  },
  {
    name: "latency",
    test: (f, s) => f.ctxsw_per_sec_per_cpu >= 2000 * s && f.cpu_util < 0.6 / s && f.forks_per_sec < 50 / s,
  },
  { name: "throughput", test: (f, s) => f.cpu_util >= 0.6 * s },
  {
    name: "idle",
    test: (f, s) => f.cpu_util < 0.1 / s && f.psi_io_some < 0.05 / s && f.psi_memory_some < 0.05 / s,
  },
];

export function classify(features: Features, previous?: WorkloadClass): WorkloadClass {
  const kept = RULES.find((r) => r.name === previous);
  if (
    kept?.test(features, STAY) &&
    !RULES.some((r) => r !== kept && outranks(r, kept) && r.test(features, 1))
  )
    return kept.name;
  return RULES.find((r) => r.test(features, 1))?.name ?? "mixed";
}

/** Rules earlier in the list win (memory and io stalls say more than CPU use). */
function outranks(a: ClassRule, b: ClassRule): boolean {
  return RULES.indexOf(a) < RULES.indexOf(b);
}
