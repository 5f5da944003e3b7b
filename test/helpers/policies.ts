// Compiling policies for tests: the sandbox kernel's vmlinux.h (fetched and cached by
// src/sandbox/kernel-image.ts), objects cached under the suite's cache directory.
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { builtinCatalogue, type PolicySource } from "../../src/policies/catalogue.ts";
import { type CompiledPolicy, PolicyCompiler } from "../../src/policies/compile.ts";
import type { Manifest, Tunables } from "../../src/policies/types.ts";
import { defaultCacheDir, ensureSandboxKernel } from "../../src/sandbox/kernel-image.ts";

export const FIXTURES_BPF = join(import.meta.dirname, "..", "fixtures", "bpf");

/** In the guest every task starts in the root cgroup, whose id is always 1. */
export const GUEST_ROOT_CGROUP_ID = 1n;

export async function sandboxCompiler(
  cacheDir = join(defaultCacheDir(), "policies"),
): Promise<PolicyCompiler> {
  const kernel = await ensureSandboxKernel({ cacheDir: defaultCacheDir() });
  return new PolicyCompiler({
    cacheDir,
    vmlinuxH: kernel.vmlinuxH,
    resolveCgroupId: (path) => {
      if (path !== "/") throw new Error("only / exists in a fresh guest");
      return GUEST_ROOT_CGROUP_ID;
    },
  });
}

/** A test fixture under test/fixtures/bpf/ as a "generated" policy without tunables. */
export function fixturePolicy(file: string, workloads: Manifest["workloads"] = ["mixed"]): PolicySource {
  const name = file.replace(/\.bpf\.c$/, "");
  const manifest: Manifest = {
    name,
    origin: "generated",
    summary: `test fixture ${file}`,
    workloads,
    tunables: {},
    minKernel: "6.12",
  };
  const sourcePath = join(FIXTURES_BPF, file);
  return { manifest, source: readFileSync(sourcePath, "utf8"), sourcePath };
}

/** Every built-in policy compiled with its defaults (cgroup-boost boosting the root cgroup). */
export async function compileBuiltins(compiler: PolicyCompiler): Promise<CompiledPolicy[]> {
  const built: CompiledPolicy[] = [];
  for (const policy of builtinCatalogue()) {
    const tunables: Tunables = policy.manifest.name === "cgroup-boost" ? { cgroups: ["/"] } : {};
    built.push(await compiler.compile(policy, tunables));
  }
  return built;
}
