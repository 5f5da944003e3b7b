import {
  chmodSync,
  copyFileSync,
  cpSync,
  existsSync,
  mkdirSync,
  realpathSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { basename, dirname, join } from "node:path";
import type { Logger } from "../log/logger.ts";
import { buildArchive, fingerprint } from "./archive.ts";
import { requireTool, run } from "./exec.ts";
import { copyLibraries, copyWithLibraries } from "./libraries.ts";
import { ensureLoads } from "./loads.ts";
import { ensureKernelModules } from "./modules.ts";
import { ensureRuntimeDisk } from "./runtime-disk.ts";
import { ensureToolsDisk, GUEST_TOOLS_DIR } from "./tools-disk.ts";
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
/** `schedctl.tools=vdX`: /init mounts the tools disk from that device at GUEST_TOOLS_DIR. */
export const TOOLS_DISK_ARG = "schedctl.tools=";
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
tools_dev=
for arg in $(cat /proc/cmdline); do
  case "$arg" in ${TOOLS_DISK_ARG}*) tools_dev="\${arg#${TOOLS_DISK_ARG}}" ;; esac
done
if grep -q "${RUNTIME_DISK_ARG}" /proc/cmdline || [ -n "$tools_dev" ]; then
  # The cloud kernel builds virtio_blk as a module.
  for ko in $(cat /lib/schedctl/modules.order); do insmod "/lib/schedctl/$ko"; done
fi
if grep -q "${RUNTIME_DISK_ARG}" /proc/cmdline; then
  n=0
  while [ ! -b /dev/vda ] && [ $n -lt 50 ]; do sleep 0.1; n=$((n + 1)); done
  mkdir -p ${GUEST_RUNTIME}
  mount -t ext4 -o ro /dev/vda ${GUEST_RUNTIME} || echo "schedctl: cannot mount the runtime disk /dev/vda"
fi
if [ -n "$tools_dev" ]; then
  n=0
  while [ ! -b /dev/$tools_dev ] && [ $n -lt 50 ]; do sleep 0.1; n=$((n + 1)); done
  mkdir -p ${GUEST_TOOLS_DIR}
  if mount -t ext4 -o ro /dev/$tools_dev ${GUEST_TOOLS_DIR}; then
    for d in proc sys dev; do mount --bind /$d ${GUEST_TOOLS_DIR}/$d; done
    mount -t tmpfs tmpfs ${GUEST_TOOLS_DIR}/tmp
  else
    echo "schedctl: cannot mount the tools disk /dev/$tools_dev"
  fi
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
  { name: "rt-app", debianPackage: "rt-app" },
];

export interface InitramfsLayers {
  base: string;
  runtime: string;
  tools: string;
}

/** The two cached layers, built when their inputs changed. */
export async function ensureInitramfsLayers(cacheDir: string, logger?: Logger): Promise<InitramfsLayers> {
  const dir = join(cacheDir, "initramfs");
  mkdirSync(dir, { recursive: true });
  const node = realpathSync(process.execPath);
  return {
    base: await ensureBase(dir, cacheDir, node, logger),
    runtime: await ensureRuntimeDisk(dir, node, logger),
    tools: await ensureToolsDisk(dir, logger),
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
