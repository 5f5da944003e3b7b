import { existsSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { readManifest } from "./manifest.ts";
import type { Manifest } from "./types.ts";

// The built-in catalogue: every bpf/policies/NAME.bpf.c with its NAME.json manifest.

/** A policy's source with its manifest: what compile() turns into an object. */
export interface PolicySource {
  manifest: Manifest;
  /** The C source text. */
  source: string;
  /** Where the source came from (for messages); generated sources have none. */
  sourcePath?: string;
}

/** bpf/ of the source tree, found from src/policies/ or from its built copy under dist/. */
function bpfRoot(): string {
  for (const up of ["../..", "../../.."]) {
    const dir = join(import.meta.dirname, up, "bpf");
    if (existsSync(join(dir, "include", "schedctl.h"))) return dir;
  }
  throw new Error(`cannot find bpf/include/schedctl.h above ${import.meta.dirname}`);
}

export const BPF_DIR = bpfRoot();
export const BUILTIN_POLICY_DIR = join(BPF_DIR, "policies");
/** Holds schedctl.h, the one header every policy includes besides vmlinux.h. */
export const BPF_INCLUDE_DIR = join(BPF_DIR, "include");

export function builtinCatalogue(dir = BUILTIN_POLICY_DIR): PolicySource[] {
  return readdirSync(dir)
    .filter((f) => f.endsWith(".bpf.c"))
    .sort()
    .map((file) => {
      const name = file.slice(0, -".bpf.c".length);
      const manifest = readManifest(join(dir, `${name}.json`));
      if (manifest.name !== name)
        throw new Error(`${join(dir, `${name}.json`)}: name "${manifest.name}" != "${name}"`);
      const sourcePath = join(dir, file);
      return { manifest, source: readFileSync(sourcePath, "utf8"), sourcePath };
    });
}

export function builtinPolicy(name: string, dir = BUILTIN_POLICY_DIR): PolicySource {
  const found = builtinCatalogue(dir).find((p) => p.manifest.name === name);
  if (!found) {
    const known = builtinCatalogue(dir).map((p) => p.manifest.name);
    throw new Error(`no built-in policy "${name}" (known: ${known.join(", ")})`);
  }
  return found;
}

/** The ops name a source registers (`.name = "schedctl_x"` in its ops table), if it says. */
export function opsNameOf(source: string): string | undefined {
  return /\.name\s*=\s*"([^"]{1,127})"/.exec(source)?.[1];
}
