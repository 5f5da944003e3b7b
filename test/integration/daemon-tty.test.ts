import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { writeCgroup, writeSystem } from "../helpers/proc-tree.ts";
import { runProgram } from "../helpers/run.ts";

// The real daemon on a fixture host whose kernel has no sched_ext, run for a few seconds twice:
// under a pseudo-terminal (util-linux `script`) it prints human lines, into a pipe JSON; either
// way the missing sched_ext is a warning that says how to fix it, not an error.

const DAEMON = join(import.meta.dirname, "../../src/daemon/main.ts");
let dir: string;

function daemonArgs(stateDir: string): string[] {
  return [
    DAEMON,
    "--foreground",
    "--config",
    join(dir, "schedctl.toml"),
    "--host-root",
    join(dir, "host"),
    "--state-dir",
    stateDir,
    "--bus",
    "none",
  ];
}
const quote = (word: string) => `'${word.replaceAll("'", "'\\''")}'`;
const env = { ...process.env, NO_COLOR: "1", SCHEDCTL_LOG_FORMAT: "" };

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), "schedctl-tty-"));
  writeSystem(join(dir, "host"), {
    busy: [500, 400],
    idle: [1500, 1600],
    ctxt: 9000,
    forks: 300,
    running: 2,
    blocked: 0,
  });
  writeCgroup(join(dir, "host"), "/", { usage: 1_000_000 });
  // This machine's node_exporter directory is not the fixture host's.
  writeFileSync(join(dir, "schedctl.toml"), '[metrics]\ntextfile = "off"\n');
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

// Long enough for the first records on a loaded 2-core machine (3 s was not); both runs at once.
const RUN_SECONDS = "12";

describe.concurrent("schedctld --foreground's log", () => {
  it("on a terminal: one human line per record, the missing sched_ext a warning with the fix", async () => {
    const command = ["timeout", "-s", "TERM", RUN_SECONDS, process.execPath, ...daemonArgs(join(dir, "tty"))]
      .map(quote)
      .join(" ");
    const { stdout } = await runProgram("script", ["-qec", command, "/dev/null"], { env });
    const lines = stdout.split(/\r?\n/).filter((l) => l.trim() !== "");
    expect(lines.length).toBeGreaterThan(2);
    for (const line of lines)
      expect(line).toMatch(/^\d\d:\d\d:\d\d (TRACE|DEBUG|INFO |WARN |ERROR|FATAL) \S/);
    const observe = lines.find((l) => l.includes("staying in mode observe"));
    expect(observe).toMatch(/^\d\d:\d\d:\d\d WARN {2}staying in mode observe: this kernel has no sched_ext/);
    expect(observe).toContain("CONFIG_SCHED_CLASS_EXT=y");
    expect(observe).toContain("mode=auto");
    expect(lines.some((l) => /^\S+ INFO {2}schedctld starting/.test(l))).toBe(true);
    expect(stdout).not.toContain('{"level"');
  }, 40_000);

  it("into a pipe: JSON, the same record at level 40", async () => {
    const { stderr } = await runProgram(
      "timeout",
      ["-s", "TERM", RUN_SECONDS, process.execPath, ...daemonArgs(join(dir, "pipe"))],
      {
        env,
      },
    );
    const records = stderr
      .split("\n")
      .filter((l) => l.startsWith("{"))
      .map((l) => JSON.parse(l) as { level: number; msg: string });
    expect(records.length).toBeGreaterThan(2);
    const observe = records.find((r) => r.msg.startsWith("staying in mode observe"));
    expect(observe?.level).toBe(40);
    expect(records.some((r) => r.level >= 50)).toBe(false);
  }, 40_000);
});
