// Cached build products of the sandbox (initramfs layers, ext4 disk images): written atomically,
// keyed by a cheap fingerprint of their inputs, older versions pruned.
import { createHash } from "node:crypto";
import { mkdtempSync, readdirSync, renameSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { basename, dirname, join } from "node:path";
import { requireTool, run } from "./exec.ts";

/**
 * Stages a tree in a temp dir, then writes it as a newc cpio, atomically. zstd rather than gzip:
 * the guest kernel unpacks it faster under emulation, and Linux takes mixed formats in one initrd.
 */
export async function buildArchive(out: string, stage: (root: string) => Promise<void>): Promise<void> {
  requireTool("cpio", "cpio", "to build the sandbox's initramfs");
  requireTool("zstd", "zstd", "to compress the sandbox's initramfs");
  const root = mkdtempSync(join(tmpdir(), "schedctl-initramfs-"));
  const partial = `${out}.tmp-${process.pid}`;
  try {
    await stage(root);
    await run(
      "bash",
      [
        "-c",
        'set -o pipefail; find . -mindepth 1 | LC_ALL=C sort | cpio -o -H newc -R 0:0 --quiet | zstd -q -3 -T0 -c >"$0"',
        partial,
      ],
      { cwd: root },
    );
    renameSync(partial, out);
    pruneOlderLayers(out);
  } finally {
    rmSync(root, { recursive: true, force: true });
    rmSync(partial, { force: true });
  }
}

/** Stages a tree in a temp dir, then writes it as a read-only-use ext4 image (no journal), atomically. */
export async function buildDiskImage(
  out: string,
  label: string,
  stage: (root: string) => Promise<void>,
): Promise<void> {
  const mke2fs = requireTool("mke2fs", "e2fsprogs", "to build the sandbox's disks");
  const root = mkdtempSync(join(tmpdir(), "schedctl-disk-"));
  const partial = `${out}.tmp-${process.pid}`;
  try {
    await stage(root);
    const bytes = Number((await run("du", ["-sb", root])).split("\t")[0]);
    const megabytes = Math.ceil((bytes * 1.2) / 1048576) + 32;
    const ext4 = ["-q", "-t", "ext4", "-O", "^has_journal", "-m", "0", "-L", label, "-d", root];
    await run(mke2fs, [...ext4, partial, `${megabytes}M`]);
    renameSync(partial, out);
    pruneOlderLayers(out);
  } finally {
    rmSync(root, { recursive: true, force: true });
    rmSync(partial, { force: true });
  }
}

/** Older versions may still be in use (a run started before the rebuild, another checkout). */
// Two days: with relatime, a file read daily has an atime at most a day old.
const KEEP_OLDER_MS = 2 * 24 * 3600 * 1000;

/** A rebuilt layer replaces the ones before it: they go once unread for two days. */
export function pruneOlderLayers(out: string): void {
  const kind = /^(base|runtime|rootdisk|tools)-/.exec(basename(out))?.[1];
  if (!kind) return;
  const dir = dirname(out);
  for (const name of readdirSync(dir)) {
    const path = join(dir, name);
    if (!name.startsWith(`${kind}-`) || path === out || name.includes(".tmp-")) continue;
    try {
      if (Date.now() - statSync(path).atimeMs > KEEP_OLDER_MS) rmSync(path, { force: true });
    } catch {
      // removed by someone else meanwhile
    }
  }
}

/** A cheap content key: each input's path, size and mtime, plus any inline text. */
export function fingerprint(paths: string[], text: string): string {
  const hash = createHash("sha256").update(text);
  for (const path of paths) {
    const s = statSync(path);
    hash.update(`${path}\0${s.size}\0${s.mtimeMs}\0`);
  }
  return hash.digest("hex").slice(0, 16);
}
