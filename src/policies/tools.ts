import { spawn } from "node:child_process";
import { accessSync, constants } from "node:fs";
import { delimiter, join } from "node:path";

// Finding and running the external tools of the BPF toolchain (clang, bpftool) and of external
// schedulers. A missing tool is a clear error naming the Debian package to install; a run that
// outlives its timeout is killed (bpftool blocks while a stalling scheduler is being ejected).

export class ToolMissingError extends Error {
  override readonly name = "ToolMissingError";
  readonly tool: string;
  constructor(tool: string, purpose: string, install: string) {
    super(`${tool} not found on PATH (needed ${purpose}); install it: apt-get install ${install}`);
    this.tool = tool;
  }
}

/** sbin directories hold bpftool on Debian but are not on every user's PATH. */
const SBIN_DIRS = ["/usr/local/sbin", "/usr/sbin", "/sbin"];

/**
 * The absolute path of an executable: a path as given, else searched on pathEnv (default: PATH
 * plus the sbin directories).
 */
export function findExecutable(name: string, pathEnv?: string): string | undefined {
  const dirs =
    pathEnv === undefined
      ? [...(process.env.PATH ?? "").split(delimiter), ...SBIN_DIRS]
      : pathEnv.split(delimiter);
  const candidates = name.includes("/") ? [name] : dirs.filter(Boolean).map((dir) => join(dir, name));
  for (const candidate of candidates) {
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // not here; keep looking
    }
  }
  return undefined;
}

export function requireTool(name: string, purpose: string, install: string, pathEnv?: string): string {
  const found = findExecutable(name, pathEnv);
  if (!found) throw new ToolMissingError(name, purpose, install);
  return found;
}

export interface ToolRun {
  /** Exit status; undefined when killed by a signal (e.g. on timeout). */
  code: number | undefined;
  stdout: string;
  stderr: string;
  timedOut: boolean;
}

/** Runs a tool to completion (or until timeoutMs, then SIGKILL); never rejects for a failing exit. */
export function runTool(
  file: string,
  args: string[],
  options: { timeoutMs: number; cwd?: string; signal?: AbortSignal },
): Promise<ToolRun> {
  return new Promise((resolve, reject) => {
    const child = spawn(file, args, { cwd: options.cwd, stdio: ["ignore", "pipe", "pipe"] });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill("SIGKILL");
    }, options.timeoutMs);
    options.signal?.addEventListener("abort", () => child.kill("SIGKILL"), { once: true });
    child.stdout.on("data", (chunk: Buffer) => out.push(chunk));
    child.stderr.on("data", (chunk: Buffer) => err.push(chunk));
    child.on("error", (error) => {
      clearTimeout(timer);
      reject(new Error(`cannot run ${file}: ${error.message}`));
    });
    child.on("close", (code) => {
      clearTimeout(timer);
      resolve({
        code: code ?? undefined,
        stdout: Buffer.concat(out).toString("utf8"),
        stderr: Buffer.concat(err).toString("utf8"),
        timedOut,
      });
    });
  });
}

/** The last `lines` lines of a tool's output, for error messages. */
export function tail(text: string, lines = 20): string {
  return text.trimEnd().split("\n").slice(-lines).join("\n");
}
