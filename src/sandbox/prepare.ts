// Prepares everything a sandbox run needs, so that the first run does not pay for it: the
// sched_ext kernel (vmlinux, vmlinux.h), the compiled load generators and the cached initramfs
// layers. scripts/setup.sh runs it once; a packaged install can run it after installation.
//
//   node src/sandbox/prepare.ts [--refresh]   prints the kernel's and the layers' paths as JSON
import type { Logger } from "../log/logger.ts";
import { ensureInitramfsLayers, type InitramfsLayers } from "./initramfs.ts";
import { defaultCacheDir, ensureSandboxKernel, type SandboxKernel } from "./kernel-image.ts";

export async function prepareSandbox(
  options: { cacheDir?: string; logger?: Logger; refresh?: boolean } = {},
): Promise<{ kernel: SandboxKernel; initramfs: InitramfsLayers }> {
  const cacheDir = options.cacheDir ?? defaultCacheDir();
  const kernel = await ensureSandboxKernel({ cacheDir, logger: options.logger, refresh: options.refresh });
  const initramfs = await ensureInitramfsLayers(cacheDir, options.logger);
  return { kernel, initramfs };
}

if (import.meta.main) {
  const prepared = await prepareSandbox({ refresh: process.argv.includes("--refresh") });
  process.stdout.write(`${JSON.stringify(prepared, null, 2)}\n`);
}
