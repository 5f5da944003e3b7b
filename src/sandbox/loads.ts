// Our own load generators (src/sandbox/loads/*.c), compiled once into the cache for the guest's
// /usr/local/bin. C rather than Node: JIT-heavy code runs about 20x slower under TCG.
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync } from "node:fs";
import { basename, join } from "node:path";
import type { Logger } from "../log/logger.ts";
import { requireTool, run } from "./exec.ts";

const SOURCES = join(import.meta.dirname, "loads");

/** name -> host path of each compiled load generator. */
export type LoadBinaries = Record<string, string>;

export async function ensureLoads(cacheDir: string, logger?: Logger): Promise<LoadBinaries> {
  const programs = readdirSync(SOURCES).filter((f) => f.endsWith(".c"));
  const headers = readdirSync(SOURCES).filter((f) => f.endsWith(".h"));
  const hash = createHash("sha256");
  for (const f of [...programs, ...headers].sort()) hash.update(f).update(readFileSync(join(SOURCES, f)));
  const dir = join(cacheDir, "loads", hash.digest("hex").slice(0, 16));
  const binaries = Object.fromEntries(programs.map((f) => [basename(f, ".c"), join(dir, basename(f, ".c"))]));
  if (Object.values(binaries).every((path) => existsSync(path))) return binaries;

  const gcc = requireTool("gcc", "gcc libc6-dev", "to compile the sandbox's load generators");
  const work = `${dir}.tmp-${process.pid}`;
  mkdirSync(work, { recursive: true });
  try {
    for (const [name] of Object.entries(binaries)) {
      logger?.debug({ name }, "compiling load generator");
      // Static: the guest then needs no libraries for them.
      await run(gcc, [
        "-O2",
        "-Wall",
        "-static",
        "-pthread",
        "-o",
        join(work, name),
        join(SOURCES, `${name}.c`),
        "-lm",
      ]);
    }
    mkdirSync(dir, { recursive: true });
    for (const name of Object.keys(binaries)) renameSync(join(work, name), join(dir, name));
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
  return binaries;
}
