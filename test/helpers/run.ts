import { execFile } from "node:child_process";

export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs a program to its end and hands back its exit status and output (never throws on status). */
export function runProgram(
  file: string,
  args: string[],
  options: { env?: NodeJS.ProcessEnv; input?: string; timeoutMs?: number } = {},
): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = execFile(
      file,
      args,
      { env: options.env ?? process.env, timeout: options.timeoutMs ?? 20_000, maxBuffer: 16 * 1024 * 1024 },
      (error, stdout, stderr) => {
        const code = error ? (typeof error.code === "number" ? error.code : undefined) : 0;
        if (code === undefined) reject(new Error(`${file} ${args.join(" ")}: ${error?.message}\n${stderr}`));
        else resolve({ code, stdout, stderr });
      },
    );
    if (options.input !== undefined) child.stdin?.end(options.input);
  });
}

/** The same program run as the unprivileged "nobody" (uid and gid 65534, no other groups). */
export function runAsNobody(file: string, args: string[]): Promise<RunResult> {
  return runProgram("setpriv", ["--reuid=65534", "--regid=65534", "--clear-groups", file, ...args], {
    env: { PATH: process.env.PATH, HOME: "/nonexistent" },
  });
}
