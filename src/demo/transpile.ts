import { copyFileSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { stripTypeScriptTypes } from "node:module";
import { dirname, join } from "node:path";

/**
 * The project's src/ as plain JavaScript (and package.json beside it, which the daemon imports):
 * Node strips types through a WebAssembly compiler that runs ~20x slower under emulation, so the
 * guest gets them stripped already.
 */
export function transpileForGuest(projectRoot: string, out: string): void {
  const src = join(projectRoot, "src");
  for (const rel of readdirSync(src, { recursive: true }) as string[]) {
    if (!rel.endsWith(".ts")) continue;
    const code = stripTypeScriptTypes(readFileSync(join(src, rel), "utf8"), { mode: "strip" });
    const target = join(out, "src", rel.replace(/\.ts$/, ".js"));
    mkdirSync(dirname(target), { recursive: true });
    writeFileSync(target, code.replace(/(["'])(\.{1,2}\/[^"'\n]+)\.ts\1/g, "$1$2.js$1"));
  }
  copyFileSync(join(projectRoot, "package.json"), join(out, "package.json"));
}
