import type { CgroupShare, Profile } from "../observe/types.ts";
import type { Manifest, Tunables, TunableValue } from "../policies/types.ts";
import type { ChosenPolicy } from "./types.ts";

// The small set of policy variants the planner weighs for one profile: the kernel default plus
// the catalogue's policies meant for the profile's class, with tunables filled in from what the
// profile shows (which cgroup to favour, which order to try).

export interface Candidate {
  key: string;
  policy: ChosenPolicy;
  cgroup?: string;
  /** Expected log(KPI ratio) before any outcome (negative: expected to beat the default). */
  priorLogRatio: number;
}

export const DEFAULT_KEY = "default";
const MAX_ENUM_VARIANTS = 3;
/** Names a unit that serves requests (the thing a host exists for) rather than batch work. */
const SERVICE_HINT = /(service|api|web|http|db|sql|server|front|interactive|session|app|game)/i;

export function defaultCandidate(): Candidate {
  return { key: DEFAULT_KEY, policy: { kind: "default" }, priorLogRatio: 0 };
}

/** A stable key for a policy variant: equal keys mean the same thing was deployed. */
export function policyKey(policy: ChosenPolicy): string {
  if (policy.kind === "default") return DEFAULT_KEY;
  const tunables = Object.keys(policy.tunables)
    .sort()
    .map((k) => `${k}=${JSON.stringify(policy.tunables[k])}`)
    .join("&");
  const base = `${policy.origin}:${policy.name}${tunables ? `?${tunables}` : ""}`;
  return policy.sourceHash ? `${base}@${policy.sourceHash.slice(0, 16)}` : base;
}

export function candidatesFor(profile: Profile, catalogue: readonly Manifest[], limit: number): Candidate[] {
  const fitting = catalogue
    .map((manifest) => ({ manifest, rank: manifest.workloads.indexOf(profile.class) }))
    .filter((m) => m.rank >= 0)
    .sort((a, b) => a.rank - b.rank || a.manifest.name.localeCompare(b.manifest.name));
  const out: Candidate[] = [];
  for (const { manifest, rank } of fitting) {
    // A policy made first for this class is a better bet than one that merely tolerates it.
    const prior = rank === 0 ? -0.1 : -0.05;
    for (const variant of variantsOf(manifest, profile)) {
      const policy: ChosenPolicy = {
        kind: "policy",
        origin: manifest.origin,
        name: manifest.name,
        tunables: variant.tunables,
      };
      out.push({
        key: policyKey(policy),
        policy,
        priorLogRatio: prior,
        ...(variant.cgroup && { cgroup: variant.cgroup }),
      });
    }
  }
  return [defaultCandidate(), ...out.slice(0, limit)];
}

function variantsOf(manifest: Manifest, profile: Profile): { tunables: Tunables; cgroup?: string }[] {
  const base: Tunables = {};
  let cgroup: string | undefined;
  let expand: { name: string; options: string[] } | undefined;
  for (const [name, spec] of Object.entries(manifest.tunables)) {
    if (spec.type === "cgroups") {
      const target = targetCgroup(profile);
      if (!target) return []; // a cgroup policy with no cgroup to favour has nothing to do
      base[name] = [target];
      cgroup = target;
    } else if (spec.type === "enum" && !expand) {
      expand = { name, options: spec.options.slice(0, MAX_ENUM_VARIANTS) };
    } else {
      base[name] = spec.default as TunableValue;
    }
  }
  const withCgroup = (tunables: Tunables) => (cgroup ? { tunables, cgroup } : { tunables });
  if (!expand) return [withCgroup(base)];
  const { name, options } = expand;
  return options.map((option) => withCgroup({ ...base, [name]: option }));
}

/**
 * The cgroup whose work the host most likely exists for: under contention, a unit named like a
 * service that waits for CPU; otherwise, for throughput work, the busiest one.
 */
export function targetCgroup(profile: Profile): string | undefined {
  const units = profile.topCgroups.filter((c) => c.path !== "/" && c.tasks > 0);
  if (units.length === 0) return undefined;
  const score =
    profile.class === "throughput"
      ? (c: CgroupShare) => c.cpuShare
      : (c: CgroupShare) =>
          2 * c.psiCpuSome + (SERVICE_HINT.test(leafName(c.path)) ? 0.5 : 0) - 0.5 * c.cpuShare;
  return [...units].sort((a, b) => score(b) - score(a) || a.path.localeCompare(b.path))[0]?.path;
}

function leafName(path: string): string {
  return path.slice(path.lastIndexOf("/") + 1);
}
