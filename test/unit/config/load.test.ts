import { describe, expect, it } from "vitest";
import { ConfigError, loadConfig } from "../../../src/config/load.ts";
import { defaultConfig } from "../../../src/config/schema.ts";
import { tempDir, writeTree } from "../../helpers/tmp.ts";

describe("loadConfig", () => {
  it("uses built-in defaults when no file exists", () => {
    const dir = tempDir();
    const { config, files } = loadConfig(dir);
    expect(files).toEqual([]);
    expect(config).toEqual(defaultConfig());
    expect(config.daemon.mode).toBe("auto");
    expect(config.daemon.sample_interval_ms).toBe(1000);
  });

  it("applies drop-ins in lexical order after the main file, key by key", () => {
    const dir = tempDir();
    writeTree(dir, {
      "schedctl.toml": "[daemon]\nmode = 'observe'\nsample_interval_ms = 500\n",
      "conf.d/20-later.toml": "[daemon]\nsample_interval_ms = 2000\n",
      "conf.d/10-first.toml": "[daemon]\nsample_interval_ms = 700\n[observe]\nring_size = 100\n",
      "conf.d/ignored.conf": "not toml at all [",
    });
    const { config, files } = loadConfig(dir);
    expect(files.map((f) => f.slice(dir.length))).toEqual([
      "/schedctl.toml",
      "/conf.d/10-first.toml",
      "/conf.d/20-later.toml",
    ]);
    expect(config.daemon.mode).toBe("observe");
    expect(config.daemon.sample_interval_ms).toBe(2000);
    expect(config.observe.ring_size).toBe(100);
  });

  it("names the file, the key and what was expected for an invalid value", () => {
    const dir = tempDir();
    writeTree(dir, {
      "schedctl.toml": "[daemon]\nmode = 'auto'\n",
      "conf.d/50-bad.toml": "[daemon]\nsample_interval_ms = -5\n",
    });
    expect(() => loadConfig(dir)).toThrow(ConfigError);
    expect(() => loadConfig(dir)).toThrow(
      /50-bad\.toml:2:1: daemon\.sample_interval_ms: .*(>|positive|greater)/,
    );
  });

  it("refuses an unknown key and says which file has it", () => {
    const dir = tempDir();
    writeTree(dir, { "schedctl.toml": "[daemon]\nmoed = 'auto'\n" });
    expect(() => loadConfig(dir)).toThrow(/schedctl\.toml:2:1: unknown key daemon\.moed/);
  });

  it("refuses a wrong type and a bad enum value", () => {
    const dir = tempDir();
    writeTree(dir, { "schedctl.toml": "[daemon]\nmode = 'turbo'\n" });
    expect(() => loadConfig(dir)).toThrow(/daemon\.mode: .*auto.*observe.*manual/);
    writeTree(dir, { "schedctl.toml": "[observe]\nring_size = 'big'\n" });
    expect(() => loadConfig(dir)).toThrow(/schedctl\.toml:2:1: observe\.ring_size: .*number/);
  });

  it("reports a TOML syntax error with the file", () => {
    const dir = tempDir();
    writeTree(dir, { "schedctl.toml": "[daemon\nmode = 1\n" });
    expect(() => loadConfig(dir)).toThrow(/schedctl\.toml:\d+:\d+: not valid TOML/);
  });

  it("accepts a single file path and refuses a missing one", () => {
    const dir = tempDir();
    writeTree(dir, { "only.toml": "[detect]\nmin_dwell_samples = 7\n" });
    expect(loadConfig(`${dir}/only.toml`).config.detect.min_dwell_samples).toBe(7);
    expect(() => loadConfig(`${dir}/missing.toml`)).toThrow(/missing\.toml: no such file/);
  });

  it("names file, line, column and key for each kind of bad value, nested and indented too", () => {
    const dir = tempDir();
    writeTree(dir, {
      "schedctl.toml": "# comment\n[daemon]\nmode = 'auto'\n\n[detect]\n  threshold = -1\n",
    });
    expect(() => loadConfig(dir)).toThrow(/schedctl\.toml:6:3: detect\.threshold: /);
    writeTree(dir, { "schedctl.toml": "[daemon]\nmode = 'auto'\n[observe]\ncgroup_roots = 'x'\n" });
    expect(() => loadConfig(dir)).toThrow(/schedctl\.toml:4:1: observe\.cgroup_roots: /);
    writeTree(dir, { "schedctl.toml": "[daemon]\nmode = 'auto\n" });
    expect(() => loadConfig(dir)).toThrow(/schedctl\.toml:2:13: not valid TOML: /);
  });
});
