import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { builtinCatalogue, builtinPolicy, opsNameOf } from "../../../src/policies/catalogue.ts";
import { ManifestError, parseManifest } from "../../../src/policies/manifest.ts";
import { tempDir, writeTree } from "../../helpers/tmp.ts";

describe("the built-in catalogue", () => {
  it("holds the six policies, each with a valid manifest and a schedctl_ ops name", () => {
    const catalogue = builtinCatalogue();
    expect(catalogue.map((p) => p.manifest.name)).toEqual([
      "batch-order",
      "cgroup-boost",
      "fifo",
      "latency",
      "throughput",
      "vtime",
    ]);
    for (const policy of catalogue) {
      expect(policy.manifest.origin).toBe("builtin");
      expect(opsNameOf(policy.source)).toMatch(/^schedctl_[a-z_]+$/);
      expect(policy.source).toContain('SEC("license") = "GPL"');
      expect(policy.source).toMatch(/\.timeout_ms = \d+/);
      // every tunable the source uses is in the manifest (and the other way round)
      const used = [...policy.source.matchAll(/TUNABLE\((\w+?)(?:_count)?\)/g)].map((m) => m[1]);
      expect([...new Set(used)].sort()).toEqual(Object.keys(policy.manifest.tunables).sort());
    }
  });

  it("names the unknown policy and the known ones", () => {
    expect(() => builtinPolicy("nope")).toThrow(
      /no built-in policy "nope" \(known: batch-order, cgroup-boost/,
    );
  });

  it("rejects a manifest whose name does not match its file", () => {
    const dir = tempDir();
    writeTree(dir, {
      "a.bpf.c": "",
      "a.json": JSON.stringify({ ...builtinPolicy("fifo").manifest, name: "b" }),
    });
    expect(() => builtinCatalogue(dir)).toThrow(`${join(dir, "a.json")}: name "b" != "a"`);
  });
});

describe("parseManifest", () => {
  const valid = builtinPolicy("fifo").manifest;

  it("says which file and which field is wrong", () => {
    const bad = { ...valid, minKernel: "six", tunables: { Slice: valid.tunables.slice_us } };
    expect(() => parseManifest(JSON.stringify(bad), "x.json")).toThrow(ManifestError);
    expect(() => parseManifest(JSON.stringify(bad), "x.json")).toThrow(
      /^x\.json: invalid manifest: .*minKernel/,
    );
    expect(() => parseManifest("{", "y.json")).toThrow(/^y\.json: not valid JSON/);
  });

  it("refuses a default outside the tunable's own range", () => {
    const bad = { ...valid, tunables: { slice_us: { ...valid.tunables.slice_us, default: 1 } } };
    expect(() => parseManifest(JSON.stringify(bad), "z.json")).toThrow(
      "z.json: tunable slice_us: default outside",
    );
  });
});
