import { copyFileSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { basename, join } from "node:path";
import { run } from "../../src/sandbox/exec.ts";
import { ensureSandboxKernel } from "../../src/sandbox/kernel-image.ts";
import { qemuCommand } from "../../src/sandbox/qemu.ts";
import { ensureRootDiskInitrd } from "../../src/sandbox/rootdisk.ts";
import { RESULT_MARKER, type VmResult } from "../../src/sandbox/types.ts";
import { runQemu } from "../../src/sandbox/vm.ts";

// A Debian bookworm system with systemd as PID 1, booted on the sched_ext kernel under qemu: the
// closest thing to a real host the packaging test can run. The root filesystem image comes from
// scripts/build-rootfs.sh (debootstrap, cached); each run boots it with its writes thrown away
// (snapshot=on) and a second disk holding the payload (files + run.sh), which a unit in the
// image runs on the serial console (SCHEDCTL-RESULT lines, then SCHEDCTL-EXIT) before powering off.
// SCHEDCTL_VM_ECHO=1 echoes the guest's console.

const ROOT = join(import.meta.dirname, "../..");
/** From qemu's start to the payload's first result line; about 1 min on a loaded 2-core host. */
const BOOT_DEADLINE_MS = 300_000;

export interface SystemdVmImages {
  kernel: string;
  initrd: string;
  rootfs: string;
}

/** Kernel, root-disk initrd and root filesystem image, built and cached on first use. */
export async function ensureSystemdVm(): Promise<SystemdVmImages> {
  const kernel = await ensureSandboxKernel();
  const initrd = await ensureRootDiskInitrd();
  const rootfs = (await run(join(ROOT, "scripts/build-rootfs.sh"), [])).trim().split("\n").at(-1);
  if (!rootfs) throw new Error("scripts/build-rootfs.sh printed no image path");
  return { kernel: kernel.vmlinuz, initrd, rootfs };
}

export interface SystemdVmRun {
  /** Host files placed at the top of the payload disk (/mnt/payload in the guest). */
  files: string[];
  /** POSIX sh run as root once the system is up; prints RESULT_MARKER + JSON lines. */
  script: string;
  timeoutMs: number;
}

export interface SystemdVmResult extends VmResult {
  /** Each result line's arrival, in ms since qemu started, in the order of `results`. */
  resultAtMs: number[];
  /** Boots the emulator crashed (TCG faults) and that were run again. */
  reruns: number;
}

/** Boots the image, runs the payload, and always kills qemu at the end or on timeout. */
export async function runSystemdVm(images: SystemdVmImages, options: SystemdVmRun): Promise<SystemdVmResult> {
  const work = mkdtempSync(join(tmpdir(), "schedctl-systemd-vm-"));
  try {
    const payload = join(work, "payload");
    mkdirSync(payload);
    for (const file of options.files) copyFileSync(file, join(payload, basename(file)));
    writeFileSync(join(payload, "run.sh"), options.script);
    const disk = join(work, "payload.img");
    await run("truncate", ["-s", "512M", disk]);
    await run("mke2fs", ["-q", "-t", "ext4", "-d", payload, disk]);
    const command = qemuCommand({
      kernel: images.kernel,
      initrd: images.initrd,
      append: ["root=/dev/vda", "rw", "systemd.show_status=0"],
      drives: [
        { file: images.rootfs, snapshot: true },
        { file: disk, readOnly: true },
      ],
    });
    for (let reruns = 0; ; reruns++) {
      let started = Date.now();
      const resultAtMs: number[] = [];
      // A guest that prints nothing at all for minutes hung in early boot (seen once under TCG on
      // a loaded host, behind `quiet`): give up on that boot rather than wait for the timeout.
      const booting = new AbortController();
      let deadline: NodeJS.Timeout | undefined;
      let result: VmResult;
      try {
        result = await runQemu(command, {
          timeoutMs: options.timeoutMs,
          signal: booting.signal,
          // Counted from the VM lock: a wait for another run's guest is no boot time.
          onStarted: () => {
            started = Date.now();
            deadline = setTimeout(
              () => booting.abort(new Error(`no result line within ${BOOT_DEADLINE_MS / 1000} s of boot`)),
              BOOT_DEADLINE_MS,
            );
          },
          onLine: (line) => {
            if (line.includes(RESULT_MARKER)) {
              clearTimeout(deadline);
              resultAtMs.push(Date.now() - started);
            }
            if (process.env.SCHEDCTL_VM_ECHO === "1") process.stderr.write(`guest: ${line}\n`);
          },
        });
      } catch (error) {
        if (!booting.signal.aborted || reruns >= 1) throw error;
        continue;
      } finally {
        clearTimeout(deadline);
      }
      // Under TCG a boot now and then dies of an emulator fault; that says nothing of the package.
      if (!result.crashed || reruns >= 1) return { ...result, resultAtMs, reruns };
    }
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}
