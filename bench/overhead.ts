// What sampling costs on a host with 1,000 cgroups: a generated cgroup2 tree (root, 9 slices,
// 90 services, 900 leaves) and /proc files under a temporary host root, changed between samples
// the way a busy host changes them. Only the sampler's own CPU time is counted.
//   npm run bench:overhead
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ManualClock } from "../src/host/clock.ts";
import { createHost } from "../src/host/host.ts";
import { createMemoryLogger } from "../src/log/logger.ts";
import { ObservePipeline } from "../src/observe/pipeline.ts";
import { HostSampler } from "../src/observe/sampler.ts";
import { writeCgroup, writeProcess, writeSystem } from "../test/helpers/proc-tree.ts";

const SAMPLES = 200;
const ACTIVE_LEAVES = 45; // 5% of the leaves busy in any one sample

const base = existsShm() ? "/dev/shm" : tmpdir();
const root = mkdtempSync(join(base, "schedctl-overhead-"));
try {
  const paths: string[] = ["/"];
  const leaves: string[] = [];
  for (let a = 0; a < 9; a++) {
    paths.push(`/slice${a}.slice`);
    for (let b = 0; b < 10; b++) {
      paths.push(`/slice${a}.slice/svc${b}.service`);
      for (let c = 0; c < 10; c++) {
        const leaf = `/slice${a}.slice/svc${b}.service/task${c}`;
        paths.push(leaf);
        leaves.push(leaf);
      }
    }
  }
  const usage = new Map(paths.map((p) => [p, 1000]));
  /** nr_descendants of each cgroup, as the kernel keeps it in cgroup.stat. */
  const descendants = (p: string) =>
    p === "/" ? 999 : p.split("/").length === 2 ? 110 : p.split("/").length === 3 ? 10 : 0;
  const writeOne = (p: string) =>
    writeCgroup(root, p, { usage: usage.get(p)!, memory: 1 << 20, threads: 2, descendants: descendants(p) });
  for (const p of paths) writeOne(p);
  const system = {
    busy: [0, 0],
    idle: [0, 0],
    ctxt: 0,
    forks: 0,
    running: 2,
    blocked: 0,
    psi: { cpu: 0, io: 0, memory: 0 },
  };
  writeSystem(root, system);
  for (let pid = 100; pid < 200; pid++) writeProcess(root, pid, `worker${pid}`, 0);

  const clock = new ManualClock(Date.now());
  const sampler = new HostSampler(
    createHost(root),
    { cgroupRoots: ["/"], cgroupMaxDepth: 8, topProcesses: 10 },
    clock,
    createMemoryLogger(),
  );
  const pipeline = new ObservePipeline({
    window: { topCgroups: 5, topProcesses: 10 },
    detect: { threshold: 4, tolerance: 1, minDwell: 5, confirm: 2 },
  });

  /** Moves the counters of `active` leaves and their ancestors, as the kernel would. */
  const work = (k: number, active: string[]) => {
    for (const leaf of active) {
      let p = leaf;
      while (true) {
        usage.set(p, usage.get(p)! + 5000 + k);
        if (p === "/") break;
        const cut = p.lastIndexOf("/");
        p = cut === 0 ? "/" : p.slice(0, cut);
      }
    }
    const touched = new Set<string>(["/"]);
    for (const leaf of active) {
      let p = leaf;
      while (p !== "/") {
        touched.add(p);
        const cut = p.lastIndexOf("/");
        p = cut === 0 ? "/" : p.slice(0, cut);
      }
    }
    for (const p of touched) writeOne(p);
    system.busy = system.busy.map((b) => b + 60);
    system.idle = system.idle.map((i) => i + 40);
    system.ctxt += 3000;
    system.forks += 5;
    writeSystem(root, system);
    for (let pid = 100; pid < 110; pid++) writeProcess(root, pid, `worker${pid}`, k * (pid - 99));
  };

  const measure = (label: string, pick: (k: number) => string[]) => {
    let cpuUs = 0;
    let changed = 0;
    for (let k = 0; k < SAMPLES; k++) {
      work(k, pick(k));
      clock.advance(1000);
      const before = process.cpuUsage();
      const sample = sampler.next();
      pipeline.push(sample);
      const used = process.cpuUsage(before);
      cpuUs += used.user + used.system;
      changed += sample.cgroups.length;
    }
    const perSample = cpuUs / SAMPLES / 1000;
    console.log(
      `${label.padEnd(34)} ${perSample.toFixed(2).padStart(7)} ms/sample   ${(changed / SAMPLES).toFixed(0).padStart(5)} cgroups listed/sample`,
    );
    return perSample;
  };

  const first = process.cpuUsage();
  sampler.next();
  const firstUsage = process.cpuUsage(first);
  console.log(`cgroups in the tree: ${sampler.cgroupCount}`);
  console.log(
    `${"first (full) sample".padEnd(34)} ${((firstUsage.user + firstUsage.system) / 1000).toFixed(2).padStart(7)} ms`,
  );
  // Warm up the JIT so the figures are the steady state a long-running daemon sees.
  for (let k = 0; k < 50; k++) {
    work(k, leaves.slice(0, ACTIVE_LEAVES));
    clock.advance(1000);
    pipeline.push(sampler.next());
  }
  const typical = measure(`${ACTIVE_LEAVES} busy leaves (5%), rotating`, (k) =>
    Array.from({ length: ACTIVE_LEAVES }, (_, i) => leaves[(k * 7 + i * 20) % leaves.length]!),
  );
  const allBusy = measure("every cgroup busy (worst case)", () => leaves);
  const idle = measure("idle host (only the root moves)", () => []);
  const rssMb = process.memoryUsage().rss / 2 ** 20;
  console.log(
    `worst/typical ${(allBusy / typical).toFixed(1)}x, idle/typical ${(idle / typical).toFixed(2)}x`,
  );
  console.log(
    `overhead: cpu_ms_per_sample=${typical.toFixed(2)} rss_mb=${rssMb.toFixed(1)} cgroups=${sampler.cgroupCount}`,
  );
  sampler.close();
} finally {
  rmSync(root, { recursive: true, force: true });
}

function existsShm(): boolean {
  try {
    return createHost("/").exists("/dev/shm");
  } catch {
    return false;
  }
}
