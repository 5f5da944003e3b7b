import { existsSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { which } from "../sandbox/exec.ts";

// What the day needs before it can boot, each missing piece named with the command that gets it.
// Checked up front so that `schedctl demo` and the bench never start a fetch or a build the user
// did not ask for, and never fail deep inside a run.

export interface Missing {
  what: string;
  command: string;
}

export interface PreflightOptions {
  cacheDir: string;
  /** The PATH searched for qemu (default: this process's). */
  path?: string;
}

const KERNEL_FILES = ["vmlinuz", "vmlinux", "vmlinux.h", "config"];

/** The cached sched_ext kernel directories (complete ones only). */
export function cachedKernels(cacheDir: string): string[] {
  const root = join(cacheDir, "kernel");
  if (!existsSync(root)) return [];
  return readdirSync(root, { withFileTypes: true })
    .filter((d) => d.isDirectory() && /^\d/.test(d.name) && !d.name.includes(".tmp-"))
    .map((d) => join(root, d.name))
    .filter((dir) => KERNEL_FILES.every((f) => existsSync(join(dir, f))));
}

export function missingForDay(options: PreflightOptions): Missing[] {
  const missing: Missing[] = [];
  if (!which("qemu-system-x86_64", options.path ?? process.env.PATH ?? ""))
    missing.push({
      what: "qemu-system-x86_64 is not on PATH (the day runs in a sched_ext VM under qemu)",
      command: "sudo apt-get install qemu-system-x86   (or: sudo scripts/setup.sh)",
    });
  if (cachedKernels(options.cacheDir).length === 0)
    missing.push({
      what: `no sched_ext kernel is cached in ${join(options.cacheDir, "kernel")}`,
      command: `SCHEDCTL_CACHE_DIR=${options.cacheDir} scripts/run node src/sandbox/prepare.ts   (or: sudo scripts/setup.sh)`,
    });
  return missing;
}

export class PreflightError extends Error {
  override readonly name = "PreflightError";
  readonly missing: Missing[];
  constructor(missing: Missing[]) {
    super(
      `cannot run the day:\n${missing.map((m) => `  - ${m.what}\n    get it with: ${m.command}`).join("\n")}`,
    );
    this.missing = missing;
  }
}

export function assertReadyForDay(options: PreflightOptions): void {
  const missing = missingForDay(options);
  if (missing.length) throw new PreflightError(missing);
}
