// The sandbox VM's contract: boot the sched_ext kernel under qemu, run a shell script as the
// payload of /init, and hand back what the guest reported on the serial console.

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
}

/** A guest prints `RESULT_MARKER + JSON.stringify(value)` on one line to report a value. */
export const RESULT_MARKER = "SCHEDCTL-RESULT ";

export interface Sandbox {
  run(options: VmRunOptions): Promise<VmResult>;
}
