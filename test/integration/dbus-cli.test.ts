import { type ChildProcess, spawn } from "node:child_process";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { firstLine, type PrivateBus, startPrivateBus, stopChild } from "../helpers/dbus.ts";
import { runProgram } from "../helpers/run.ts";
import { tempDir, writeTree } from "../helpers/tmp.ts";

// `schedctl` against the service running in another process, over a private bus.

const CLI = join(import.meta.dirname, "../../src/cli/main.ts");
const ENTRY = join(import.meta.dirname, "dbus-service-entry.ts");

let bus: PrivateBus;
let service: ChildProcess | undefined;

const schedctl = (...args: string[]) =>
  runProgram(process.execPath, [CLI, ...args, "--address", bus.address], {
    env: { ...process.env, NO_COLOR: "" },
  });
const asNobody = (...args: string[]) =>
  runProgram(
    "setpriv",
    [
      "--reuid=65534",
      "--regid=65534",
      "--clear-groups",
      process.execPath,
      CLI,
      ...args,
      "--address",
      bus.address,
    ],
    {
      env: { PATH: process.env.PATH },
    },
  );

beforeAll(async () => {
  bus = await startPrivateBus({ policy: "open" });
});

afterAll(async () => {
  service?.stdin?.end();
  if (service) await stopChild(service);
  await bus?.stop();
});

describe("without a daemon", () => {
  it("prints each command's usage, summary and exit statuses on --help, with status 0 and no bus", async () => {
    for (const command of [
      "status",
      "policies",
      "history",
      "explain",
      "switch",
      "rollback",
      "mode",
      "verify",
      "reload",
      "mcp",
      "record",
      "demo",
    ]) {
      const { code, stdout, stderr } = await runProgram(process.execPath, [CLI, command, "--help"]);
      expect({ command, code, stderr }).toEqual({ command, code: 0, stderr: "" });
      expect(stdout).toMatch(new RegExp(`^usage: schedctl ${command}\\b`));
      expect(stdout).toContain("exit status: 0 done");
    }
    const { code, stdout } = await runProgram(process.execPath, [CLI, "switch", "--", "--help"]);
    expect(code).toBe(3);
    expect(stdout).toBe("");
  });

  it("says the daemon is not running, with exit status 3", async () => {
    const { code, stdout, stderr } = await schedctl("status");
    expect(code).toBe(3);
    expect(stdout).toBe("");
    expect(stderr).toBe(
      `schedctl status: schedctld is not running (org.schedctl1 is not on ${bus.address}); start it with: systemctl start schedctld\n`,
    );
  });

  it("says so when there is no bus at all", async () => {
    const { code, stderr } = await runProgram(process.execPath, [
      CLI,
      "policies",
      "--address",
      "unix:path=/nonexistent/bus",
    ]);
    expect(code).toBe(3);
    expect(stderr).toMatch(/^schedctl policies: cannot connect to unix:path=\/nonexistent\/bus: ENOENT/);
  });
});

describe("with the daemon running", () => {
  beforeAll(async () => {
    service = spawn(process.execPath, [ENTRY, "--address", bus.address], {
      stdio: ["pipe", "pipe", "ignore"],
    });
    expect(await firstLine(service, "the service")).toBe("ready");
  });

  it("shows the status screen, and the same status as JSON", async () => {
    const text = await schedctl("status");
    expect(text.code).toBe(0);
    expect(text.stdout).toMatch(
      /^● schedctld - sched_ext autopilot, mode auto\n {4}Kernel: sched_ext disabled\n/,
    );
    expect(text.stdout).not.toContain("\x1b[");
    const json = await schedctl("status", "--json");
    expect(JSON.parse(json.stdout)).toMatchObject({
      mode: "auto",
      schedExt: { state: "disabled" },
      activePolicy: null,
    });
  });

  it("switches, explains, lists, rolls back and keeps history", async () => {
    const switched = await schedctl("switch", "simple", "slice_us=5000");
    expect(switched).toMatchObject({ code: 0, stdout: "simple attached; probation 20 s\n" });
    const policies = JSON.parse((await schedctl("policies", "--json")).stdout);
    expect(policies.find((p: { name: string }) => p.name === "simple").active).toBe(true);
    expect((await schedctl("policies")).stdout).toMatch(/^●\s+simple\s+builtin\s+pass/m);
    expect((await schedctl("explain")).stdout).toMatch(/^simple runs \(probation since/);
    expect(await schedctl("rollback")).toMatchObject({
      code: 0,
      stdout: "rolled back: simple -> kernel default (operator request)\n",
    });
    const history = JSON.parse((await schedctl("history", "-n", "2", "--json")).stdout);
    expect(history.map((h: { kind: string }) => h.kind)).toEqual(["rollback", "deploy"]);
  });

  it("shows and sets the mode", async () => {
    expect((await schedctl("mode")).stdout).toBe("auto\n");
    expect(await schedctl("mode", "manual")).toMatchObject({ code: 0, stdout: "manual\n" });
    expect(JSON.parse((await schedctl("mode", "--json")).stdout)).toEqual({ mode: "manual" });
    await schedctl("mode", "auto");
  });

  it("verifies a source file in the daemon, failing with exit status 6", async () => {
    const dir = tempDir();
    writeTree(dir, {
      "good_one.bpf.c": 'SCX_OPS_DEFINE(good_ops, .name = "good_one");\n',
      "bad.bpf.c": "int x;\n",
    });
    const good = await schedctl("verify", join(dir, "good_one.bpf.c"));
    expect(good.code).toBe(0);
    expect(good.stdout).toMatch(/^good_one pass at sandbox/);
    const bad = await schedctl("verify", join(dir, "bad.bpf.c"), "--json");
    expect(bad.code).toBe(6);
    expect(JSON.parse(bad.stdout)).toMatchObject({ name: "bad", passed: false, stage: "static" });
  });

  it("gives each failure its own exit status and message", async () => {
    expect(await schedctl("switch", "nosuch")).toMatchObject({
      code: 5,
      stderr: 'schedctl switch: no policy named "nosuch" (see ListPolicies)\n',
    });
    const denied = await asNobody("switch", "simple");
    expect(denied.code).toBe(4);
    expect(denied.stderr).toMatch(
      /^schedctl switch: SwitchPolicy needs root or group "schedctl": .*; run it as root or as a member of group schedctl\n$/,
    );
    const invalid = await schedctl("switch", "simple", "slice=1");
    expect(invalid).toMatchObject({ code: 2, stderr: 'schedctl switch: simple has no tunable "slice"\n' });
    const usage = await schedctl("mode", "turbo");
    expect(usage.code).toBe(2);
    expect(usage.stderr).toMatch(
      /^schedctl mode: mode: expected auto, observe or manual, got "turbo"\nusage: schedctl mode/,
    );
    expect((await schedctl("history", "--bus", "user")).code).toBe(2);
  });

  it("lets anyone read", async () => {
    const { code, stdout } = await asNobody("status", "--json");
    expect(code).toBe(0);
    expect(JSON.parse(stdout).version).toBe("0.1.0");
  });
});
