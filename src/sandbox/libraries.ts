// Copies a host binary into a guest tree together with the shared libraries ldd lists for it,
// each at its host path: how Debian's tools reach the sandbox's initramfs and its tools disk.
import { copyFileSync, existsSync, mkdirSync } from "node:fs";
import { dirname, join } from "node:path";
import { run } from "./exec.ts";

/** Copies a binary to `guestPath` and every library ldd lists for it to the same path in the guest. */
export async function copyWithLibraries(binary: string, root: string, guestPath: string): Promise<void> {
  const to = join(root, guestPath);
  mkdirSync(dirname(to), { recursive: true });
  copyFileSync(binary, to); // follows symlinks and keeps the mode
  await copyLibraries(binary, root);
}

/** Copies the libraries ldd lists for a binary to the same paths in the guest. */
export async function copyLibraries(binary: string, root: string): Promise<void> {
  const ldd = await run("ldd", [binary]).catch(() => ""); // static binaries: nothing to add
  for (const match of ldd.matchAll(/(\/\S+) \(0x/g)) {
    const lib = match[1]!;
    const libTo = join(root, lib);
    if (!existsSync(libTo)) {
      mkdirSync(dirname(libTo), { recursive: true });
      copyFileSync(lib, libTo);
    }
  }
}
