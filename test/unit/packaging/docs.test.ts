import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { generatedReferences } from "../../../scripts/docs.ts";
import { dbusTable } from "../../../src/dbus/reference.ts";

// The generated references are what `npm run docs` makes of the schema and the introspection
// XML today: a change to either without `npm run docs` fails here.

const ROOT = join(import.meta.dirname, "../../..");

describe("generated references", () => {
  for (const [path, text] of Object.entries(generatedReferences()))
    it(`${path} is up to date (run npm run docs)`, () => {
      expect(readFileSync(join(ROOT, path), "utf8")).toBe(text);
    });

  it("the configuration page names every section and key with its default", () => {
    const page = generatedReferences()["docs/configuration.md"] ?? "";
    expect(page).toContain("## `[verify.against_default]`");
    expect(page).toMatch(
      /\| `sample_interval_ms` \| integer \| `1000` \| >= 100, <= 60000 \| How often the host is sampled/,
    );
    expect(page).not.toMatch(/\|\s+\|\n/);
  });

  it("refuses an interface member nobody described", () => {
    const xml =
      '<node><interface name="org.schedctl1.Manager"><method name="Frobnicate"/></interface></node>';
    expect(() => dbusTable(xml)).toThrow(/Frobnicate has no description/);
  });
});
