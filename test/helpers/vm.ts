// Shared helpers for the VM suite (test/vm/**): one sandbox for the whole run, reruns of boots the
// emulator crashed, and a clear skip (or failure, with SCHEDCTL_REQUIRE_VM=1) when qemu or the
// sched_ext kernel is not available.
import { describe } from "vitest";
import { which } from "../../src/sandbox/exec.ts";
import { defaultCacheDir, ensureSandboxKernel } from "../../src/sandbox/kernel-image.ts";
import type { Sandbox, VmResult, VmRunOptions } from "../../src/sandbox/types.ts";
import { createQemuSandbox, runRetryingCrashes } from "../../src/sandbox/vm.ts";

let sandbox: Sandbox | undefined;

/** The suite's one sandbox (cache: $SCHEDCTL_CACHE_DIR or ~/.cache/schedctl). */
export function vmSandbox(): Sandbox {
  sandbox ??= createQemuSandbox({ cacheDir: defaultCacheDir() });
  return sandbox;
}

/** Why VM tests cannot run here, or undefined when they can. Fetches the kernel if needed. */
export async function vmUnavailableReason(): Promise<string | undefined> {
  if (!which("qemu-system-x86_64")) return "qemu-system-x86_64 is missing (apt-get install qemu-system-x86)";
  try {
    await ensureSandboxKernel({ cacheDir: defaultCacheDir() });
    return undefined;
  } catch (error) {
    return (error as Error).message;
  }
}

const unavailable = await vmUnavailableReason();
if (unavailable && process.env.SCHEDCTL_REQUIRE_VM) throw new Error(`VM suite required but: ${unavailable}`);
if (unavailable) console.warn(`skipping VM tests: ${unavailable}`);

/** describe() for tests that need the VM; skipped with the reason printed when it is unavailable. */
export const describeVm = describe.skipIf(unavailable !== undefined);

export interface VmRun extends VmResult {
  /** Boots the emulator crashed and that were run again. */
  reruns: number;
}

/** Runs a script in the VM, rerunning boots that the emulator crashed (default: up to 3 attempts). */
export async function runInVm(options: VmRunOptions, attempts = 3): Promise<VmRun> {
  const echo = process.env.SCHEDCTL_VM_ECHO
    ? (line: string) => process.stderr.write(`vm| ${line}\n`)
    : undefined;
  const { result, reruns } = await runRetryingCrashes(
    vmSandbox(),
    {
      ...options,
      onLine: (line) => {
        echo?.(line);
        options.onLine?.(line);
      },
    },
    attempts,
  );
  return { ...result, reruns };
}

/** The last lines of the console, for assertion messages. */
export function consoleTail(result: VmResult, lines = 40): string {
  return result.console.split("\n").slice(-lines).join("\n");
}

/** The results the guest reported whose `load` field is `name`. */
export function resultsOf<T extends Record<string, unknown>>(result: VmResult, name: string): T[] {
  return result.results.filter(
    (r): r is T => typeof r === "object" && r !== null && (r as Record<string, unknown>).load === name,
  );
}
