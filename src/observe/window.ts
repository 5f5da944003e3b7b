import { counterDelta, fraction, optionalDelta } from "./rates.ts";
import type { CgroupSample, CgroupShare, Features, ProcessHint, Profile, Sample } from "./types.ts";

/** A Profile before the phase tracker names its class and signature. */
export type Window = Omit<Profile, "class" | "signature">;

export interface WindowOptions {
  /** How many of the busiest cgroups a window keeps. */
  topCgroups: number;
  /** How many of the busiest processes a window keeps. */
  topProcesses: number;
}

/**
 * The denominator of a cgroup's CPU share is the CPU time used in the window, but never less than
 * this fraction of capacity: on a nearly idle host one cgroup's crumbs are not "dominance".
 */
const SHARE_FLOOR = 0.05;

/**
 * Turns consecutive Samples into Windows (rates and features). It remembers the last counters
 * of every cgroup, because a Sample lists only the cgroups whose counters moved.
 */
export class WindowBuilder {
  readonly #options: WindowOptions;
  readonly #cgroups = new Map<string, CgroupSample>();
  #prev: Sample | undefined;

  constructor(options: WindowOptions) {
    this.#options = options;
  }

  /** The window ending at `sample`; undefined for the first sample (or a time step backwards). */
  push(sample: Sample): Window | undefined {
    const prev = this.#prev;
    const previousCgroups = this.#takeCgroups(sample);
    if (!prev || sample.mono <= prev.mono) {
      this.#prev = sample;
      return undefined;
    }
    this.#prev = sample;
    return buildWindow(prev, sample, previousCgroups, this.#cgroups, this.#options);
  }

  /** Records the sample's cgroups; returns their counters as they were before it. */
  #takeCgroups(sample: Sample): Map<string, CgroupSample | undefined> {
    if (sample.full) {
      // A full listing replaces what was known: a cgroup absent from it no longer exists.
      const listed = new Set(sample.cgroups.map((c) => c.path));
      for (const path of this.#cgroups.keys()) if (!listed.has(path)) this.#cgroups.delete(path);
    }
    for (const path of sample.removed) this.#cgroups.delete(path);
    const before = new Map<string, CgroupSample | undefined>();
    for (const c of sample.cgroups) {
      const old = this.#cgroups.get(c.path);
      before.set(c.path, old);
      // Fields a reading skipped (the slow ones) keep their last values.
      this.#cgroups.set(c.path, old ? { ...old, ...c } : c);
    }
    return before;
  }
}

function buildWindow(
  prev: Sample,
  cur: Sample,
  before: Map<string, CgroupSample | undefined>,
  known: ReadonlyMap<string, CgroupSample>,
  options: WindowOptions,
): Window {
  const windowMs = cur.mono - prev.mono;
  const seconds = windowMs / 1000;
  const cpus = cur.cpus;
  const capacityUs = windowMs * 1000 * cpus;
  const lacks = new Set(cur.lacks);

  let cpuUtil = 0;
  let busyUs = 0;
  let ctxsw = 0;
  let forks = 0;
  let runnable = 0;
  let blocked = 0;
  if (prev.stat && cur.stat) {
    const busy = counterDelta(prev.stat.cpu.busy, cur.stat.cpu.busy);
    const idle =
      counterDelta(prev.stat.cpu.idle, cur.stat.cpu.idle) +
      counterDelta(prev.stat.cpu.iowait, cur.stat.cpu.iowait);
    cpuUtil = fraction(busy, busy + idle);
    busyUs = cpuUtil * capacityUs;
    ctxsw = counterDelta(prev.stat.ctxt, cur.stat.ctxt) / seconds / cpus;
    forks = counterDelta(prev.stat.forks, cur.stat.forks) / seconds;
    // Gauges, read at the window's end only (averaging with the previous end would make
    // neighbouring windows share noise); the sampler itself is one of the running tasks.
    runnable = Math.max(0, cur.stat.running - 1) / cpus;
    blocked = cur.stat.blocked / cpus;
  } else {
    lacks.add("stat");
  }

  let runDelay = 0;
  if (prev.schedstat && cur.schedstat && prev.schedstat.source === cur.schedstat.source) {
    const ranNs = counterDelta(prev.schedstat.runNs, cur.schedstat.runNs);
    const waitedNs = counterDelta(prev.schedstat.runDelayNs, cur.schedstat.runDelayNs);
    runDelay = ranNs > 0 ? waitedNs / ranNs : 0;
  }

  const windowUs = windowMs * 1000;
  const psi = (resource: "cpu" | "io" | "memory") => {
    const a = prev.psi?.[resource];
    const b = cur.psi?.[resource];
    if (!a || !b) return 0;
    return fraction(counterDelta(a.some.total, b.some.total, windowUs), windowUs);
  };

  const topCgroups = rankCgroups(cur, before, known, windowUs, capacityUs, busyUs, options.topCgroups);
  const features: Features = {
    cpu_util: cpuUtil,
    runnable_per_cpu: runnable,
    run_delay_per_cpu_time: runDelay,
    ctxsw_per_sec_per_cpu: ctxsw,
    psi_cpu_some: psi("cpu"),
    psi_io_some: psi("io"),
    psi_memory_some: psi("memory"),
    top_cgroup_share: topCgroups[0]?.cpuShare ?? 0,
    blocked_per_cpu: blocked,
    forks_per_sec: forks,
  };
  const tickUs = 1_000_000 / cur.hz;
  const shareBase = Math.max(busyUs, SHARE_FLOOR * capacityUs);
  const topProcesses: ProcessHint[] = cur.processes.slice(0, options.topProcesses).map((p) => ({
    pid: p.pid,
    comm: p.comm,
    cpuShare: fraction(p.intervalTicks * tickUs, shareBase),
  }));
  return { at: cur.at, windowMs, features, topCgroups, topProcesses, lacks: [...lacks].sort() };
}

/**
 * The busiest cgroups by their own CPU time (usage minus that of their sampled children), so a
 * parent slice does not outrank the service inside it. The cgroup2 root is left out: it holds
 * everything.
 */
function rankCgroups(
  cur: Sample,
  before: Map<string, CgroupSample | undefined>,
  known: ReadonlyMap<string, CgroupSample>,
  windowUs: number,
  capacityUs: number,
  busyUs: number,
  limit: number,
): CgroupShare[] {
  const used = new Map<string, number>();
  for (const c of cur.cgroups) {
    const old = before.get(c.path);
    // A cgroup first seen in a partial sample was born during the window: count from zero.
    const base = old ?? (cur.full ? undefined : { ...c, usageUs: 0 });
    if (!base) continue;
    used.set(c.path, counterDelta(base.usageUs, c.usageUs, capacityUs));
  }
  const own = new Map(used);
  for (const [path, value] of used) {
    const cut = path.lastIndexOf("/");
    const parent = cut <= 0 ? "/" : path.slice(0, cut);
    if (path !== "/" && own.has(parent)) own.set(parent, own.get(parent)! - value);
  }
  const shareBase = Math.max(busyUs > 0 ? busyUs : (used.get("/") ?? 0), SHARE_FLOOR * capacityUs);
  const ranked = [...own].filter(([path, value]) => path !== "/" && value > 0).sort((a, b) => b[1] - a[1]);
  return ranked.slice(0, limit).map(([path, value]) => {
    const c = cur.cgroups.find((x) => x.path === path)!;
    const old = before.get(path);
    const some = optionalDelta(old?.cpuSomeUs ?? (cur.full ? undefined : 0), c.cpuSomeUs, windowUs);
    const full = optionalDelta(old?.cpuFullUs ?? (cur.full ? undefined : 0), c.cpuFullUs, windowUs);
    return {
      path,
      cpuShare: fraction(Math.max(0, value), shareBase),
      psiCpuSome: fraction(some ?? 0, windowUs),
      ...(full !== undefined && { psiCpuFull: fraction(full, windowUs) }),
      tasks: known.get(path)?.tasks ?? 0,
    };
  });
}
