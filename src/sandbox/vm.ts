// The sandbox: boots the sched_ext kernel under qemu with our initramfs, runs one payload script,
// and reads what the guest reports on its serial console. qemu never outlives a run.
import { spawn } from "node:child_process";
import { createReadStream, createWriteStream, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { pipeline } from "node:stream/promises";
import type { Logger } from "../log/logger.ts";
import { which } from "./exec.ts";
import {
  BOOTED_MARKER,
  buildRunArchive,
  ensureInitramfsLayers,
  RUNTIME_DISK_ARG,
  TOOLS_DISK_ARG,
} from "./initramfs.ts";
import { defaultCacheDir, ensureSandboxKernel } from "./kernel-image.ts";
import { qemuCommand } from "./qemu.ts";
import { EXIT_MARKER, RESULT_MARKER, type Sandbox, type VmResult, type VmRunOptions } from "./types.ts";

export interface QemuSandboxOptions {
  cacheDir?: string;
  logger?: Logger;
}

/**
 * Console lines that mean the guest kernel is going down: a panic, or die()'s "<what>: <err>
 * [#<n>]" header of an Oops. Strict on purpose: a script that prints dmesg shows userspace
 * "general protection fault" traps too, which are not kernel crashes.
 */
const CRASH_PATTERNS = [/Kernel panic - not syncing/, /: [0-9a-f]{4} \[#\d+\]/, /BUG: unable to handle/];

/** SeaBIOS clears the screen and resets the terminal on the serial line. */
// biome-ignore lint/suspicious/noControlCharactersInRegex: escape sequences are what it removes
const TERMINAL_ESCAPES = /\x1b(\[[0-9;?]*[A-Za-z]|c)/g;

export function createQemuSandbox(options: QemuSandboxOptions = {}): Sandbox {
  const cacheDir = options.cacheDir ?? defaultCacheDir();
  const logger = options.logger;
  return {
    async run(run: VmRunOptions): Promise<VmResult> {
      run.signal?.throwIfAborted();
      const kernel = await ensureSandboxKernel({ cacheDir, logger });
      const work = mkdtempSync(join(tmpdir(), "schedctl-vm-"));
      try {
        const runLayer = join(work, "run.cpio.zst");
        await buildRunArchive(runLayer, run.script, run.files);
        const initrd = join(work, "initrd");
        let layers = await ensureInitramfsLayers(cacheDir, logger);
        // A process running another version of this code may have pruned it meanwhile: rebuild.
        await concatenate([layers.base, runLayer], initrd).catch(async (error: NodeJS.ErrnoException) => {
          if (error.code !== "ENOENT") throw error;
          layers = await ensureInitramfsLayers(cacheDir, logger);
          await concatenate([layers.base, runLayer], initrd);
        });
        const withNode = run.node !== false;
        const drives = [
          ...(withNode ? [{ file: layers.runtime, readOnly: true }] : []),
          ...(run.tools ? [{ file: layers.tools, readOnly: true }] : []),
        ];
        // virtio disks appear as vda, vdb, ... in the order they are given.
        const toolsArg = run.tools ? [`${TOOLS_DISK_ARG}vd${withNode ? "b" : "a"}`] : [];
        const command = qemuCommand({
          kernel: kernel.vmlinuz,
          initrd,
          append: [...(withNode ? [RUNTIME_DISK_ARG] : []), ...toolsArg, ...(run.kernelArgs ?? [])],
          drives,
          cpus: run.cpus,
          memoryMb: run.memoryMb,
          accel: run.accel,
          tcgThread: run.tcgThread,
        });
        return await runQemu(command, run, logger);
      } finally {
        rmSync(work, { recursive: true, force: true });
      }
    },
  };
}

/** Linux unpacks concatenated compressed cpio archives one after the other, later files winning. */
async function concatenate(parts: string[], out: string): Promise<void> {
  const sink = createWriteStream(out);
  for (const part of parts) await pipeline(createReadStream(part), sink, { end: false });
  await new Promise<void>((resolve, reject) =>
    sink.end((error?: Error | null) => (error ? reject(error) : resolve())),
  );
}

/**
 * Runs one qemu command to its end (or the timeout or abort), reading the console as the sandbox
 * does: RESULT_MARKER lines, EXIT_MARKER, crashes. For guests other than the sandbox's initramfs
 * (a root disk from qemuCommand), which print the same markers.
 */
export function runQemu(
  command: { file: string; args: string[] },
  run: Pick<VmRunOptions, "timeoutMs" | "onLine" | "signal" | "onSpawn" | "onStarted">,
  logger?: Logger,
): Promise<VmResult> {
  let started = Date.now();
  const console: string[] = [];
  const parser = new ConsoleParser();
  let timedOut = false;
  let aborted = false;

  logger?.debug({ command: [command.file, ...command.args].join(" ") }, "starting qemu");
  const launch = lockedLaunch(command);
  const child = spawn(launch.file, launch.args, { stdio: ["ignore", "pipe", "pipe"] });
  if (child.pid !== undefined) run.onSpawn?.(child.pid);
  const kill = () => {
    if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
  };
  let timer: NodeJS.Timeout | undefined;
  const startTimer = () => {
    started = Date.now();
    timer = setTimeout(() => {
      timedOut = true;
      kill();
    }, run.timeoutMs);
    run.onStarted?.();
  };
  if (!launch.locked) startTimer();
  const onAbort = () => {
    aborted = true;
    kill();
  };
  run.signal?.addEventListener("abort", onAbort, { once: true });
  // Whatever else happens to this process, qemu must not survive it.
  process.once("exit", kill);

  const onLine = (raw: string) => {
    const line = raw.replace(TERMINAL_ESCAPES, "").replace(/\r$/, "");
    console.push(line);
    parser.push(line, Date.now() - started);
    try {
      run.onLine?.(line);
    } catch (error) {
      logger?.warn({ err: String(error) }, "onLine callback threw; ignored");
    }
  };
  createInterface({ input: child.stdout, crlfDelay: Number.POSITIVE_INFINITY }).on("line", onLine);
  createInterface({ input: child.stderr, crlfDelay: Number.POSITIVE_INFINITY }).on("line", (l) => {
    if (timer === undefined && l === LOCK_ACQUIRED) return startTimer();
    onLine(`qemu: ${l}`);
  });

  return new Promise((resolve, reject) => {
    let spawnError: Error | undefined;
    child.on("error", (error) => {
      spawnError = error;
    });
    child.on("close", (code) => {
      if (timer !== undefined) clearTimeout(timer);
      run.signal?.removeEventListener("abort", onAbort);
      process.removeListener("exit", kill);
      if (spawnError) return reject(new Error(`cannot start qemu (${command.file}): ${spawnError.message}`));
      if (aborted) return reject(run.signal?.reason ?? new Error("sandbox run aborted"));
      const finished = parser.exitCode !== undefined;
      // A guest that stopped by itself without saying it finished went down: that is a crash.
      const crashed = parser.crashLine !== undefined || (!finished && !timedOut);
      const result: VmResult = {
        exitCode: parser.exitCode,
        results: parser.results,
        console: console.join("\n"),
        timedOut,
        crashed,
        durationMs: Date.now() - started,
        bootMs: parser.bootMs,
        crashLine:
          parser.crashLine ??
          (crashed ? `qemu exited (code ${code}) before the payload finished` : undefined),
      };
      logger?.debug({ ...result, console: undefined, results: result.results.length }, "qemu run finished");
      resolve(result);
    });
  });
}

const LOCK_ACQUIRED = "schedctl: sandbox lock acquired";

/**
 * Two emulated guests on a small host slow each other down and skew every figure they measure,
 * so one guest runs at a time on a host: qemu starts under an exclusive flock on
 * $SCHEDCTL_VM_LOCK (default <tmpdir>/schedctl-vm.lock), and a run's timeout counts from the
 * moment it holds the lock. setpriv outermost and innermost makes the kernel kill flock and
 * qemu if this process dies without running its cleanup.
 */
function lockedLaunch(command: { file: string; args: string[] }): {
  file: string;
  args: string[];
  locked: boolean;
} {
  const setpriv = which("setpriv");
  const flock = which("flock");
  const direct = setpriv ? [setpriv, "--pdeathsig", "KILL", command.file] : [command.file];
  if (!flock) return { file: direct[0]!, args: [...direct.slice(1), ...command.args], locked: false };
  const lockFile = process.env.SCHEDCTL_VM_LOCK || join(tmpdir(), "schedctl-vm.lock");
  const inner = [flock, lockFile, "sh", "-c", `echo '${LOCK_ACQUIRED}' >&2; exec "$@"`, "sh", ...direct];
  const outer = setpriv ? [setpriv, "--pdeathsig", "KILL", ...inner] : inner;
  return { file: outer[0]!, args: [...outer.slice(1), ...command.args], locked: true };
}

/** Reads the markers /init and the payload print, and the kernel's crash reports. */
export class ConsoleParser {
  readonly results: unknown[] = [];
  exitCode: number | undefined;
  bootMs: number | undefined;
  crashLine: string | undefined;

  push(line: string, elapsedMs: number): void {
    // Kernel messages can land in the middle of a guest line: look for markers anywhere.
    const result = line.indexOf(RESULT_MARKER);
    if (result >= 0) {
      const json = line.slice(result + RESULT_MARKER.length).trim();
      try {
        this.results.push(JSON.parse(json));
      } catch {
        this.results.push({ unparsed: json });
      }
      return;
    }
    if (this.bootMs === undefined && line.includes(BOOTED_MARKER)) this.bootMs = elapsedMs;
    const exit = line.indexOf(EXIT_MARKER);
    if (exit >= 0 && this.exitCode === undefined && this.crashLine === undefined) {
      const code = Number.parseInt(line.slice(exit + EXIT_MARKER.length), 10);
      if (Number.isInteger(code)) this.exitCode = code;
      return;
    }
    if (
      this.exitCode === undefined &&
      this.crashLine === undefined &&
      CRASH_PATTERNS.some((p) => p.test(line))
    ) {
      this.crashLine = line.trim();
    }
  }
}

export interface RetriedResult {
  result: VmResult;
  /** Boots that crashed and were run again. */
  reruns: number;
}

/**
 * Runs again when the guest crashed: under TCG about 3 boots in 14 die of an emulator fault
 * (`Oops: int3` while the kernel patches its own code), not of what the run did.
 */
export async function runRetryingCrashes(
  sandbox: Sandbox,
  options: VmRunOptions,
  maxAttempts = 3,
  logger?: Logger,
): Promise<RetriedResult> {
  for (let attempt = 1; ; attempt++) {
    const result = await sandbox.run(options);
    if (!result.crashed || attempt >= maxAttempts) return { result, reruns: attempt - 1 };
    logger?.warn({ attempt, crashLine: result.crashLine }, "guest crashed; running the boot again");
  }
}
