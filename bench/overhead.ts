// What sampling costs on a host with 1,000 cgroups: a generated cgroup2 tree (root, 9 slices,
// 90 services, 900 leaves) and /proc files under a temporary host root, changed between samples
// the way a busy host changes them. This process plays the kernel (writes the files); a child
// process, running the compiled JavaScript the package ships with the packaged daemon's node
// flags, only samples and reports its own CPU time per sample and its memory, so neither the
// writing nor Node's TypeScript loader counts.
//   npm run bench:overhead
import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { writeCgroup, writeProcess, writeSystem } from "../test/helpers/proc-tree.ts";

const SAMPLES = 100;
const WARMUP = 50;
const ACTIVE_LEAVES = 45; // 5% of the leaves busy in any one sample

await main();

async function main(): Promise<void> {
  const base = existsSync("/dev/shm") ? "/dev/shm" : tmpdir();
  const root = mkdtempSync(join(base, "schedctl-overhead-"));
  const child = startSampler(root);
  try {
    await measureAll(root, child);
  } finally {
    child.process.kill();
    rmSync(root, { recursive: true, force: true });
  }
}

/** The V8 flags the packaged daemon starts with (its wrapper's exec line), so memory compares. */
function daemonNodeFlags(repo: string): string[] {
  const wrapper = readFileSync(join(repo, "debian/wrappers/schedctld"), "utf8");
  const exec = wrapper.split("\n").find((line) => line.startsWith("exec "));
  if (!exec) throw new Error("debian/wrappers/schedctld: no exec line to read the daemon's node flags from");
  return exec.split(/\s+/).filter((word) => word.startsWith("--"));
}

interface Sampler {
  process: ChildProcess;
  ask(command: string): Promise<string>;
}

/** Starts the sampling child from compiled JavaScript when the project compiles, else from source. */
function startSampler(root: string): Sampler {
  const repo = join(import.meta.dirname, "..");
  const out = join(repo, ".cache/bench-overhead");
  rmSync(out, { recursive: true, force: true });
  // Other parts of the tree may not type-check at every moment; tsc still emits, which is enough.
  spawnSync(join(repo, "node_modules/.bin/tsc"), ["-p", join(repo, "tsconfig.json"), "--outDir", out], {
    stdio: "ignore",
  });
  let entry = join(out, "bench/overhead-sampler.js");
  if (!existsSync(entry)) {
    console.log("(could not compile the project: the sampler runs under the TypeScript loader)");
    entry = join(import.meta.dirname, "overhead-sampler.ts");
  }
  const child = spawn(process.execPath, [...daemonNodeFlags(repo), entry, root], {
    stdio: ["pipe", "pipe", "inherit"],
  });
  const lines = createInterface({ input: child.stdout! })[Symbol.asyncIterator]();
  return {
    process: child,
    async ask(command) {
      child.stdin!.write(`${command}\n`);
      const { value, done } = await lines.next();
      if (done) throw new Error("the sampler child exited");
      return value;
    },
  };
}

async function measureAll(root: string, sampler: Sampler): Promise<void> {
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
  const depth = (p: string) => (p === "/" ? 0 : p.split("/").length - 1);
  /** nr_descendants of each cgroup, as the kernel keeps it in cgroup.stat. */
  const descendants = [999, 110, 10, 0];
  const writeOne = (p: string) =>
    writeCgroup(root, p, {
      usage: usage.get(p)!,
      memory: 1 << 20,
      threads: 2,
      descendants: descendants[depth(p)]!,
    });
  for (const p of paths) writeOne(p);
  const system = {
    busy: [0, 0],
    idle: [0, 0],
    ctxt: 0,
    forks: 0,
    running: 2,
    blocked: 0,
    psi: { cpu: 0, io: 0, memory: 0 },
    schedstat: [
      { runNs: 0, delayNs: 0, slices: 0 },
      { runNs: 0, delayNs: 0, slices: 0 },
    ],
  };
  writeSystem(root, system);
  for (let pid = 100; pid < 200; pid++) writeProcess(root, pid, `worker${pid}`, 0);

  /** Moves the counters of the active leaves and their ancestors, as the kernel would. */
  const work = (k: number, active: string[]) => {
    const touched = new Set<string>();
    for (const leaf of active) {
      let p = leaf;
      while (true) {
        usage.set(p, usage.get(p)! + 5000 + k);
        touched.add(p);
        if (p === "/") break;
        const cut = p.lastIndexOf("/");
        p = cut === 0 ? "/" : p.slice(0, cut);
      }
    }
    for (const p of touched) writeOne(p);
    system.busy = system.busy.map((b) => b + 60);
    system.idle = system.idle.map((i) => i + 40);
    system.ctxt += 3000;
    system.forks += 5;
    for (const c of system.schedstat) {
      c.runNs += 6e8;
      c.delayNs += 3e7;
      c.slices += 400;
    }
    writeSystem(root, system);
    for (let pid = 100; pid < 110; pid++) writeProcess(root, pid, `worker${pid}`, k * (pid - 99));
  };

  const sample = async () => {
    const [cpuUs, listed] = (await sampler.ask("sample")).split(" ").map(Number);
    return { cpuUs: cpuUs!, listed: listed! };
  };
  const measure = async (label: string, pick: (k: number) => string[]) => {
    let cpuUs = 0;
    let listed = 0;
    for (let k = 0; k < SAMPLES; k++) {
      work(k, pick(k));
      const one = await sample();
      cpuUs += one.cpuUs;
      listed += one.listed;
    }
    const perSample = cpuUs / SAMPLES / 1000;
    console.log(
      `${label.padEnd(34)} ${perSample.toFixed(2).padStart(7)} ms/sample   ${(listed / SAMPLES).toFixed(0).padStart(5)} cgroups listed/sample`,
    );
    return perSample;
  };

  const baseline = Number(await sampler.ask("rss"));
  const first = await sample();
  console.log(`cgroups in the tree: ${await sampler.ask("cgroups")}`);
  console.log(`${"first (full) sample".padEnd(34)} ${(first.cpuUs / 1000).toFixed(2).padStart(7)} ms`);
  // Warm up the JIT so the figures are the steady state a long-running daemon sees.
  for (let k = 0; k < WARMUP; k++) {
    work(k, leaves.slice(0, ACTIVE_LEAVES));
    await sample();
  }
  const typical = await measure(`${ACTIVE_LEAVES} busy leaves (5%), rotating`, (k) =>
    Array.from({ length: ACTIVE_LEAVES }, (_, i) => leaves[(k * 7 + i * 20) % leaves.length]!),
  );
  const rssMb = Number(await sampler.ask("rss"));
  const allBusy = await measure("every cgroup busy (worst case)", () => leaves);
  const idle = await measure("idle host (only the root moves)", () => []);
  const peak = Number(await sampler.ask("peak"));
  console.log(
    `sampler memory: rss ${rssMb.toFixed(1)} MB after the typical stretch (Node alone with the modules loaded: ${baseline.toFixed(1)} MB), peak ${peak.toFixed(1)} MB`,
  );
  console.log(
    `worst/typical ${(allBusy / typical).toFixed(1)}x, idle/typical ${(idle / typical).toFixed(2)}x`,
  );
  console.log(
    `overhead: cpu_ms_per_sample=${typical.toFixed(2)} rss_mb=${rssMb.toFixed(1)} cgroups=${await sampler.ask("cgroups")}`,
  );
}
