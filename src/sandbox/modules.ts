// Kernel modules of the sandbox kernel, for guests that need a driver the cloud kernel builds as a
// module (virtio_blk for a root disk, squashfs, ...). Fetched once from the kernel's
// linux-modules package with the same private apt setup, decompressed, dependencies resolved.
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { Logger } from "../log/logger.ts";
import { requireTool } from "./exec.ts";
import { defaultCacheDir, ensureSandboxKernel, PrivateApt } from "./kernel-image.ts";

export interface KernelModulesOptions {
  cacheDir?: string;
  /** Module names as modprobe takes them (virtio_blk, squashfs). */
  names: string[];
  logger?: Logger;
  mirror?: string;
}

/**
 * Host paths of uncompressed .ko files for `names` and everything they depend on, in load
 * order (dependencies first), for the sandbox kernel. insmod them in that order.
 */
export async function ensureKernelModules(options: KernelModulesOptions): Promise<string[]> {
  const cacheDir = options.cacheDir ?? defaultCacheDir();
  const kernel = await ensureSandboxKernel({ cacheDir, logger: options.logger });
  const kernelDir = join(cacheDir, "kernel", kernel.version);
  const tree = join(kernelDir, "modules");
  if (!existsSync(join(tree, "done"))) {
    options.logger?.info({ version: kernel.version }, "fetching the sandbox kernel's modules");
    const work = `${tree}.tmp-${process.pid}`;
    rmSync(work, { recursive: true, force: true });
    try {
      await new PrivateApt(join(cacheDir, "kernel", "apt"), options.mirror).unpack(
        [`linux-modules-${kernel.version}`],
        work,
      );
      writeFileSync(join(work, "done"), "");
      rmSync(tree, { recursive: true, force: true });
      renameSync(work, tree);
    } finally {
      rmSync(work, { recursive: true, force: true });
    }
  }
  const index = indexModules(join(tree, "usr", "lib", "modules", kernel.version, "kernel"));
  const ko = join(kernelDir, "ko");
  mkdirSync(ko, { recursive: true });

  const ordered: string[] = [];
  const visit = (name: string, chain: string[]) => {
    const key = canonical(name);
    if (ordered.some((path) => path.endsWith(`/${key}.ko`))) return;
    const source = index.get(key);
    if (!source) {
      throw new Error(
        `kernel module ${name} is not in linux-modules-${kernel.version}` +
          (chain.length ? ` (needed by ${chain.join(" <- ")})` : "") +
          "; it may be built into the kernel (see its config)",
      );
    }
    const path = join(ko, `${key}.ko`);
    if (!existsSync(path)) decompress(source, path);
    for (const dep of dependsOf(path)) visit(dep, [name, ...chain]);
    ordered.push(path);
  };
  for (const name of options.names) visit(name, []);
  return ordered;
}

/** modprobe treats - and _ alike in module names. */
function canonical(name: string): string {
  return name.replaceAll("-", "_");
}

function indexModules(dir: string): Map<string, string> {
  const index = new Map<string, string>();
  for (const entry of readdirSync(dir, { recursive: true, withFileTypes: true })) {
    const match = /^(.+)\.ko(\.xz|\.zst)?$/.exec(entry.name);
    if (entry.isFile() && match) index.set(canonical(match[1]!), join(entry.parentPath, entry.name));
  }
  return index;
}

function decompress(source: string, to: string): void {
  const partial = `${to}.tmp-${process.pid}`;
  const tool = source.endsWith(".xz")
    ? requireTool("xz", "xz-utils", "to decompress kernel modules")
    : source.endsWith(".zst")
      ? requireTool("zstd", "zstd", "to decompress kernel modules")
      : undefined;
  if (!tool) {
    writeFileSync(partial, readFileSync(source));
  } else {
    const out = spawnSync(tool, ["-dc", source], { maxBuffer: 256 * 1024 * 1024 });
    if (out.status !== 0) throw new Error(`cannot decompress ${source}: ${out.stderr?.toString().trim()}`);
    writeFileSync(partial, out.stdout);
  }
  renameSync(partial, to);
}

/** The `depends=` entry of a module's .modinfo section. */
function dependsOf(ko: string): string[] {
  const text = readFileSync(ko).toString("latin1");
  const at = text.indexOf("\0depends=");
  if (at < 0) return [];
  const value = text.slice(at + "\0depends=".length, text.indexOf("\0", at + 1));
  return value.split(",").filter(Boolean);
}
