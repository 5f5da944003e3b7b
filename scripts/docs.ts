// npm run docs: writes the generated references (docs/configuration.md, docs/dbus.md);
// `npm run docs -- --check` fails, naming the file, when one is stale.

import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { configurationReference } from "../src/config/reference.ts";
import { dbusReference } from "../src/dbus/reference.ts";

const ROOT = join(import.meta.dirname, "..");

export function generatedReferences(): Record<string, string> {
  return {
    "docs/configuration.md": configurationReference(
      readFileSync(join(ROOT, "src/config/schema.ts"), "utf8"),
      readFileSync(join(ROOT, "etc/schedctl/schedctl.toml"), "utf8"),
    ),
    "docs/dbus.md": dbusReference(
      readFileSync(join(ROOT, "docs/dbus.md"), "utf8"),
      readFileSync(join(ROOT, "etc/dbus-1/interfaces/org.schedctl1.Manager.xml"), "utf8"),
    ),
  };
}

if (import.meta.main) {
  const check = process.argv.includes("--check");
  let stale = 0;
  for (const [path, text] of Object.entries(generatedReferences())) {
    const file = join(ROOT, path);
    let current = "";
    try {
      current = readFileSync(file, "utf8");
    } catch {}
    if (current === text) continue;
    if (check) {
      process.stderr.write(`${path} is stale: run npm run docs\n`);
      stale++;
    } else {
      writeFileSync(file, text);
      process.stdout.write(`wrote ${path}\n`);
    }
  }
  process.exitCode = stale ? 1 : 0;
}
