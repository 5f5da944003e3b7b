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

  const kpi = (text: string) => GOOD.replace(/kpi = .*/, `kpi = ${text}`);
  const background = (load: string) => GOOD.replace(/(kpi = .*)/, `$1\nbackground = [${load}]`);
  const idleHas =
    "expected the command the phase runs in rounds (it has HAS; a phase without run is idle and has none of them)";
  // [what is wrong, the day file, the message]
  const refusals: [string, string, string | RegExp][] = [
    ["text that is not TOML", "[schedule\norder = 1", /^my\.toml: not TOML at line 1, column \d+: \S/],
    [
      "an unclosed array, at the line it is noticed",
      GOOD.replace('order = ["rest", "svc"]', 'order = ["rest", "svc"'),
      /^my\.toml: not TOML at line 5, column 1: \S/,
    ],
    ["a missing [schedule]", "[phases.a]\nseconds = 3\n", /^my\.toml: key schedule: .*expected object/],
    ["an unknown top-level key", `bogus = 1\n${GOOD}`, "my.toml: key bogus: unknown key bogus"],
    [
      "a phase's key of the wrong type",
      GOOD.replace("seconds = 5", 'seconds = "five"'),
      'my.toml: phase "rest": key seconds: expected number, received string',
    ],
    [
      "a fraction of a second",
      GOOD.replace("seconds = 5", "seconds = 5.5"),
      'my.toml: phase "rest": key seconds: expected int, received number',
    ],
    [
      "an unknown key in a phase",
      GOOD.replace("unit = ", "units = "),
      'my.toml: phase "svc": key units: unknown key units',
    ],
    [
      "a phase name that is not a name",
      GOOD.replace("phases.rest]", "phases.Rest]"),
      'my.toml: phase "Rest": expected a name of a-z, 0-9, _ and -, starting with a letter, got "Rest"',
    ],
    [
      "a unit that is not a cgroup path",
      GOOD.replace("system.slice/my.service", "../etc; rm -rf /"),
      /^my\.toml: phase "svc": key unit: expected a cgroup path/,
    ],
    [
      "a background load without its command",
      background('{ unit = "user.slice/hogs.scope" }'),
      'my.toml: phase "svc": key background[0].run: missing, expected string',
    ],
    [
      "a background load's key of the wrong type",
      background('{ unit = "a.slice", run = "x", repeat = "yes" }'),
      'my.toml: phase "svc": key background[0].repeat: expected boolean, received string',
    ],
    [
      "an unknown key in a background load",
      background('{ unit = "a.slice", run = "x", every = 2 }'),
      'my.toml: phase "svc": key background[0].every: unknown key every',
    ],
    [
      "a KPI of no known kind",
      kpi('{ wall = "yes" }'),
      /^my\.toml: phase "svc": key kpi: expected \{ parser = /,
    ],
    [
      "an unknown parser",
      kpi('{ parser = "nope", metric = "x" }'),
      'my.toml: phase "svc": key kpi.parser: expected a built-in parser (wakelat, buildsim, batchsim, cyclictest), got "nope"',
    ],
    [
      "a parser without its figure",
      kpi('{ parser = "cyclictest" }'),
      'my.toml: phase "svc": key kpi.metric: missing, expected string',
    ],
    [
      "a figure the parser does not give",
      kpi('{ parser = "cyclictest", metric = "p42_us" }'),
      'my.toml: phase "svc": key kpi.metric: expected one of p50_us, p99_us, max_us (parser cyclictest), got "p42_us"',
    ],
    [
      "a direction that is neither",
      GOOD.replace('better = "lower"', 'better = "less"'),
      'my.toml: phase "svc": key kpi.better: expected one of "lower"|"higher"',
    ],
    [
      "a wall time turned off",
      kpi("{ wall_time = false }"),
      'my.toml: phase "svc": key kpi.wall_time: expected true',
    ],
    [
      "a regex without a capture group",
      kpi('{ regex = "p99=[0-9]+", metric = "x", better = "lower" }'),
      'my.toml: phase "svc": key kpi.regex: expected a regular expression with one capture group',
    ],
    [
      "a phase of work without its command",
      GOOD.replace('run = "my-bench --seconds={seconds}"\n', ""),
      `my.toml: phase "svc": key run: ${idleHas.replace("HAS", "unit, kpi")}`,
    ],
    [
      "an empty command",
      GOOD.replace("my-bench --seconds={seconds}", "  "),
      'my.toml: phase "svc": key run: expected a command',
    ],
    [
      "a command without its unit",
      GOOD.replace('unit = "system.slice/my.service"\n', ""),
      'my.toml: phase "svc": key unit: expected the cgroup path the command runs in',
    ],
    [
      "a command without its KPI",
      GOOD.replace(/kpi = .*\n/, ""),
      'my.toml: phase "svc": key kpi: expected the KPI read from each round of run',
    ],
    [
      "an idle phase with a KPI",
      GOOD.replace("seconds = 5", "seconds = 5\nkpi = { wall_time = true }"),
      `my.toml: phase "rest": key run: ${idleHas.replace("HAS", "kpi")}`,
    ],
    [
      "a schedule naming a phase the file does not have",
      GOOD.replace('order = ["rest", "svc"]', 'order = ["rest", "svx"]'),
      'my.toml: key schedule.order[1]: expected one of the phases (rest, svc), got "svx"',
    ],
    [
      "a summary of a phase without a KPI",
      GOOD.replace('svc_ratio = { phase = "svc" }', 'svc_ratio = { phase = "rest" }'),
      'my.toml: key summary.svc_ratio.phase: expected a phase with a KPI, "rest" has none',
    ],
    [
      "a summary of a figure the phase does not give",
      GOOD.replace('{ phase = "svc" }', '{ phase = "svc", metric = "p50_ms" }'),
      'my.toml: key summary.svc_ratio.metric: expected one of p99_ms, got "p50_ms"',
    ],
  ];

  it.each(refusals)("refuses %s, naming the file, the phase and the key", (_, text, message) => {
    if (typeof message === "string") expect(refused(text)).toBe(message);
    else expect(refused(text)).toMatch(message);
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
