import { type ChildProcess, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { type Clock, systemClock } from "../host/clock.ts";
import type { Host } from "../host/host.ts";
import type { Logger } from "../log/logger.ts";
import { requireTool, runTool, type ToolRun, tail } from "../policies/tools.ts";
import { KmsgReader } from "./kmsg.ts";
import { readSchedExtStatus } from "./sysfs.ts";
import {
  type Attachment,
  type Kernel,
  type KernelEvent,
  type Loadable,
  PROBATION_MARKER,
  type SchedExtStatus,
  type VerifyLoadResult,
} from "./types.ts";

/*
 * The real Kernel: sched_ext state from sysfs, policies attached through links pinned under
 * /sys/fs/bpf/schedctl/ with `bpftool struct_ops register` (removing the pin detaches), external
 * schedulers as supervised child processes, verify-only loads with `bpftool prog loadall`, and
 * the kernel's reasons from /dev/kmsg.
 *
 *   const kernel = createKernel({ host });
 *   const v = await kernel.verifyLoad(built.objectPath);           // v.ok, v.log (verifier excerpt)
 *   await kernel.attach({ kind: "object", hash, objectPath, opsName });  // waits for "enabled"
 *   await kernel.detach();                                           // waits for "disabled"
 *
 * attach() throws AttachError (reason from the kernel log, bpftool's output) and leaves nothing
 * attached or pinned; bpftool runs as a child with a timeout, since it blocks while a stalling
 * scheduler is being ejected. Every answer is what the kernel reports, never what was asked.
 */

export class AttachError extends Error {
  override readonly name = "AttachError";
  /** The kernel's reason (`disabled (REASON)` in the kernel log), when it gave one. */
  readonly reason: string | undefined;
  readonly log: string;
  constructor(message: string, reason: string | undefined, log: string) {
    super(`${message}${reason ? ` (kernel: ${reason})` : ""}${log ? `\n${log}` : ""}`);
    this.reason = reason;
    this.log = log;
  }
}

export interface KernelOptions {
  host: Host;
  /** bpftool executable (default: found on PATH or in /usr/sbin). */
  bpftool?: string;
  /** Where to look for bpftool (default: PATH and the sbin directories). */
  pathEnv?: string;
  /** bpffs directory of schedctl's pinned links. */
  pinRoot?: string;
  /** bpffs directory for verify-only loads (removed after each). */
  verifyRoot?: string;
  clock?: Clock;
  logger?: Logger;
}

const POLL_MS = 20;
const DEFAULT_ATTACH_MS = 15_000;
const DEFAULT_DETACH_MS = 10_000;
const VERIFY_TIMEOUT_MS = 120_000;

interface Current {
  attachment: Attachment;
  pinDir?: string;
  child?: ChildProcess;
}

export function createKernel(options: KernelOptions): Kernel {
  return new SysfsKernel(options);
}

class SysfsKernel implements Kernel {
  readonly #host: Host;
  readonly #clock: Clock;
  readonly #logger: Logger | undefined;
  readonly #pinRoot: string;
  readonly #verifyRoot: string;
  readonly #bpftoolPath: string | undefined;
  readonly #pathEnv: string | undefined;
  readonly #kmsg: KmsgReader;
  /** Events read while waiting inside attach/detach, handed out by the next readEvents(). */
  #pending: KernelEvent[] = [];
  #current: Current | undefined;

  constructor(options: KernelOptions) {
    this.#host = options.host;
    this.#clock = options.clock ?? systemClock;
    this.#logger = options.logger;
    this.#pinRoot = options.pinRoot ?? "/sys/fs/bpf/schedctl";
    this.#verifyRoot = options.verifyRoot ?? "/sys/fs/bpf/schedctl-verify";
    this.#bpftoolPath = options.bpftool;
    this.#pathEnv = options.pathEnv;
    this.#kmsg = new KmsgReader(this.#host, () => this.#clock.now());
  }

  status(): SchedExtStatus {
    return readSchedExtStatus(this.#host);
  }

  async verifyLoad(objectPath: string): Promise<VerifyLoadResult> {
    const bpftool = this.#bpftool();
    const dir = `${this.#verifyRoot}/${randomBytes(6).toString("hex")}`;
    this.#host.mkdirp(dir);
    let run: ToolRun;
    try {
      run = await runTool(bpftool, ["-d", "prog", "loadall", objectPath, this.#host.resolve(dir)], {
        timeoutMs: VERIFY_TIMEOUT_MS,
      });
    } finally {
      this.#host.remove(dir);
    }
    if (run.code === 0) return { ok: true, log: "" };
    return { ok: false, log: run.timedOut ? "bpftool prog loadall timed out" : verifierExcerpt(run.stderr) };
  }

  async attach(
    loadable: Loadable,
    options: { timeoutMs?: number; probation?: boolean } = {},
  ): Promise<Attachment> {
    const before = this.status();
    if (!before.supported)
      throw new AttachError("this kernel has no sched_ext (/sys/kernel/sched_ext missing)", undefined, "");
    if (before.state !== "disabled") {
      throw new AttachError(
        `cannot attach ${loadable.opsName}: sched_ext is ${before.state} (ops ${before.ops ?? "?"})`,
        undefined,
        "",
      );
    }
    const timeoutMs = options.timeoutMs ?? DEFAULT_ATTACH_MS;
    return loadable.kind === "object"
      ? this.#attachObject(loadable, before.enableSeq, timeoutMs, options.probation === true)
      : this.#attachProcess(loadable, before.enableSeq, timeoutMs);
  }

  async detach(options: { timeoutMs?: number } = {}): Promise<void> {
    const timeoutMs = options.timeoutMs ?? DEFAULT_DETACH_MS;
    const current = this.#current;
    this.#current = undefined;
    if (current?.child && current.child.exitCode === null && current.child.signalCode === null) {
      current.child.kill("SIGINT");
    }
    // Every pin of ours goes, not only the current one: after a restart this clears what a
    // previous run left behind.
    for (const entry of this.#host.listDir(this.#pinRoot) ?? [])
      this.#host.remove(`${this.#pinRoot}/${entry.name}`);
    const disabled = await this.#waitFor((s) => s.state === "disabled" || !s.supported, timeoutMs);
    if (!disabled && current?.child) {
      current.child.kill("SIGKILL");
      if (await this.#waitFor((s) => s.state === "disabled", 2000)) return;
    }
    if (!disabled) {
      const s = this.status();
      throw new AttachError(
        `detach: sched_ext still ${s.state} (ops ${s.ops ?? "?"}) after ${timeoutMs} ms`,
        undefined,
        "",
      );
    }
  }

  confirm(): void {
    const pinDir = this.#current?.pinDir;
    if (pinDir) this.#host.remove(`${pinDir}/${PROBATION_MARKER}`);
  }

  pinnedLinks(): string[] {
    const found: string[] = [];
    const walk = (dir: string) => {
      for (const entry of this.#host.listDir(dir) ?? []) {
        const path = `${dir}/${entry.name}`;
        if (entry.isDirectory) walk(path);
        else found.push(path);
      }
    };
    walk(this.#pinRoot);
    return found.sort();
  }

  readEvents(): KernelEvent[] {
    const events = [...this.#pending, ...this.#kmsg.read()];
    this.#pending = [];
    return events;
  }

  async #attachObject(
    loadable: Loadable & { kind: "object" },
    seq: number,
    timeoutMs: number,
    probation: boolean,
  ): Promise<Attachment> {
    const bpftool = this.#bpftool();
    const pinDir = `${this.#pinRoot}/${loadable.hash.slice(0, 16)}`;
    this.#host.remove(pinDir);
    // Marked before the link exists: a crash at any point after leaves it marked.
    this.#host.mkdirp(probation ? `${pinDir}/${PROBATION_MARKER}` : pinDir);
    let finished: ToolRun | undefined;
    let failed: Error | undefined;
    const abort = new AbortController();
    // Not awaited: bpftool may block (a stalling scheduler) until the kernel ejects it.
    const registering = runTool(
      bpftool,
      ["struct_ops", "register", loadable.objectPath, this.#host.resolve(pinDir)],
      {
        timeoutMs: timeoutMs + 30_000,
        signal: abort.signal,
      },
    ).then(
      (run) => {
        finished = run;
      },
      (error: Error) => {
        failed = error;
      },
    );
    // Done when it is enabled and bpftool has pinned the link and exited (the kernel reports
    // enabled before the pin exists), when bpftool failed, or when it was enabled and is gone
    // again (ejected before this process could look: a stalling policy starves us too).
    const enabled = await this.#waitFor(
      (s) =>
        (s.state === "enabled" &&
          s.enableSeq !== seq &&
          s.ops === loadable.opsName &&
          finished?.code === 0) ||
        (s.state === "disabled" && s.enableSeq !== seq) ||
        !!failed ||
        (!!finished && finished.code !== 0),
      timeoutMs,
    );
    const now = this.status();
    if (enabled && now.state === "enabled" && now.ops === loadable.opsName && finished?.code === 0) {
      const attachment = {
        hash: loadable.hash,
        opsName: loadable.opsName,
        handle: pinDir,
        attachedAt: this.#clock.monotonic(),
      };
      this.#current = { attachment, pinDir };
      this.#logger?.info({ ops: now.ops, enableSeq: now.enableSeq, pin: pinDir }, "policy attached");
      return attachment;
    }
    // A bpftool still running holds the only reference to a link it has not pinned yet: killing
    // it releases the link, and the pin directory goes after it.
    abort.abort();
    await registering;
    this.#host.remove(pinDir);
    await this.#waitFor((s) => s.state === "disabled", 5000);
    const output = failed
      ? failed.message
      : finished
        ? verifierExcerpt(`${finished.stdout}\n${finished.stderr}`)
        : "";
    throw new AttachError(
      `cannot attach ${loadable.opsName}: ${describe(now, finished)}`,
      this.#reason(loadable.opsName),
      output,
    );
  }

  async #attachProcess(
    loadable: Loadable & { kind: "process" },
    seq: number,
    timeoutMs: number,
  ): Promise<Attachment> {
    const [file, ...args] = loadable.argv;
    if (!file) throw new AttachError(`cannot attach ${loadable.opsName}: empty command line`, undefined, "");
    const child = spawn(file, args, { stdio: ["ignore", "ignore", "pipe"] });
    let stderr = "";
    let spawnError: Error | undefined;
    child.stderr?.on("data", (chunk: Buffer) => {
      stderr = (stderr + chunk.toString("utf8")).slice(-8000);
    });
    child.on("error", (error) => {
      spawnError = error;
    });
    const exited = () => child.exitCode !== null || child.signalCode !== null || spawnError !== undefined;
    const matches = (s: SchedExtStatus) =>
      s.state === "enabled" && s.enableSeq !== seq && !!s.ops?.startsWith(loadable.opsName);
    await this.#waitFor((s) => matches(s) || exited(), timeoutMs);
    const now = this.status();
    if (matches(now) && !exited()) {
      const attachment = {
        hash: loadable.hash,
        opsName: now.ops!,
        handle: String(child.pid),
        attachedAt: this.#clock.monotonic(),
      };
      this.#current = { attachment, child };
      this.#logger?.info({ ops: now.ops, pid: child.pid }, "external scheduler attached");
      return attachment;
    }
    if (!exited()) child.kill("SIGKILL");
    await this.#waitFor((s) => s.state === "disabled", 5000);
    const how = spawnError
      ? `cannot start ${file}: ${spawnError.message}`
      : exited()
        ? `${file} exited (${child.exitCode ?? child.signalCode})`
        : "timed out";
    throw new AttachError(
      `cannot attach ${loadable.opsName}: ${how}`,
      this.#reason(loadable.opsName),
      tail(stderr),
    );
  }

  /** Polls the sysfs state until the predicate holds (true) or the time is up (false). */
  async #waitFor(predicate: (s: SchedExtStatus) => boolean, timeoutMs: number): Promise<boolean> {
    const deadline = this.#clock.monotonic() + timeoutMs;
    for (;;) {
      if (predicate(this.status())) return true;
      if (this.#clock.monotonic() >= deadline) return false;
      await this.#clock.sleep(POLL_MS);
    }
  }

  /** The kernel's latest reason for this scheduler, keeping every event for readEvents(). */
  #reason(opsName: string): string | undefined {
    this.#pending.push(...this.#kmsg.read());
    const mine = this.#pending.filter(
      (e) => e.ops === opsName && (e.kind === "disabled" || e.kind === "error"),
    );
    const disabled = mine.filter((e) => e.kind === "disabled").at(-1);
    const details = mine.filter((e) => e.kind === "error").map((e) => e.reason);
    if (!disabled) return details.at(-1);
    return details.length ? `${disabled.reason}: ${details.join("; ")}` : disabled.reason;
  }

  #bpftool(): string {
    return (
      this.#bpftoolPath ??
      requireTool("bpftool", "to load sched_ext policies", "-t bookworm-backports bpftool", this.#pathEnv)
    );
  }
}

function describe(status: SchedExtStatus, run: ToolRun | undefined): string {
  if (run && run.code !== 0) return `bpftool struct_ops register failed (exit ${run.code ?? "killed"})`;
  if (status.state === "enabled") return `another scheduler (${status.ops}) is enabled`;
  return `the kernel did not enable it (state ${status.state})`;
}

/**
 * The verifier's own words from bpftool -d's libbpf log: the last program's log between
 * BEGIN/END PROG LOAD LOG, its tail (where the refusal and the "Suggestion:" are), and
 * libbpf's error lines.
 */
export function verifierExcerpt(stderr: string, maxLines = 40): string {
  const lines = stderr.split("\n");
  const begin = lines.findLastIndex((l) => l.includes("-- BEGIN PROG LOAD LOG --"));
  const errors = lines.filter(
    (l) =>
      /^libbpf: .*(failed|error|-\d+)/i.test(l) &&
      !l.includes("LOAD LOG") &&
      !/not resolved|skipping/.test(l),
  );
  const other = lines.filter((l) => /^Error: /.test(l));
  let log: string[] = [];
  if (begin >= 0) {
    const end = lines.findIndex((l, i) => i > begin && l.includes("-- END PROG LOAD LOG --"));
    const body = lines.slice(begin + 1, end > begin ? end : undefined);
    log = body.length > maxLines ? [`[... ${body.length - maxLines} lines]`, ...body.slice(-maxLines)] : body;
  }
  return [...log, ...errors.slice(-5), ...other].join("\n").trim() || tail(stderr);
}
