import { copyFileSync, mkdirSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { expect, it } from "vitest";
import { requireTool, run } from "../../src/sandbox/exec.ts";
import { defaultCacheDir, ensureSandboxKernel } from "../../src/sandbox/kernel-image.ts";
import { qemuCommand } from "../../src/sandbox/qemu.ts";
import { ensureRootDiskInitrd } from "../../src/sandbox/rootdisk.ts";
import { EXIT_MARKER, RESULT_MARKER } from "../../src/sandbox/types.ts";
import { runQemu } from "../../src/sandbox/vm.ts";
import { tempDir } from "../helpers/tmp.ts";
import { consoleTail, describeVm } from "../helpers/vm.ts";

describeVm("booting a root disk on the sandbox kernel", () => {
  it("loads virtio_blk from the root-disk initrd and hands over to the disk's init", async () => {
    // A tiny ext4 root whose /sbin/init reports where / is mounted from.
    const dir = tempDir();
    const root = join(dir, "root");
    for (const d of ["bin", "sbin", "proc", "dev"]) mkdirSync(join(root, d), { recursive: true });
    copyFileSync(requireTool("busybox", "busybox-static", "for the test root"), join(root, "bin/busybox"));
    for (const applet of ["sh", "mount", "grep", "cut", "poweroff"])
      symlinkSync("busybox", join(root, "bin", applet));
    writeFileSync(
      join(root, "sbin/init"),
      `#!/bin/sh\nexport PATH=/bin\nmount -t proc proc /proc\n` +
        `echo "${RESULT_MARKER}{\\"root\\":\\"$(grep ' / ' /proc/mounts | cut -d' ' -f1-3)\\",\\"pid\\":$$}"\n` +
        `echo "${EXIT_MARKER}0"\npoweroff -f\n`,
      { mode: 0o755 },
    );
    const image = join(dir, "root.img");
    await run(requireTool("mke2fs", "e2fsprogs", "to build the test disk"), [
      "-q",
      "-t",
      "ext4",
      "-d",
      root,
      image,
      "16M",
    ]);

    const kernel = await ensureSandboxKernel({ cacheDir: defaultCacheDir() });
    const initrd = await ensureRootDiskInitrd({ cacheDir: defaultCacheDir() });
    const command = qemuCommand({
      kernel: kernel.vmlinuz,
      initrd,
      drives: [{ file: image, snapshot: true }],
      append: ["root=/dev/vda", "rw"],
    });
    const result = await runQemu(command, { timeoutMs: 90_000 });
    expect(result.exitCode, consoleTail(result)).toBe(0);
    expect(result.results).toEqual([{ root: "/dev/vda / ext4", pid: 1 }]);
  });
});
