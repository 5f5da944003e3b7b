import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { parse as parseToml } from "smol-toml";
import { describe, expect, it } from "vitest";
import { z } from "zod";
import { loadConfig } from "../../../src/config/load.ts";
import { Config, defaultConfig } from "../../../src/config/schema.ts";
import { tempDir } from "../../helpers/tmp.ts";

// etc/schedctl/schedctl.toml is the file the package installs: every key of the schema, commented
// out with its default (`#key = value`). These tests read it with the daemon's own loader, so a
// key added to, renamed in or removed from src/config/schema.ts fails here until the file follows.

const SHIPPED = join(import.meta.dirname, "../../../etc/schedctl/schedctl.toml");
const KEY_LINE = /^#([a-z][a-z0-9_]*\s*=.*)$/;

/** The shipped file with every `#key = value` line made live. */
function uncommented(text: string): string {
  return text
    .split("\n")
    .map((line) => KEY_LINE.exec(line)?.[1] ?? line)
    .join("\n");
}

/** Dotted keys the schema accepts (section.key), optional ones included. */
function schemaKeys(): { all: string[]; optional: string[] } {
  const json = z.toJSONSchema(Config, { io: "input" }) as {
    properties: Record<string, { properties: Record<string, unknown>; required?: string[] }>;
  };
  const all: string[] = [];
  const optional: string[] = [];
  const defaults = defaultConfig() as Record<string, Record<string, unknown>>;
  for (const [section, table] of Object.entries(json.properties)) {
    for (const key of Object.keys(table.properties)) {
      all.push(`${section}.${key}`);
      if (defaults[section]?.[key] === undefined) optional.push(`${section}.${key}`);
    }
  }
  return { all: all.sort(), optional: optional.sort() };
}

function dottedKeys(config: Record<string, Record<string, unknown>>): string[] {
  return Object.entries(config)
    .flatMap(([section, table]) =>
      Object.entries(table)
        .filter(([, value]) => value !== undefined)
        .map(([key]) => `${section}.${key}`),
    )
    .sort();
}

describe("the shipped default configuration", () => {
  const text = readFileSync(SHIPPED, "utf8");

  it("loads as it is and changes nothing from the built-in defaults", () => {
    expect(loadConfig(SHIPPED).config).toEqual(defaultConfig());
  });

  it("shows every key of the schema, and only those", () => {
    const dir = tempDir();
    const live = join(dir, "schedctl.toml");
    writeFileSync(live, uncommented(text));
    // The loader rejects any key the schema does not know, naming it.
    loadConfig(live);
    const shown = dottedKeys(parseToml(uncommented(text)) as Record<string, Record<string, unknown>>);
    const missing = schemaKeys().all.filter((key) => !shown.includes(key));
    expect(missing, `keys missing from etc/schedctl/schedctl.toml: ${missing.join(", ")}`).toEqual([]);
  });

  it("gives each key with a default exactly that default", () => {
    const dir = tempDir();
    const live = join(dir, "schedctl.toml");
    writeFileSync(live, uncommented(text));
    const loaded = loadConfig(live).config as unknown as Record<string, Record<string, unknown>>;
    const defaults = defaultConfig() as unknown as Record<string, Record<string, unknown>>;
    const { optional } = schemaKeys();
    const differing = dottedKeys(loaded).filter((key) => {
      const [section = "", name = ""] = key.split(".");
      return (
        !optional.includes(key) &&
        JSON.stringify(loaded[section]?.[name]) !== JSON.stringify(defaults[section]?.[name])
      );
    });
    expect(differing, `keys whose shown value is not the schema's default: ${differing.join(", ")}`).toEqual(
      [],
    );
  });

  it("documents every key with a comment above it", () => {
    const lines = text.split("\n");
    const undocumented = lines.flatMap((line, i) => {
      if (!KEY_LINE.test(line)) return [];
      // A key belongs to the comment block above it, possibly shared with the keys just before.
      let j = i - 1;
      while (j >= 0 && KEY_LINE.test(lines[j] ?? "")) j--;
      return (lines[j] ?? "").startsWith("# ") ? [] : [line];
    });
    expect(undocumented).toEqual([]);
  });
});
