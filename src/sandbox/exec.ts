import { execFile } from "node:child_process";
import { accessSync, constants } from "node:fs";
import { delimiter, join } from "node:path";

/** A command that failed, with its output kept for the error message. */
export class CommandError extends Error {
  readonly stderr: string;
  constructor(command: string, code: number | string | null, stderr: string) {
    const tail = stderr.trim().split("\n").slice(-8).join("\n");
    super(`\`${command}\` failed (exit ${code ?? "?"})${tail ? `:\n${tail}` : ""}`);
    this.name = "CommandError";
    this.stderr = stderr;
  }
}

/**
 * Runs a command to completion and returns its standard output; rejects with CommandError
 * (with allowFailure, only when it printed nothing).
 */
export function run(
  file: string,
  args: string[],
  options: { cwd?: string; env?: NodeJS.ProcessEnv; maxBuffer?: number; allowFailure?: boolean } = {},
): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(
      file,
      args,
      {
        cwd: options.cwd,
        env: options.env,
        maxBuffer: options.maxBuffer ?? 64 * 1024 * 1024,
        encoding: "utf8",
      },
      (error, stdout, stderr) => {
        if (error && !(options.allowFailure && stdout)) {
          const code = (error as NodeJS.ErrnoException & { code?: number | string }).code ?? null;
          reject(new CommandError([file, ...args].join(" "), code, `${stderr}${error.message}`));
        } else {
          resolve(stdout);
        }
      },
    );
  });
}

/** sbin directories hold bpftool on Debian but are not on every user's PATH. */
const EXTRA_DIRS = ["/usr/local/sbin", "/usr/sbin", "/sbin"];

/** The absolute path of an executable on PATH (or an sbin directory), or undefined. */
export function which(name: string, path = process.env.PATH ?? ""): string | undefined {
  for (const dir of [...path.split(delimiter), ...EXTRA_DIRS]) {
    if (!dir) continue;
    const candidate = join(dir, name);
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // not here; keep looking
    }
  }
  return undefined;
}

/** Like which(), but a missing tool is an error naming the Debian package that provides it. */
export function requireTool(name: string, debianPackage: string, purpose: string): string {
  const found = which(name);
  if (!found) {
    throw new Error(
      `${name} is missing (needed ${purpose}); install it with \`apt-get install ${debianPackage}\` ` +
        "or run scripts/setup.sh",
    );
  }
  return found;
}
