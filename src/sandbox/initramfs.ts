// What the sandbox guest runs from:
//   base    a zstd cpio initramfs: busybox, bpftool, stress-ng, cyclictest, hackbench, our load
//           generators, the libraries Node needs, virtio_blk, /init (cached, keyed by its inputs)
//   runtime a read-only ext4 disk image: the Node runtime and the project's production
//           node_modules, mounted at /runtime (cached likewise). A disk rather than an initramfs
//           layer: under TCG the kernel took 7-20 s to unpack those 190 MB on every boot, while
//           a disk is read only as far as Node touches it.
//   run     a small cpio layer per run, concatenated after base: the project's own files (src/,
//           bpf/, package.json), the run's files, its payload script
import { createHash } from "node:crypto";
import {
  chmodSync,
  copyFileSync,
  cpSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  realpathSync,
  renameSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { basename, dirname, join, relative } from "node:path";
import type { Logger } from "../log/logger.ts";
import { requireTool, run, which } from "./exec.ts";
import { ensureLoads } from "./loads.ts";
import { ensureKernelModules } from "./modules.ts";
import { EXIT_MARKER, type VmFile } from "./types.ts";

/** Where the project sits inside the guest; the payload script starts there. */
export const GUEST_PROJECT_DIR = "/opt/schedctl";
export const GUEST_PAYLOAD = "/schedctl/payload.sh";
/** Printed by /init when the payload starts: its arrival time is the boot time. */
export const BOOTED_MARKER = "SCHEDCTL-BOOTED";

const PROJECT_ROOT = join(import.meta.dirname, "..", "..");
/** Bumped when the way layers are built changes, so cached ones are rebuilt. */
const LAYOUT = "layout 3: zstd base, ext4 runtime disk\n";
/** The kernel argument that tells /init to mount the runtime disk (/dev/vda). */
export const RUNTIME_DISK_ARG = "schedctl.runtime=1";
const GUEST_RUNTIME = "/runtime";

const INIT = `#!/bin/sh
# /init of the schedctl sandbox (written by src/sandbox/initramfs.ts).
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/root TERM=dumb
mount -t devtmpfs devtmpfs /dev
# The kernel found no /dev/console in the archive: take the console now that devtmpfs has one.
exec </dev/console >/dev/console 2>&1
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t bpf bpf /sys/fs/bpf
mount -t cgroup2 cgroup2 /sys/fs/cgroup
mount -t debugfs debugfs /sys/kernel/debug
mount -t tmpfs tmpfs /tmp
mkdir -p /dev/pts /dev/shm
mount -t devpts devpts /dev/pts
mount -t tmpfs tmpfs /dev/shm
if grep -q "${RUNTIME_DISK_ARG}" /proc/cmdline; then
  # The cloud kernel builds virtio_blk as a module.
  for ko in $(cat /lib/schedctl/modules.order); do insmod "/lib/schedctl/$ko"; done
  n=0
  while [ ! -b /dev/vda ] && [ $n -lt 50 ]; do sleep 0.1; n=$((n + 1)); done
  mkdir -p ${GUEST_RUNTIME}
  mount -t ext4 -o ro /dev/vda ${GUEST_RUNTIME} || echo "schedctl: cannot mount the runtime disk /dev/vda"
fi
ip link set lo up
echo "+cpu +cpuset +memory +io +pids" >/sys/fs/cgroup/cgroup.subtree_control 2>/dev/null
echo "${BOOTED_MARKER} $(cut -d' ' -f1 /proc/uptime)"
cd ${GUEST_PROJECT_DIR}
sh ${GUEST_PAYLOAD}
echo "${EXIT_MARKER}$?"
poweroff -f
`;

/** Debian tools placed at their host paths, each with the libraries ldd lists for it. */
const TOOLS: { name: string; debianPackage: string }[] = [
  { name: "bpftool", debianPackage: "-t bookworm-backports bpftool" },
  { name: "stress-ng", debianPackage: "stress-ng" },
  { name: "cyclictest", debianPackage: "rt-tests" },
  { name: "hackbench", debianPackage: "rt-tests" },
];

export interface InitramfsLayers {
  base: string;
  runtime: string;
}

/** The two cached layers, built when their inputs changed. */
export async function ensureInitramfsLayers(cacheDir: string, logger?: Logger): Promise<InitramfsLayers> {
  const dir = join(cacheDir, "initramfs");
  mkdirSync(dir, { recursive: true });
  const node = realpathSync(process.execPath);
  return {
    base: await ensureBase(dir, cacheDir, node, logger),
    runtime: await ensureRuntime(dir, node, logger),
  };
}

async function ensureBase(dir: string, cacheDir: string, node: string, logger?: Logger): Promise<string> {
  const busybox = requireTool("busybox", "busybox-static", "as the sandbox's shell and tools");
  const tools = TOOLS.map((t) => requireTool(t.name, t.debianPackage, "inside the sandbox VM"));
  const loads = await ensureLoads(cacheDir, logger);
  const modules = await ensureKernelModules({ cacheDir, names: ["virtio_blk"], logger });
  const inputs = [busybox, ...tools, ...Object.values(loads), ...modules, node];
  const out = join(dir, `base-${fingerprint(inputs, LAYOUT + INIT)}.cpio.zst`);
  if (existsSync(out)) return out;

  logger?.info({ out }, "building the sandbox's base initramfs");
  await buildArchive(out, async (root) => {
    const dirs = [
      "bin",
      "sbin",
      "usr/bin",
      "usr/sbin",
      "usr/local/bin",
      "lib/schedctl",
      "dev",
      "proc",
      "sys",
    ];
    for (const d of [...dirs, "tmp", "root", "run", "etc", GUEST_PROJECT_DIR])
      mkdirSync(join(root, d), { recursive: true });
    copyFileSync(busybox, join(root, "bin/busybox"));
    const applets = (await run(busybox, ["--list-full"])).split("\n").filter(Boolean);
    for (const applet of applets) {
      const at = join(root, applet);
      if (applet === "bin/busybox" || existsSync(at)) continue;
      mkdirSync(dirname(at), { recursive: true });
      symlinkSync("/bin/busybox", at);
    }
    for (const tool of tools) await copyWithLibraries(tool, root, tool);
    for (const [name, path] of Object.entries(loads)) copyFileSync(path, join(root, "usr/local/bin", name));
    for (const ko of modules) copyFileSync(ko, join(root, "lib/schedctl", basename(ko)));
    writeFileSync(
      join(root, "lib/schedctl/modules.order"),
      `${modules.map((ko) => basename(ko)).join("\n")}\n`,
    );
    // Node itself and node_modules are on the runtime disk; its libraries are small and live here.
    await copyLibraries(node, root);
    symlinkSync(`${GUEST_RUNTIME}/bin/node`, join(root, "usr/local/bin/node"));
    symlinkSync(`${GUEST_RUNTIME}/node_modules`, join(root, GUEST_PROJECT_DIR, "node_modules"));
    writeFileSync(join(root, "etc/passwd"), "root:x:0:0:root:/root:/bin/sh\n");
    writeFileSync(join(root, "etc/group"), "root:x:0:\n");
    writeFileSync(join(root, "init"), INIT);
    chmodSync(join(root, "init"), 0o755);
  });
  return out;
}

/** The runtime disk: the Node this process runs on (scripts/setup.sh's Node 26), production node_modules. */
async function ensureRuntime(dir: string, node: string, logger?: Logger): Promise<string> {
  const mke2fs = requireTool("mke2fs", "e2fsprogs", "to build the sandbox's runtime disk");
  const lock = join(PROJECT_ROOT, "package-lock.json");
  const manifest = existsSync(lock) ? lock : join(PROJECT_ROOT, "package.json");
  const out = join(dir, `runtime-${fingerprint([node, manifest], LAYOUT + process.version)}.ext4`);
  if (existsSync(out)) return out;

  logger?.info({ out }, "building the sandbox's runtime disk (Node and production node_modules)");
  const packages = await productionPackages();
  const root = mkdtempSync(join(tmpdir(), "schedctl-runtime-"));
  const partial = `${out}.tmp-${process.pid}`;
  try {
    mkdirSync(join(root, "bin"));
    copyFileSync(node, join(root, "bin/node"));
    // Its debug info is a third of the binary: strip it, the guest never needs it.
    const strip = which("strip");
    if (strip) await run(strip, [join(root, "bin/node")]);
    for (const pkg of packages) {
      cpSync(pkg, join(root, relative(PROJECT_ROOT, pkg)), {
        recursive: true,
        dereference: true,
        filter: (src) => keepInGuest(pkg, src),
      });
    }
    const bytes = Number((await run("du", ["-sb", root])).split("\t")[0]);
    const megabytes = Math.ceil((bytes * 1.2) / 1048576) + 32;
    await run(mke2fs, [
      "-q",
      "-t",
      "ext4",
      "-O",
      "^has_journal",
      "-m",
      "0",
      "-L",
      "schedctl-rt",
      "-d",
      root,
      partial,
      `${megabytes}M`,
    ]);
    renameSync(partial, out);
    pruneOlderLayers(out);
  } finally {
    rmSync(root, { recursive: true, force: true });
    rmSync(partial, { force: true });
  }
  return out;
}

/** Builds the per-run layer into `out`: the project's sources, the run's files, the payload. */
export async function buildRunArchive(out: string, script: string, files: VmFile[] = []): Promise<void> {
  await buildArchive(out, async (root) => {
    for (const entry of ["src", "bpf", "package.json"]) {
      const from = join(PROJECT_ROOT, entry);
      if (existsSync(from)) cpSync(from, join(root, GUEST_PROJECT_DIR, entry), { recursive: true });
    }
    for (const file of files) {
      if (!file.guestPath.startsWith("/"))
        throw new Error(`VmFile guestPath must be absolute: ${file.guestPath}`);
      if (!existsSync(file.hostPath)) throw new Error(`VmFile hostPath does not exist: ${file.hostPath}`);
      const to = join(root, file.guestPath);
      mkdirSync(dirname(to), { recursive: true });
      cpSync(file.hostPath, to, { recursive: true, dereference: true });
    }
    mkdirSync(join(root, dirname(GUEST_PAYLOAD)), { recursive: true });
    writeFileSync(join(root, GUEST_PAYLOAD), script);
  });
}

/** Paths of the packages `npm ls --omit=dev` lists: production dependencies only. */
async function productionPackages(): Promise<string[]> {
  const npm = which("npm", `${dirname(process.execPath)}:${process.env.PATH ?? ""}`);
  const modules = join(PROJECT_ROOT, "node_modules");
  if (!npm) {
    // An installed schedctl (the .deb) ships production dependencies only, and no npm: take it all.
    return existsSync(modules) ? [modules] : [];
  }
  // npm ls exits non-zero on harmless problems (an extraneous package); its list is still complete.
  const out = await run(npm, ["ls", "--omit=dev", "--all", "--parseable"], {
    cwd: PROJECT_ROOT,
    allowFailure: true,
  }).catch((error: Error) => {
    throw new Error(`npm ls --omit=dev failed in ${PROJECT_ROOT}: ${error.message}`);
  });
  return out
    .split("\n")
    .filter((p) => p.includes("/node_modules/"))
    .sort();
}

/** Native sources and other platforms' prebuilt binaries are dead weight in the guest. */
function keepInGuest(pkg: string, src: string): boolean {
  const rel = relative(pkg, src);
  if (rel.startsWith("node_modules")) return false; // nested packages come on their own
  if (existsSync(join(pkg, "binding.gyp")) && /^(deps|src)(\/|$)/.test(rel)) return false;
  const prebuilt = /^prebuilds\/([^/]+)/.exec(rel)?.[1];
  return prebuilt === undefined || prebuilt.startsWith("linux-x64");
}

/** Copies a binary to `guestPath` and every library ldd lists for it to the same path in the guest. */
async function copyWithLibraries(binary: string, root: string, guestPath: string): Promise<void> {
  const to = join(root, guestPath);
  mkdirSync(dirname(to), { recursive: true });
  copyFileSync(binary, to); // follows symlinks and keeps the mode
  await copyLibraries(binary, root);
}

/** Copies the libraries ldd lists for a binary to the same paths in the guest. */
async function copyLibraries(binary: string, root: string): Promise<void> {
  const ldd = await run("ldd", [binary]).catch(() => ""); // static binaries: nothing to add
  for (const match of ldd.matchAll(/(\/\S+) \(0x/g)) {
    const lib = match[1]!;
    const libTo = join(root, lib);
    if (!existsSync(libTo)) {
      mkdirSync(dirname(libTo), { recursive: true });
      copyFileSync(lib, libTo);
    }
  }
}

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

/** A rebuilt layer replaces the one before it: keep only the newest of each kind. */
function pruneOlderLayers(out: string): void {
  const kind = /^(base|runtime|rootdisk)-/.exec(basename(out))?.[1];
  if (!kind) return;
  for (const name of readdirSync(dirname(out))) {
    if (name.startsWith(`${kind}-`) && join(dirname(out), name) !== out && !name.includes(".tmp-")) {
      rmSync(join(dirname(out), name), { force: true });
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
