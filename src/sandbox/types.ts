// The sandbox VM's contract: boot the sched_ext kernel under qemu, run a shell script as the
// payload of /init, and hand back what the guest reported on the serial console.

/** TCG's threading: "multi" (a host thread per vCPU, the vCPUs in parallel) or "single". */
export type TcgThread = "single" | "multi";

export interface VmFile {
  /** Path inside the guest. */
  guestPath: string;
  /** A host file (or directory, copied whole) to place there. */
  hostPath: string;
}

export interface VmRunOptions {
  /** POSIX sh run inside the guest after /proc, /sys, bpffs, cgroup2 and devtmpfs are mounted. */
  script: string;
  /** Extra files for this run, added to the base initramfs. */
  files?: VmFile[];
  /** The whole run, boot included; qemu is killed when it passes. */
  timeoutMs: number;
  cpus?: number;
  memoryMb?: number;
  /** Called with each console line as it arrives (for live progress). */
  onLine?: (line: string) => void;
  signal?: AbortSignal;
  /** Default "tcg": the development machines' /dev/kvm cannot boot a stock kernel. */
  accel?: "tcg" | "kvm";
  /** TCG's threading (qemu.ts): defaultTcgThread() unless given. */
  tcgThread?: TcgThread;
  /** Attach the runtime disk with Node and the project's production node_modules (default true).
   * Runs that need neither (bpftool and shell only) boot a little quicker without it. */
  node?: boolean;
  /** Attach the tools disk (src/sandbox/tools-disk.ts: perf), mounted at /tools; default false. */
  tools?: boolean;
  /** Extra kernel command-line arguments. */
  kernelArgs?: string[];
  /** Called with qemu's pid once it runs (tests check it is gone afterwards). */
  onSpawn?: (pid: number) => void;
  /** Called when the run's time starts: qemu holds the VM lock (another run's guest is done). */
  onStarted?: () => void;
}

export interface VmResult {
  /** The script's exit status (undefined when it never finished). */
  exitCode: number | undefined;
  /** Every JSON value the guest printed on a line after RESULT_MARKER, in order. */
  results: unknown[];
  /** The whole console, for logs and error excerpts. */
  console: string;
  timedOut: boolean;
  /** The guest kernel crashed (Oops, panic) before the script finished. */
  crashed: boolean;
  durationMs: number;
  /** From qemu's start to the payload's start. */
  bootMs?: number;
  /** The console line that showed the crash. */
  crashLine?: string;
}

/** A guest prints `RESULT_MARKER + JSON.stringify(value)` on one line to report a value. */
export const RESULT_MARKER = "SCHEDCTL-RESULT ";

/** /init prints `EXIT_MARKER + status` when the payload script returns. */
export const EXIT_MARKER = "SCHEDCTL-EXIT ";

export interface Sandbox {
  run(options: VmRunOptions): Promise<VmResult>;
}
