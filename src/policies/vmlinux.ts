import { createHash } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { Host } from "../host/host.ts";
import type { VmlinuxHeader } from "./compile.ts";
import { requireTool, runTool, tail } from "./tools.ts";

// Which vmlinux.h policies compile against: on a host whose own kernel has sched_ext, one
// generated from the running kernel's BTF (/sys/kernel/btf/vmlinux) with bpftool, cached by the
// BTF's hash; on any other host (a workstation preparing policies), the sandbox kernel's.

/** Resolves, on first compile, the host's own vmlinux.h or else the sandbox kernel's. */
export function vmlinuxHeaderFor(options: {
  host: Host;
  cacheDir: string;
  /** The sandbox's sched_ext kernel, fetched and cached when first asked for. */
  sandboxKernel: () => Promise<{ version: string; vmlinuxH: string }>;
}): () => Promise<VmlinuxHeader> {
  return async () => {
    const own = await hostVmlinuxHeader(options);
    if (own) return { path: own };
    const sandbox = await options.sandboxKernel();
    return {
      path: sandbox.vmlinuxH,
      from: `the sandbox kernel ${sandbox.version} (this host's kernel has no sched_ext)`,
    };
  };
}

/** The host kernel's vmlinux.h, or undefined when the host has no sched_ext or no BTF. */
export async function hostVmlinuxHeader(options: {
  host: Host;
  cacheDir: string;
  pathEnv?: string;
}): Promise<string | undefined> {
  const { host, cacheDir } = options;
  if (!host.exists("/sys/kernel/sched_ext/state") || !host.exists("/sys/kernel/btf/vmlinux"))
    return undefined;
  const btfPath = host.resolve("/sys/kernel/btf/vmlinux");
  const hash = createHash("sha256").update(readFileSync(btfPath)).digest("hex").slice(0, 16);
  const out = join(cacheDir, "vmlinux", hash, "vmlinux.h");
  if (existsSync(out)) return out;
  const bpftool = requireTool(
    "bpftool",
    "to generate vmlinux.h",
    "-t bookworm-backports bpftool",
    options.pathEnv,
  );
  const run = await runTool(bpftool, ["btf", "dump", "file", btfPath, "format", "c"], { timeoutMs: 120_000 });
  if (run.code !== 0 || !run.stdout.includes("struct sched_ext_ops")) {
    throw new Error(
      `cannot generate vmlinux.h from ${btfPath}: ${tail(run.stderr) || "no struct sched_ext_ops in its BTF"}`,
    );
  }
  mkdirSync(join(cacheDir, "vmlinux", hash), { recursive: true });
  writeFileSync(`${out}.tmp`, run.stdout);
  renameSync(`${out}.tmp`, out);
  return out;
}
