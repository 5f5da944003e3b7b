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
  // A service kept waiting for CPU is what the host exists for, whatever the busiest unit does:
  // its phase is weighed as a latency phase (the service's wake-ups against the rest), and every
  // candidate is judged on the service's own KPIs.
  const service = profile.class === "idle" ? undefined : serviceTarget(profile);
  const workload = service ? "latency" : profile.class;
  const fitting = catalogue
    .map((manifest) => ({ manifest, rank: manifest.workloads.indexOf(workload) }))
    .filter((m) => m.rank >= 0)
    .sort((a, b) => a.rank - b.rank || a.manifest.name.localeCompare(b.manifest.name));
  const out: Candidate[] = [];
  for (const { manifest, rank } of fitting) {
    // A policy made first for this class is a better bet than one that merely tolerates it.
    const prior = rank === 0 ? -0.1 : -0.05;
    for (const variant of variantsOf(manifest, profile)) {
      const cgroup = variant.cgroup ?? service;
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
        ...(cgroup && { cgroup }),
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
  const service = profile.class === "idle" ? undefined : serviceTarget(profile);
  if (service) return service;
  const units = profile.topCgroups.filter((c) => c.path !== "/" && hasWork(c));
  if (units.length === 0) return undefined;
  const score =
    profile.class === "throughput"
      ? (c: CgroupShare) => c.cpuShare
      : (c: CgroupShare) =>
          2 * c.psiCpuSome + (SERVICE_HINT.test(leafName(c.path)) ? 0.5 : 0) - 0.5 * c.cpuShare;
  return [...units].sort((a, b) => score(b) - score(a) || a.path.localeCompare(b.path))[0]?.path;
}

/**
 * A unit's CPU pressure (0..1) from which it counts as kept waiting. Measured in the sched_ext
 * VM: the day's service under hogs or beside a build waits 16-40% of the time; a cron job
 * beside a batch waits less.
 */
const SERVICE_MIN_PSI = 0.12;
/** A unit using more of the CPU than this is itself the load, not a service waiting for it. */
const SERVICE_MAX_SHARE = 0.8;

/**
 * The service the host exists for, when one competes for CPU: a unit under system.slice (or one
 * named like a server), not a batch unit, waiting for CPU, and not itself the hog. The one that
 * waits most wins.
 */
export function serviceTarget(profile: Profile): string | undefined {
  const services = profile.topCgroups.filter(
    (c) =>
      c.path !== "/" &&
      hasWork(c) &&
      isServiceUnit(c.path) &&
      c.psiCpuSome >= SERVICE_MIN_PSI &&
      c.cpuShare <= SERVICE_MAX_SHARE,
  );
  return [...services].sort((a, b) => b.psiCpuSome - a.psiCpuSome || a.path.localeCompare(b.path))[0]?.path;
}

/** The thread count is read only every few samples (0 in between): CPU use says as much. */
function hasWork(c: CgroupShare): boolean {
  return c.tasks > 0 || c.cpuShare > 0;
}

/** A unit that serves requests (system.slice/*.service, or named like a server), not a batch unit. */
export function isServiceUnit(path: string): boolean {
  if (/(^|\/)batch\.slice(\/|$)/.test(path)) return false;
  const leaf = leafName(path);
  if (/^\/system\.slice\/.+\.service$/.test(path)) return true;
  return SERVICE_HINT.test(leaf.replace(/\.(service|scope|slice)$/, ""));
}

/** A unit's share of the CPU from which it counts as part of the work a phase is made of. */
const WORKLOAD_MIN_SHARE = 0.02;
const WORKLOAD_MAX_UNITS = 3;

/**
 * Who does the work, for remembering what worked: the units (leaf cgroups) with a share of the
 * CPU, their run-specific parts blurred. Stabler than the signature, whose feature levels and
 * class can land differently on two sights of the same work (the first windows of a phase are
 * noisy, and the scheduler in place moves them); a phase with no unit at work is its class.
 */
export function workloadKey(profile: Profile): string {
  const units = workUnits(profile);
  return units.length > 0 ? `units:${units.join(",")}` : `class:${profile.class}`;
}

/** The units at work in a profile (leaf cgroups with at least `minShare` of the CPU), names blurred, sorted. */
export function workUnits(profile: Profile, minShare = WORKLOAD_MIN_SHARE): string[] {
  const busy = profile.topCgroups
    .filter((c) => c.path !== "/" && c.cpuShare >= minShare)
    .sort((a, b) => b.cpuShare - a.cpuShare);
  const leaves = busy.filter((c) => !busy.some((o) => o.path.startsWith(`${c.path}/`)));
  return [...new Set(leaves.slice(0, WORKLOAD_MAX_UNITS).map((c) => blurUnit(c.path)))].sort();
}

/** cgroups are watched and none of them is at work (the CPU went to the kernel, or to us). */
export function noUnitAtWork(profile: Profile): boolean {
  return (
    !profile.lacks.includes("cgroup2") && !profile.topCgroups.some((c) => c.path !== "/" && c.cpuShare > 0)
  );
}

/** Run-specific parts of a unit's name (session-3.scope, container ids) made equal. */
function blurUnit(path: string): string {
  return path.replace(/[0-9a-f]{12,}/g, "*").replace(/[0-9]+/g, "#");
}

function leafName(path: string): string {
  return path.slice(path.lastIndexOf("/") + 1);
}
