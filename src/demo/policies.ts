import { createHash } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { candidatesFor } from "../decide/candidates.ts";
import type { Profile, WorkloadClass } from "../observe/types.ts";
import { builtinCatalogue } from "../policies/catalogue.ts";
import { PolicyCompiler } from "../policies/compile.ts";
import { ensureSandboxKernel } from "../sandbox/kernel-image.ts";
import type { Sandbox, VmFile } from "../sandbox/types.ts";
import { GUEST_CACHE } from "./daemon.ts";
import { cgroupSetup } from "./guest.ts";

// The policies the daemon in the guest may deploy. The guest has bpftool, the kernel's verifier
// and Node but no clang, so every variant the planner can weigh for the day's units is compiled
// here, for the guest's cgroup ids, into the guest's compile cache: the daemon's compiler finds
// each by its content hash as it finds its own earlier builds, and everything after compiling
// (static rules, the kernel verifier, probation, rollback) runs in the guest for real.

/** Every cgroup the day makes, parents included (a slice can be among the busiest cgroups). */
export function dayCgroups(units: readonly string[]): string[] {
  const paths = new Set<string>();
  for (const unit of units) {
    const parts = unit.split("/");
    for (let i = 1; i <= parts.length; i++) paths.add(`/${parts.slice(0, i).join("/")}`);
  }
  return [...paths];
}

/** The cgroup ids a fresh guest gives the day's cgroups: one short probe boot, cached per kernel. */
export async function guestCgroupIds(
  sandbox: Sandbox,
  cacheDir: string,
  units: readonly string[],
): Promise<Record<string, string>> {
  const kernel = await ensureSandboxKernel({ cacheDir });
  const setup = cgroupSetup(units);
  const report = dayCgroups(units)
    .map((path) => `echo "CGID ${path} $(stat -c %i /sys/fs/cgroup${path})"`)
    .join("\n");
  const key = createHash("sha256").update(kernel.version).update(setup).update(report).digest("hex");
  const cached = join(cacheDir, "demo", `cgroup-ids-${key.slice(0, 16)}.json`);
  if (existsSync(cached)) return JSON.parse(readFileSync(cached, "utf8")) as Record<string, string>;
  const run = await sandbox.run({ node: false, timeoutMs: 180_000, script: `${setup}\n${report}\n` });
  const ids: Record<string, string> = {};
  for (const m of run.console.matchAll(/^CGID (\S+) (\d+)\s*$/gm)) ids[m[1]!] = m[2]!;
  if (Object.keys(ids).length !== dayCgroups(units).length)
    throw new Error(`the probe boot did not report every cgroup id:\n${run.console.slice(-2000)}`);
  mkdirSync(dirname(cached), { recursive: true });
  writeFileSync(cached, JSON.stringify(ids));
  return ids;
}

/** Compiles the variants the planner can weigh for a phase of any class led by any of the day's cgroups. */
export async function prebuildForGuest(
  cacheDir: string,
  buildDir: string,
  ids: Record<string, string>,
  units: readonly string[],
): Promise<VmFile[]> {
  const kernel = await ensureSandboxKernel({ cacheDir });
  const compiler = new PolicyCompiler({
    cacheDir: buildDir,
    vmlinuxH: kernel.vmlinuxH,
    resolveCgroupId: (path) => {
      const id = ids[path];
      if (id === undefined) throw new Error(`no guest cgroup id for ${path}`);
      return BigInt(id);
    },
  });
  const catalogue = builtinCatalogue();
  const files = new Map<string, VmFile>();
  for (const profile of probeProfiles(units)) {
    for (const candidate of candidatesFor(
      profile,
      catalogue.map((p) => p.manifest),
      16,
    )) {
      const policy = candidate.policy;
      if (policy.kind !== "policy") continue;
      const source = catalogue.find((p) => p.manifest.name === policy.name);
      if (!source) continue;
      const built = await compiler.compile(source, policy.tunables);
      files.set(built.ref.hash, {
        hostPath: built.objectPath,
        guestPath: `${GUEST_CACHE}/objects/${built.ref.hash}.bpf.o`,
      });
    }
  }
  return [...files.values()];
}

function probeProfiles(units: readonly string[]): Profile[] {
  const classes: WorkloadClass[] = ["latency", "throughput", "mixed", "idle", "io", "memory"];
  return classes.flatMap((cls) =>
    dayCgroups(units).map((path) => ({
      at: 0,
      windowMs: 1000,
      features: {} as Profile["features"],
      class: cls,
      signature: `probe-${cls}`,
      topCgroups: [{ path, cpuShare: 0.5, psiCpuSome: 0.5, tasks: 2 }],
      topProcesses: [],
      lacks: [],
    })),
  );
}
