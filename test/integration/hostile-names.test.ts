import { type ChildProcess, spawn } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, rmdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ManagerClient } from "../../src/dbus/client.ts";
import { type PrivateBus, spawnObservingDaemon, startPrivateBus, stopChild } from "../helpers/dbus.ts";
import { runProgram } from "../helpers/run.ts";
import { until } from "../helpers/until.ts";

// A real cgroup and a real process with hostile names, seen by the real daemon (observe-only, on
// this host) over a private bus, and shown by `schedctl status` in a real terminal (tmux): the admin
// sees visible escapes, the screen is not cleared or coloured, no raw control byte is written.

const CLI = join(import.meta.dirname, "../../src/cli/main.ts");
const HOSTILE_CGROUP = "/hostile3/\x1b[2J\x1b[31mRED";
const HOSTILE_COMM = "\x1b]8;;x\x07ls\u202e";
const SHOWN_CGROUP = "/hostile3/\\x1b[2J\\x1b[31mRED";

let bus: PrivateBus;
let daemon: ChildProcess;
let client: ManagerClient;
let dir: string;
let hog: ChildProcess | undefined;
let cgroupDir: string | undefined;
const tmux = (...args: string[]) => runProgram("tmux", ["-L", `schedctl-test-${process.pid}`, ...args]);

/** The host's cgroup2 mount (hybrid hosts have it at /sys/fs/cgroup/unified). */
function cgroup2Mount(): string {
  const line = readFileSync("/proc/self/mountinfo", "utf8")
    .split("\n")
    .find((l) => l.split(" - ")[1]?.startsWith("cgroup2 "));
  if (!line) throw new Error("no cgroup2 mounted on this host");
  return line.split(" ")[4]!;
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "schedctl-hostile-"));
  // A real cgroup with the hostile name, a real busy process with a hostile comm inside it.
  cgroupDir = join(cgroup2Mount(), HOSTILE_CGROUP);
  mkdirSync(cgroupDir, { recursive: true });
  hog = spawn(
    process.execPath,
    ["-e", `require("node:fs").writeFileSync("/proc/self/comm", ${JSON.stringify(HOSTILE_COMM)}); for (;;);`],
    {
      stdio: "ignore",
    },
  );
  writeFileSync(join(cgroupDir, "cgroup.procs"), `${hog.pid}\n`);
  const config = join(dir, "schedctl.toml");
  writeFileSync(config, '[daemon]\nsample_interval_ms = 200\n[metrics]\ntextfile = "off"\n');
  bus = await startPrivateBus({ policy: "open" });
  daemon = spawnObservingDaemon({
    bus,
    config,
    stateDir: dir,
    stderr: process.env.DEBUG_HOSTILE ? "inherit" : "ignore",
  });
  client = new ManagerClient({ kind: "session", address: bus.address });
  await until("the hostile cgroup among the busiest", async () => {
    const status = await client.status().catch(() => undefined);
    return status?.profile?.topCgroups.some((c) => c.path === HOSTILE_CGROUP) ? true : undefined;
  });
}, 30_000);

afterAll(async () => {
  if (hog) await stopChild(hog);
  await tmux("kill-server").catch(() => undefined);
  client?.close();
  if (daemon) await stopChild(daemon);
  await bus?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
  if (cgroupDir) {
    rmdirSync(cgroupDir);
    rmdirSync(dirname(cgroupDir));
  }
});

describe("hostile names", () => {
  it("reach a D-Bus client exactly, as JSON that shows them escaped", async () => {
    const { code, stdout } = await runProgram(process.execPath, [
      CLI,
      "status",
      "--json",
      "--address",
      bus.address,
    ]);
    expect(code).toBe(0);
    const controls = [...Buffer.from(stdout)].filter((b) => (b < 0x20 && b !== 0x0a) || b === 0x7f);
    expect(controls).toEqual([]);
    expect(stdout).not.toContain("\u202e");
    expect(stdout).toContain('"/hostile3/\\u001b[2J\\u001b[31mRED"');
    const status = JSON.parse(stdout);
    expect(status.profile.topCgroups.map((c: { path: string }) => c.path)).toContain(HOSTILE_CGROUP);
    // The hog's comm, exact over the bus (other loads on this host may outrank it for a while).
    const hogSeen = await until("the hog among the busiest processes", async () => {
      const top = (await client.status()).profile?.topProcesses ?? [];
      return top.find((p) => p.pid === hog?.pid);
    });
    expect(hogSeen.comm).toBe(HOSTILE_COMM);
  });

  it("show as visible escapes in a real terminal, with no raw control byte written", async () => {
    const raw = join(dir, "pane.bin");
    // Run a few times: a sample taken while the fixture rewrites its files may lack the profile.
    const status = `${process.execPath} ${CLI} status --address '${bus.address}'`;
    const command = `for i in 1 2 3 4 5 6; do ${status}; sleep 0.5; done; sleep 60`;
    expect((await tmux("new-session", "-d", "-x", "250", "-y", "40", "-s", "hostile", command)).code).toBe(0);
    const screen = await until("the status screen", async () => {
      const pane = await tmux("capture-pane", "-p", "-J", "-e", "-S", "-", "-t", "hostile");
      return pane.stdout.includes("Busiest") ? pane.stdout : undefined;
    });
    // Not cleared: the header is still on screen above the line that names the cgroup.
    expect(screen).toMatch(/schedctld - sched_ext autopilot, mode \S*observe/);
    const busiest = screen.split("\n").find((l) => l.includes("Busiest")) ?? "";
    expect(busiest).toContain(SHOWN_CGROUP);
    // Not coloured: the pane holds no red attribute (capture-pane -e writes attributes as SGR).
    // biome-ignore lint/suspicious/noControlCharactersInRegex: an SGR sequence is what must be absent
    expect(busiest).not.toMatch(/\x1b\[[0-9;]*31m/);
    expect(screen).not.toContain("\x1b[2J");

    // The bytes the command writes to a terminal: a second pane, colour off, piped from its start.
    const plain = `sleep 1; export NO_COLOR=1; ${command}`;
    expect((await tmux("new-session", "-d", "-x", "250", "-y", "40", "-s", "plain", plain)).code).toBe(0);
    await tmux("pipe-pane", "-O", "-t", "plain", `cat > ${raw}`);
    const bytes = await until("the raw output", async () => {
      const b = (() => {
        try {
          return readFileSync(raw);
        } catch {
          return undefined;
        }
      })();
      return b?.includes("Busiest") ? b : undefined;
    });
    await new Promise((r) => setTimeout(r, 300));
    const written = readFileSync(raw);
    expect(bytes.length).toBeGreaterThan(0);
    const controls = [...written].filter((b) => (b < 0x20 && b !== 0x0a && b !== 0x0d) || b === 0x7f);
    expect(controls).toEqual([]);
    const direct = await runProgram(process.execPath, [CLI, "status", "--address", bus.address]);
    expect(direct.stdout).toContain(SHOWN_CGROUP);
    expect([...Buffer.from(direct.stdout)].filter((b) => (b < 0x20 && b !== 0x0a) || b === 0x7f)).toEqual([]);
    expect(written.toString()).toContain(SHOWN_CGROUP);
  }, 30_000);
});
