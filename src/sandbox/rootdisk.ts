// A small initrd for booting a whole Debian system from a disk on the sandbox kernel: the cloud
// kernel builds virtio_blk as a module, so something must load it before the root can be mounted.
// This initrd loads the driver, mounts root= and hands over to the disk's own init (systemd).
//
//   qemuCommand({ kernel: k.vmlinuz, initrd: await ensureRootDiskInitrd(),
//                 drives: [{ file: "rootfs.img", snapshot: true }], append: ["root=/dev/vda", "rw"] })
import { chmodSync, copyFileSync, existsSync, mkdirSync, symlinkSync, writeFileSync } from "node:fs";
import { basename, join } from "node:path";
import type { Logger } from "../log/logger.ts";
import { buildArchive, fingerprint } from "./archive.ts";
import { requireTool } from "./exec.ts";
import { defaultCacheDir } from "./kernel-image.ts";
import { ensureKernelModules } from "./modules.ts";

const INIT = `#!/bin/sh
# /init of the root-disk initrd (written by src/sandbox/rootdisk.ts).
export PATH=/bin
mount -t devtmpfs devtmpfs /dev
mount -t proc proc /proc
for ko in $(cat /modules/order); do insmod "/modules/$ko" || echo "rootdisk: insmod $ko failed"; done
root=/dev/vda fstype=ext4 flags=rw init=/sbin/init
for arg in $(cat /proc/cmdline); do
  case "$arg" in
    root=*) root="\${arg#root=}" ;;
    rootfstype=*) fstype="\${arg#rootfstype=}" ;;
    ro) flags=ro ;;
    init=*) init="\${arg#init=}" ;;
  esac
done
tries=0
while [ ! -b "$root" ] && [ $tries -lt 100 ]; do sleep 0.1; tries=$((tries + 1)); done
mkdir -p /newroot
if ! mount -t "$fstype" -o "$flags" "$root" /newroot; then
  echo "rootdisk: cannot mount $root ($fstype) on /newroot"
  poweroff -f
fi
umount /proc
mount --move /dev /newroot/dev
exec switch_root /newroot "$init"
`;

export interface RootDiskInitrdOptions {
  cacheDir?: string;
  /** Default ["virtio_blk"]; add e.g. "virtio_net" for a guest with a network card. */
  modules?: string[];
  logger?: Logger;
}

/** The cached initrd's path (`<cacheDir>/initramfs/rootdisk-<hash>.cpio.zst`). */
export async function ensureRootDiskInitrd(options: RootDiskInitrdOptions = {}): Promise<string> {
  const cacheDir = options.cacheDir ?? defaultCacheDir();
  const busybox = requireTool("busybox", "busybox-static", "for the root-disk initrd");
  const modules = await ensureKernelModules({
    cacheDir,
    names: options.modules ?? ["virtio_blk"],
    logger: options.logger,
  });
  const dir = join(cacheDir, "initramfs");
  mkdirSync(dir, { recursive: true });
  const out = join(dir, `rootdisk-${fingerprint([busybox, ...modules], INIT)}.cpio.zst`);
  if (existsSync(out)) return out;
  await buildArchive(out, async (root) => {
    for (const d of ["bin", "dev", "proc", "modules", "newroot"]) mkdirSync(join(root, d));
    copyFileSync(busybox, join(root, "bin/busybox"));
    for (const applet of [
      "sh",
      "mount",
      "umount",
      "insmod",
      "sleep",
      "mkdir",
      "cat",
      "poweroff",
      "switch_root",
    ]) {
      symlinkSync("/bin/busybox", join(root, "bin", applet));
    }
    for (const ko of modules) copyFileSync(ko, join(root, "modules", basename(ko)));
    writeFileSync(join(root, "modules/order"), `${modules.map((ko) => basename(ko)).join("\n")}\n`);
    writeFileSync(join(root, "init"), INIT);
    chmodSync(join(root, "init"), 0o755);
  });
  return out;
}
