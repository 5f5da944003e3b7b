import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { buildDay, dayFiles } from "../../../src/demo/day.ts";
import { BUILTIN_DAY, DayFileError, loadDayFile, parseDayFile } from "../../../src/demo/day-file.ts";
import { tempDir, writeTree } from "../../helpers/tmp.ts";

// A day file is checked whole before anything boots: each error names the file, the phase, the
// key and what was expected.

const GOOD = `
[schedule]
order = ["rest", "svc"]

[phases.rest]
seconds = 5

[phases.svc]
unit = "system.slice/my.service"
run = "my-bench --seconds={seconds}"
kpi = { regex = 'p99=([0-9.]+)', metric = "p99_ms", better = "lower" }

[summary]
svc_ratio = { phase = "svc" }
`;

const refused = (text: string) => {
  try {
    parseDayFile(text, "my.toml");
  } catch (error) {
    expect(error).toBeInstanceOf(DayFileError);
    return (error as Error).message;
  }
  throw new Error("the day file was accepted");
};

describe("a day file", () => {
  it("reads a user's day: phases, units, the KPI source and the summary", () => {
    const day = parseDayFile(GOOD, "my.toml");
    expect(day.phases.svc).toMatchObject({ unit: "system.slice/my.service", background: [], also: [] });
    expect(buildDay(day, { seed: 1, phaseSeconds: 20 }).map((p) => [p.name, p.seconds])).toEqual([
      ["rest", 5],
      ["svc", 20],
    ]);
  });

  it("ships the built-in and the third-party days, both valid", () => {
    expect(Object.keys(loadDayFile(BUILTIN_DAY).phases)).toEqual([
      "idle",
      "latency",
      "build",
      "batch",
      "mixed",
    ]);
    const third = loadDayFile(join(BUILTIN_DAY, "..", "third-party.toml"));
    // Only third-party tools: none of our own generators runs in it.
    for (const phase of Object.values(third.phases))
      expect(`${phase.run ?? ""} ${phase.background.map((b) => b.run).join(" ")}`).not.toMatch(
        /wakelat|buildsim|batchsim|cpuhog/,
      );
  });

  it("refuses what is not TOML, naming the file and the line", () => {
    expect(refused("[schedule\norder = 1")).toMatch(/^my\.toml: not TOML at line 1, column \d+: \S/);
    expect(refused(GOOD.replace('order = ["rest", "svc"]', 'order = ["rest", "svc"'))).toMatch(
      /^my\.toml: not TOML at line 5, column 1: \S/,
    );
  });

  it("refuses a missing or mistyped top-level key", () => {
    expect(refused("[phases.a]\nseconds = 3\n")).toMatch(/^my\.toml: key schedule: .*expected object/);
    expect(refused(`bogus = 1\n${GOOD}`)).toBe("my.toml: key bogus: unknown key bogus");
  });

  it("refuses a phase's key of the wrong type, naming the phase and the key", () => {
    expect(refused(GOOD.replace("seconds = 5", 'seconds = "five"'))).toMatch(
      /^my\.toml: phase "rest": key seconds: .*expected number/,
    );
    expect(refused(GOOD.replace("seconds = 5", "seconds = 5.5"))).toBe(
      'my.toml: phase "rest": key seconds: expected int, received number',
    );
    expect(refused(GOOD.replace("unit = ", "units = "))).toBe(
      'my.toml: phase "svc": key units: unknown key units',
    );
    expect(refused(GOOD.replace("phases.rest]", "phases.Rest]"))).toBe(
      'my.toml: phase "Rest": expected a name of a-z, 0-9, _ and -, starting with a letter, got "Rest"',
    );
  });

  it("refuses a background load of the wrong shape, naming its place in the phase", () => {
    const withBackground = (load: string) => GOOD.replace(/(kpi = .*)/, `$1\nbackground = [${load}]`);
    expect(refused(withBackground('{ unit = "user.slice/hogs.scope" }'))).toBe(
      'my.toml: phase "svc": key background[0].run: missing, expected string',
    );
    expect(refused(withBackground('{ unit = "a.slice", run = "x", repeat = "yes" }'))).toBe(
      'my.toml: phase "svc": key background[0].repeat: expected boolean, received string',
    );
    expect(refused(withBackground('{ unit = "a.slice", run = "x", every = 2 }'))).toBe(
      'my.toml: phase "svc": key background[0].every: unknown key every',
    );
  });

  it("refuses a unit that is not a cgroup path", () => {
    expect(refused(GOOD.replace("system.slice/my.service", "../etc; rm -rf /"))).toMatch(
      /^my\.toml: phase "svc": key unit: expected a cgroup path/,
    );
  });

  it("refuses a KPI of no known kind, an unknown parser and a figure the parser does not give", () => {
    expect(refused(GOOD.replace(/kpi = .*/, 'kpi = { wall = "yes" }'))).toMatch(
      /^my\.toml: phase "svc": key kpi: expected \{ parser = /,
    );
    expect(refused(GOOD.replace(/kpi = .*/, 'kpi = { parser = "nope", metric = "x" }'))).toBe(
      'my.toml: phase "svc": key kpi.parser: expected a built-in parser (wakelat, buildsim, batchsim, cyclictest), got "nope"',
    );
    expect(refused(GOOD.replace(/kpi = .*/, 'kpi = { parser = "cyclictest" }'))).toBe(
      'my.toml: phase "svc": key kpi.metric: missing, expected string',
    );
    expect(refused(GOOD.replace(/better = "lower"/, 'better = "less"'))).toBe(
      'my.toml: phase "svc": key kpi.better: expected one of "lower"|"higher"',
    );
    expect(refused(GOOD.replace(/kpi = .*/, "kpi = { wall_time = false }"))).toBe(
      'my.toml: phase "svc": key kpi.wall_time: expected true',
    );
    expect(refused(GOOD.replace(/kpi = .*/, 'kpi = { parser = "cyclictest", metric = "p42_us" }'))).toBe(
      'my.toml: phase "svc": key kpi.metric: expected one of p50_us, p99_us, max_us (parser cyclictest), got "p42_us"',
    );
    expect(
      refused(GOOD.replace(/kpi = .*/, 'kpi = { regex = "p99=[0-9]+", metric = "x", better = "lower" }')),
    ).toBe('my.toml: phase "svc": key kpi.regex: expected a regular expression with one capture group');
  });

  it("refuses a phase of work without its command, unit or KPI", () => {
    expect(refused(GOOD.replace('run = "my-bench --seconds={seconds}"\n', ""))).toBe(
      'my.toml: phase "svc": key run: expected the command the phase runs in rounds (it has unit, kpi; a phase without run is idle and has none of them)',
    );
    expect(refused(GOOD.replace("my-bench --seconds={seconds}", "  "))).toBe(
      'my.toml: phase "svc": key run: expected a command',
    );
    expect(refused(GOOD.replace('unit = "system.slice/my.service"\n', ""))).toBe(
      'my.toml: phase "svc": key unit: expected the cgroup path the command runs in',
    );
    expect(refused(GOOD.replace(/kpi = .*\n/, ""))).toBe(
      'my.toml: phase "svc": key kpi: expected the KPI read from each round of run',
    );
    expect(refused(GOOD.replace("seconds = 5", "seconds = 5\nkpi = { wall_time = true }"))).toBe(
      'my.toml: phase "rest": key run: expected the command the phase runs in rounds (it has kpi; a phase without run is idle and has none of them)',
    );
  });

  it("refuses a schedule or a summary naming a phase the file does not have", () => {
    expect(refused(GOOD.replace('order = ["rest", "svc"]', 'order = ["rest", "svx"]'))).toBe(
      'my.toml: key schedule.order[1]: expected one of the phases (rest, svc), got "svx"',
    );
    expect(refused(GOOD.replace('svc_ratio = { phase = "svc" }', 'svc_ratio = { phase = "rest" }'))).toBe(
      'my.toml: key summary.svc_ratio.phase: expected a phase with a KPI, "rest" has none',
    );
    expect(refused(GOOD.replace('{ phase = "svc" }', '{ phase = "svc", metric = "p50_ms" }'))).toBe(
      'my.toml: key summary.svc_ratio.metric: expected one of p99_ms, got "p50_ms"',
    );
  });

  it("refuses a file to copy into the guest that is not there, and resolves it beside the day file", () => {
    const dir = tempDir();
    const withFile = `${GOOD}\n[[phases.svc.files]]\nhost = "bin/my-bench"\nguest = "/usr/local/bin/my-bench"\n`;
    writeTree(dir, { "day.toml": withFile });
    expect(() => loadDayFile(join(dir, "day.toml"))).toThrow(
      `${join(dir, "day.toml")}: phase "svc": key files[0].host: expected an existing file, ${join(dir, "bin/my-bench")} is not there`,
    );
    writeTree(dir, { "bin/my-bench": "#!/bin/sh\n" });
    expect(dayFiles(loadDayFile(join(dir, "day.toml")))).toEqual([
      { hostPath: join(dir, "bin/my-bench"), guestPath: "/usr/local/bin/my-bench" },
    ]);
    expect(() => loadDayFile(join(dir, "none.toml"))).toThrow(/none\.toml: cannot read the day file/);
  });
});
