// The sandbox's runtime disk: a read-only ext4 image with the Node runtime and the project's
// production node_modules, mounted by the guest's /init at /runtime. A disk rather than an
// initramfs layer: under TCG the kernel took 7-20 s to unpack those 190 MB on every boot, while a
// disk is read only as far as Node touches it.
import { copyFileSync, cpSync, existsSync, mkdirSync } from "node:fs";
import { dirname, join, relative } from "node:path";
import type { Logger } from "../log/logger.ts";
import { buildDiskImage, fingerprint } from "./archive.ts";
import { run, which } from "./exec.ts";

const PROJECT_ROOT = join(import.meta.dirname, "..", "..");
/** Bumped when the way the disk is built changes, so a cached one is rebuilt. */
const LAYOUT = "runtime disk 1\n";

/** The runtime disk: the Node this process runs on (scripts/setup.sh's Node 26), production node_modules. */
export async function ensureRuntimeDisk(dir: string, node: string, logger?: Logger): Promise<string> {
  const lock = join(PROJECT_ROOT, "package-lock.json");
  const manifest = existsSync(lock) ? lock : join(PROJECT_ROOT, "package.json");
  const out = join(dir, `runtime-${fingerprint([node, manifest], LAYOUT + process.version)}.ext4`);
  if (existsSync(out)) return out;

  logger?.info({ out }, "building the sandbox's runtime disk (Node and production node_modules)");
  const packages = await productionPackages();
  await buildDiskImage(out, "schedctl-rt", async (root) => {
    mkdirSync(join(root, "bin"));
    copyFileSync(node, join(root, "bin/node"));
    // Its debug info is a third of the binary: strip it, the guest never needs it.
    const strip = which("strip");
    if (strip) await run(strip, [join(root, "bin/node")]);
    for (const pkg of packages) {
      cpSync(pkg, join(root, relative(PROJECT_ROOT, pkg)), {
        recursive: true,
        dereference: true,
        filter: (src) => keepInGuest(pkg, src),
      });
    }
  });
  return out;
}

/** Paths of the packages `npm ls --omit=dev` lists: production dependencies only. */
async function productionPackages(): Promise<string[]> {
  const npm = which("npm", `${dirname(process.execPath)}:${process.env.PATH ?? ""}`);
  const modules = join(PROJECT_ROOT, "node_modules");
  if (!npm) {
    // An installed schedctl (the .deb) ships production dependencies only, and no npm: take it all.
    return existsSync(modules) ? [modules] : [];
  }
  // npm ls exits non-zero on harmless problems (an extraneous package); its list is still complete.
  const out = await run(npm, ["ls", "--omit=dev", "--all", "--parseable"], {
    cwd: PROJECT_ROOT,
    allowFailure: true,
  }).catch((error: Error) => {
    throw new Error(`npm ls --omit=dev failed in ${PROJECT_ROOT}: ${error.message}`);
  });
  return out
    .split("\n")
    .filter((p) => p.includes("/node_modules/"))
    .sort();
}

/** Native sources and other platforms' prebuilt binaries are dead weight in the guest. */
function keepInGuest(pkg: string, src: string): boolean {
  const rel = relative(pkg, src);
  if (rel.startsWith("node_modules")) return false; // nested packages come on their own
  if (existsSync(join(pkg, "binding.gyp")) && /^(deps|src)(\/|$)/.test(rel)) return false;
  const prebuilt = /^prebuilds\/([^/]+)/.exec(rel)?.[1];
  return prebuilt === undefined || prebuilt.startsWith("linux-x64");
}
