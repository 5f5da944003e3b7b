import { createHash } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { Host } from "../host/host.ts";
import { requireTool, runTool, tail } from "./tools.ts";

// vmlinux.h for compiling policies on a host whose own kernel has sched_ext: generated from the
// running kernel's BTF (/sys/kernel/btf/vmlinux) with bpftool, cached by the BTF's hash. Hosts
// without sched_ext use the sandbox kernel's (src/sandbox/kernel-image.ts) instead.

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
