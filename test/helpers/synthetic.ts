import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { gzipSync } from "node:zlib";
import type { TraceLabels } from "../../src/observe/labels.ts";
import type { CgroupSample, Sample } from "../../src/observe/types.ts";

// Synthetic traces: raw Samples integrated from a phase model with seeded noise, so the detector's
// tests and benchmark have long labelled stretches that a live recording cannot give cheaply.
//   scripts/run node test/helpers/synthetic.ts   (rewrites the synthetic part of the corpus)

export interface PhaseModel {
  label: string;
  seconds: number;
  /** Mean busy fraction of all CPUs and its relative noise. */
  util: number;
  utilNoise?: number;
  /** Square-wave oscillation: busy alternates util +- swing every `period` seconds. */
  swing?: number;
  period?: number;
  running?: number;
  blocked?: number;
  ctxswPerCpu?: number;
  forks?: number;
  psiCpu?: number;
  psiIo?: number;
  psiMem?: number;
  /** Run delay per unit of run time. */
  runDelay?: number;
  /** Where the busy time goes: cgroup path -> fraction of busy time. */
  cgroups?: Record<string, number>;
  comm?: string;
}

export interface SyntheticSpec {
  cpus: number;
  intervalMs: number;
  /** Probability per sample of a one-sample spike (a cron job, a page-cache flush). */
  spikeRate: number;
  phases: PhaseModel[];
}

/** mulberry32: a small seeded PRNG, enough for test noise. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export function synthesize(spec: SyntheticSpec, seed: number): { samples: Sample[]; labels: TraceLabels } {
  const rand = prng(seed);
  const gauss = () => Math.sqrt(-2 * Math.log(1 - rand())) * Math.cos(2 * Math.PI * rand());
  const noisy = (mean: number, rel: number) => Math.max(0, mean * (1 + rel * gauss()));
  const start = Date.UTC(2026, 10, 1, 12, 0, 0);
  const dt = spec.intervalMs / 1000;
  const ticks = 100 * dt * spec.cpus;
  const perCpu = Array.from({ length: spec.cpus }, () => ({ busy: 1000, idle: 50_000, iowait: 10 }));
  const counters = { ctxt: 1e6, forks: 5000, cpuPsi: 0, ioPsi: 0, memPsi: 0, runNs: 1e12, delayNs: 1e10 };
  const cgroups = new Map<string, CgroupSample>();
  const cgroup = (path: string) => {
    let c = cgroups.get(path);
    if (!c) {
      c = { path, usageUs: 0, userUs: 0, systemUs: 0, cpuSomeUs: 0, ioSomeUs: 0, memSomeUs: 0, tasks: 1 };
      cgroups.set(path, c);
    }
    return c;
  };
  for (const path of ["/", "/system.slice", "/user.slice", "/system.slice/cron.service"]) cgroup(path);
  let pid = 3000;
  const samples: Sample[] = [];
  const phases: TraceLabels["phases"] = [];
  let step = 0;
  for (const phase of spec.phases) {
    phases.push({ start: start + step * spec.intervalMs + 1, label: phase.label });
    pid++;
    for (let s = 0; s < phase.seconds / dt; s++, step++) {
      const spike = rand() < spec.spikeRate;
      const square =
        phase.swing && phase.period ? (Math.floor((s * dt) / phase.period) % 2 ? -1 : 1) * phase.swing : 0;
      const util = Math.min(
        0.99,
        Math.max(0.005, noisy(phase.util + square, phase.utilNoise ?? 0.08) + (spike ? 0.4 : 0)),
      );
      const busyTicks = Math.round(util * ticks);
      perCpu.forEach((c, k) => {
        const share = Math.round(busyTicks / spec.cpus) + (k === 0 ? busyTicks % spec.cpus : 0);
        c.busy += share;
        c.idle += Math.max(0, Math.round(ticks / spec.cpus) - share);
      });
      counters.ctxt += Math.round(noisy((phase.ctxswPerCpu ?? 150) * spec.cpus * dt, 0.1) * (spike ? 3 : 1));
      counters.forks += Math.round(noisy((phase.forks ?? 1) * dt, 0.25) + (spike ? 20 : 0));
      const windowUs = spec.intervalMs * 1000;
      counters.cpuPsi += Math.round(Math.min(1, noisy(phase.psiCpu ?? 0.01, 0.2)) * windowUs);
      counters.ioPsi += Math.round(Math.min(1, noisy(phase.psiIo ?? 0.002, 0.3)) * windowUs);
      counters.memPsi += Math.round(Math.min(1, noisy(phase.psiMem ?? 0, 0.3)) * windowUs);
      const ranNs = busyTicks * 1e7;
      counters.runNs += ranNs;
      counters.delayNs += Math.round(ranNs * noisy(phase.runDelay ?? 0.02, 0.2));
      const busyUs = busyTicks * 1e4;
      const changed = new Set<string>(["/"]);
      const root = cgroup("/");
      root.usageUs += busyUs;
      root.cpuSomeUs! += Math.round((phase.psiCpu ?? 0.01) * windowUs);
      let assigned = 0;
      for (const [path, share] of Object.entries(phase.cgroups ?? {})) {
        const used = Math.round(busyUs * share);
        assigned += used;
        let p = path;
        while (p !== "") {
          cgroup(p).usageUs += used;
          changed.add(p);
          p = p.slice(0, p.lastIndexOf("/"));
        }
      }
      if (spike) {
        cgroup("/system.slice/cron.service").usageUs += Math.round(busyUs * 0.3);
        cgroup("/system.slice").usageUs += Math.round(busyUs * 0.3);
        changed.add("/system.slice/cron.service").add("/system.slice");
      }
      const rest = Math.max(0, busyUs - assigned);
      cgroup("/user.slice").usageUs += Math.round(rest * 0.5);
      changed.add("/user.slice");
      const at = start + (step + 1) * spec.intervalMs;
      samples.push({
        at,
        mono: (step + 1) * spec.intervalMs,
        cpus: spec.cpus,
        hz: 100,
        stat: {
          cpu: perCpu.reduce(
            (a, c) => ({ busy: a.busy + c.busy, idle: a.idle + c.idle, iowait: a.iowait + c.iowait }),
            {
              busy: 0,
              idle: 0,
              iowait: 0,
            },
          ),
          perCpu: perCpu.map((c) => ({ ...c })),
          ctxt: counters.ctxt,
          forks: counters.forks,
          running: Math.round(noisy((phase.running ?? 0.2) * spec.cpus + 1, 0.3)),
          blocked: Math.round(noisy((phase.blocked ?? 0) * spec.cpus, 0.4)),
        },
        loadavg: { load1: 0, load5: 0, load15: 0, runnable: 1, threads: 200 },
        psi: {
          cpu: { some: { avg10: 0, avg60: 0, total: counters.cpuPsi } },
          io: { some: { avg10: 0, avg60: 0, total: counters.ioPsi } },
          memory: { some: { avg10: 0, avg60: 0, total: counters.memPsi } },
        },
        schedstat: {
          source: "system",
          runDelayNs: counters.delayNs,
          runNs: counters.runNs,
          timeslices: step * 100,
        },
        cgroups: [...cgroups.values()]
          .filter((c) => step === 0 || changed.has(c.path))
          .map((c) => ({ ...c })),
        full: step === 0,
        removed: [],
        processes: phase.comm
          ? [
              {
                pid,
                comm: phase.comm,
                cpuTicks: step * 10,
                intervalTicks: Math.round(busyTicks * 0.5),
                start: 1000,
              },
            ]
          : [],
        lacks: [],
      });
    }
  }
  return { samples, labels: { source: "synthetic", phases, ignore: [] } };
}

const build = { "/system.slice/build.service": 0.9 };
const api = { "/system.slice/api.service": 0.8 };

/** The synthetic part of the corpus: name, description, spec, seed. */
export const SYNTHETIC_CORPUS: { name: string; description: string; spec: SyntheticSpec; seed: number }[] = [
  {
    name: "synth-build-service",
    description: "idle, a build, a latency-bound service, idle, the same build again, the service again",
    seed: 11,
    spec: {
      cpus: 4,
      intervalMs: 1000,
      spikeRate: 0.01,
      phases: [
        { label: "idle", seconds: 300, util: 0.03, utilNoise: 0.3 },
        {
          label: "build",
          seconds: 240,
          util: 0.92,
          utilNoise: 0.05,
          running: 2.5,
          forks: 120,
          cgroups: build,
          comm: "cc1",
        },
        {
          label: "service",
          seconds: 300,
          util: 0.35,
          running: 0.5,
          ctxswPerCpu: 6000,
          runDelay: 0.3,
          cgroups: api,
          comm: "api",
        },
        { label: "idle", seconds: 240, util: 0.03, utilNoise: 0.3 },
        {
          label: "build",
          seconds: 240,
          util: 0.92,
          utilNoise: 0.05,
          running: 2.5,
          forks: 120,
          cgroups: build,
          comm: "cc1",
        },
        {
          label: "service",
          seconds: 300,
          util: 0.35,
          running: 0.5,
          ctxswPerCpu: 6000,
          runDelay: 0.3,
          cgroups: api,
          comm: "api",
        },
      ],
    },
  },
  {
    name: "synth-io-memory",
    description: "a database scan (io stalls), memory pressure, a compute batch, io again",
    seed: 23,
    spec: {
      cpus: 8,
      intervalMs: 1000,
      spikeRate: 0.01,
      phases: [
        { label: "idle", seconds: 200, util: 0.04, utilNoise: 0.3 },
        {
          label: "io",
          seconds: 300,
          util: 0.2,
          psiIo: 0.35,
          blocked: 0.4,
          cgroups: { "/system.slice/db.service": 0.7 },
        },
        {
          label: "memory",
          seconds: 300,
          util: 0.3,
          psiMem: 0.25,
          psiIo: 0.1,
          cgroups: { "/batch.slice/etl.scope": 0.8 },
        },
        {
          label: "batch",
          seconds: 300,
          util: 0.85,
          running: 1.5,
          cgroups: { "/batch.slice/etl.scope": 0.9 },
        },
        {
          label: "io",
          seconds: 300,
          util: 0.2,
          psiIo: 0.35,
          blocked: 0.4,
          cgroups: { "/system.slice/db.service": 0.7 },
        },
      ],
    },
  },
  {
    name: "synth-oscillating",
    description: "a load that swings every 3 s for 20 minutes is one phase; then a steady compute phase",
    seed: 37,
    spec: {
      cpus: 4,
      intervalMs: 1000,
      spikeRate: 0.005,
      phases: [
        { label: "idle", seconds: 120, util: 0.03, utilNoise: 0.3 },
        {
          label: "oscillating",
          seconds: 1200,
          util: 0.45,
          swing: 0.3,
          period: 3,
          ctxswPerCpu: 800,
          cgroups: api,
        },
        { label: "compute", seconds: 600, util: 0.95, utilNoise: 0.03, running: 3, cgroups: build },
      ],
    },
  },
  {
    name: "synth-long-steady",
    description: "two long steady phases with everyday noise and spikes, to count false alarms per hour",
    seed: 41,
    spec: {
      cpus: 16,
      intervalMs: 1000,
      spikeRate: 0.02,
      phases: [
        {
          label: "web",
          seconds: 3600,
          util: 0.3,
          utilNoise: 0.15,
          ctxswPerCpu: 2500,
          forks: 3,
          cgroups: api,
        },
        { label: "batch", seconds: 3600, util: 0.7, utilNoise: 0.1, running: 1, forks: 10, cgroups: build },
      ],
    },
  },
];

if (import.meta.main) {
  const dir = join(import.meta.dirname, "../fixtures/traces");
  for (const { name, description, spec, seed } of SYNTHETIC_CORPUS) {
    const { samples, labels } = synthesize(spec, seed);
    const text = samples.map((s) => `${JSON.stringify(s)}\n`).join("");
    writeFileSync(join(dir, `${name}.jsonl.gz`), gzipSync(text, { level: 9 }));
    writeFileSync(
      join(dir, `${name}.labels.json`),
      `${JSON.stringify({ ...labels, description }, null, 1)}\n`,
    );
    console.log(`${name}: ${samples.length} samples`);
  }
}
