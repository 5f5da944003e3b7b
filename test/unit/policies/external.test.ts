import { chmodSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { argvFor, discoverExternal, externalRef, parseHelpOptions } from "../../../src/policies/external.ts";
import { TunableError } from "../../../src/policies/tunables.ts";
import { tempDir, writeTree } from "../../helpers/tmp.ts";

// The help text in clap's long format, as the scx schedulers print it.
const HELP = `A sched_ext scheduler that prioritizes interactive workloads

Usage: scx_flash [OPTIONS]

Options:
  -s, --slice-us <SLICE_US>
          Maximum scheduling slice duration in microseconds
          [default: 4096]
  -l, --slice-lag-us <SLICE_LAG_US>
          Maximum runtime penalty [default: 4096]
  -m, --primary-domain <PRIMARY_DOMAIN>
          Specifies the initial set of CPUs
  -c, --cpufreq
          Enable CPU frequency control
  --mode <MODE>
          Power mode [default: auto] [possible values: auto, performance, powersave]
  -v, --verbose
          Enable verbose output
  -h, --help
          Print help
`;

describe("external scx schedulers", () => {
  it("turns clap options into tunables: ints with defaults, flags as bools, choices as enums", () => {
    const { tunables, flags } = parseHelpOptions(HELP);
    expect(Object.keys(tunables).sort()).toEqual(["cpufreq", "mode", "slice_lag_us", "slice_us"]);
    expect(tunables.slice_us).toMatchObject({ type: "int", default: 4096, min: 0 });
    expect(tunables.slice_us?.description).toBe("Maximum scheduling slice duration in microseconds");
    expect(tunables.cpufreq).toMatchObject({ type: "bool", default: false });
    expect(tunables.mode).toMatchObject({
      type: "enum",
      default: "auto",
      options: ["auto", "performance", "powersave"],
    });
    expect(flags.slice_lag_us).toBe("--slice-lag-us");
  });

  it("finds installed schedulers on PATH and builds their command lines", async () => {
    const bin = tempDir();
    writeTree(bin, { scx_flash: `#!/bin/sh\ncat <<'EOF'\n${HELP}EOF\n` });
    chmodSync(join(bin, "scx_flash"), 0o755);
    const [flash, ...rest] = await discoverExternal(bin);
    expect(rest).toEqual([]);
    expect(flash?.manifest).toMatchObject({
      name: "scx_flash",
      origin: "external",
      workloads: ["latency", "mixed"],
    });
    expect(flash?.opsName).toBe("flash");
    expect(argvFor(flash!, { slice_us: 1000, cpufreq: true })).toEqual([
      join(bin, "scx_flash"),
      "--cpufreq",
      "--slice-us",
      "1000",
    ]);
    expect(() => argvFor(flash!, { slice_us: -1 })).toThrow(TunableError);
    const a = externalRef(flash!, { slice_us: 1000 });
    expect(a.hash).toMatch(/^[0-9a-f]{64}$/);
    expect(externalRef(flash!, { slice_us: 1000 }).hash).toBe(a.hash);
    expect(externalRef(flash!).hash).not.toBe(a.hash);
  });
});
