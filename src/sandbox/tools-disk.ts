// The sandbox's tools disk: a read-only ext4 image holding a small root of its own (busybox,
// linux-perf with its libraries), attached when a run asks for it and mounted by the guest's
// /init at /tools, where its programs run under `chroot /tools`. A disk rather than an initramfs
// layer: perf's libraries alone are 40 MB, which every boot would otherwise unpack under TCG.
import { copyFileSync, existsSync, mkdirSync, symlinkSync } from "node:fs";
import { join } from "node:path";
import type { Logger } from "../log/logger.ts";
import { buildDiskImage, fingerprint } from "./archive.ts";
import { requireTool } from "./exec.ts";
import { copyWithLibraries } from "./libraries.ts";

/** Where /init mounts the disk; a program on it runs as `chroot ${GUEST_TOOLS_DIR} PROGRAM`. */
export const GUEST_TOOLS_DIR = "/tools";
/** Bumped when the way the disk is built changes, so a cached one is rebuilt. */
const LAYOUT = "tools disk 1\n";

const BINARIES: { name: string; debianPackage: string }[] = [{ name: "perf", debianPackage: "linux-perf" }];

export async function ensureToolsDisk(dir: string, logger?: Logger): Promise<string> {
  const busybox = requireTool("busybox", "busybox-static", "as the tools disk's shell");
  const binaries = BINARIES.map((b) => requireTool(b.name, b.debianPackage, "on the sandbox's tools disk"));
  const out = join(dir, `tools-${fingerprint([busybox, ...binaries], LAYOUT)}.ext4`);
  if (existsSync(out)) return out;

  logger?.info({ out }, "building the sandbox's tools disk");
  await buildDiskImage(out, "schedctl-tools", async (root) => {
    // Mount points for /init's binds, and a shell for what runs inside.
    for (const d of ["bin", "proc", "sys", "dev", "tmp"]) mkdirSync(join(root, d));
    copyFileSync(busybox, join(root, "bin/busybox"));
    symlinkSync("busybox", join(root, "bin/sh"));
    for (const binary of binaries) await copyWithLibraries(binary, root, binary);
  });
  return out;
}
