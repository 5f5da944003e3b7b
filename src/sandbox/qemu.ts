// The qemu command line for a sched_ext guest, shared by the sandbox (initramfs only) and the
// packaging tests (a Debian root disk booted with systemd on the same kernel).
import { requireTool } from "./exec.ts";
import type { TcgThread } from "./types.ts";

export interface QemuDrive {
  file: string;
  format?: "raw" | "qcow2";
  /** Default "virtio" (the cloud kernel builds virtio_blk as a module: an initramfs must load it). */
  interface?: "virtio" | "ide" | "none";
  readOnly?: boolean;
  /** A snapshot drive discards the guest's writes. */
  snapshot?: boolean;
}

export interface QemuMachine {
  kernel: string;
  initrd?: string;
  /** Kernel arguments after the defaults (console on ttyS0, panic reboots, i.e. exits qemu). */
  append?: string[];
  cpus?: number;
  memoryMb?: number;
  /** Default "tcg". KVM only where /dev/kvm is a real hardware-assisted one. */
  accel?: "tcg" | "kvm";
  /** TCG's threading: "multi" (a host thread per vCPU) or "single"; default defaultTcgThread(). */
  tcgThread?: TcgThread;
  drives?: QemuDrive[];
  /** Appended last, verbatim (e.g. -netdev/-device pairs). */
  extraArgs?: string[];
}

/**
 * An Oops under TCG must end the run at once rather than leave a half-dead guest until the
 * timeout: oops=panic, then panic=-1 reboots at once and -no-reboot turns that into qemu's exit.
 * loglevel=1: the console carries the guest's results, and a kernel line (sched_ext's
 * "disabled" is KERN_ERR) written while a result still drains through the UART cuts it in two.
 * Guests read the kernel's log with dmesg; an Oops raises the console's level itself.
 */
export const DEFAULT_KERNEL_ARGS = ["console=ttyS0", "loglevel=1", "oops=panic", "panic=-1"];

/**
 * The emulator mode: "multi" (a host thread per vCPU, so vCPUs run in parallel as on hardware)
 * unless $SCHEDCTL_TCG_THREAD says "single". qemu 7.2's multi-threaded TCG died of `Oops: int3`
 * in update_rq_clock at sched_ext switches (the kernel live-patches its static branches with
 * int3, and another vCPU ran the stale translation); setup installs qemu >= 10 from
 * bookworm-backports (docs/sandbox.md; the crash rate per switch is not yet measured).
 */
export function defaultTcgThread(): TcgThread {
  return process.env.SCHEDCTL_TCG_THREAD === "single" ? "single" : "multi";
}

export function qemuCommand(machine: QemuMachine): { file: string; args: string[] } {
  const file = requireTool("qemu-system-x86_64", "qemu-system-x86", "to boot the sched_ext kernel");
  const accel = machine.accel ?? "tcg";
  const args = [
    "-accel",
    accel === "tcg" ? `tcg,thread=${machine.tcgThread ?? defaultTcgThread()}` : accel,
    ...(accel === "kvm" ? ["-cpu", "host"] : []),
    "-smp",
    String(machine.cpus ?? 2),
    "-m",
    `${machine.memoryMb ?? 2048}M`,
    "-nographic",
    "-no-reboot",
    "-nodefaults",
    "-serial",
    "stdio",
    "-kernel",
    machine.kernel,
    ...(machine.initrd ? ["-initrd", machine.initrd] : []),
    "-append",
    [...DEFAULT_KERNEL_ARGS, ...(machine.append ?? [])].join(" "),
  ];
  for (const drive of machine.drives ?? []) {
    const opts = [
      `file=${drive.file}`,
      `format=${drive.format ?? "raw"}`,
      `if=${drive.interface ?? "virtio"}`,
    ];
    if (drive.readOnly) opts.push("readonly=on");
    if (drive.snapshot) opts.push("snapshot=on");
    args.push("-drive", opts.join(","));
  }
  args.push(...(machine.extraArgs ?? []));
  return { file, args };
}
