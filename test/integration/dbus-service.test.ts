import { type ChildProcess, spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import dbus from "dbus-next";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { connectBus } from "../../src/dbus/bus.ts";
import { ClientError, ManagerClient } from "../../src/dbus/client.ts";
import { BUS_NAME, INTERFACE, OBJECT_PATH } from "../../src/dbus/names.ts";
import { firstLine, type PrivateBus, startPrivateBus, stopChild } from "../helpers/dbus.ts";
import { runAsNobody, runProgram } from "../helpers/run.ts";
import { writeTree } from "../helpers/tmp.ts";

// The service in its own process on a private dbus-daemon, driven from this process (dbus-next),
// from busctl and gdbus, and as the unprivileged uid 65534.

const ENTRY = join(import.meta.dirname, "dbus-service-entry.ts");

let bus: PrivateBus;
let service: ChildProcess;
let hostRoot: string;
let client: ManagerClient;

async function startService(address: string, root: string): Promise<ChildProcess> {
  const child = spawn(process.execPath, [ENTRY, "--address", address, "--host-root", root], {
    stdio: ["pipe", "pipe", "inherit"],
  });
  expect(await firstLine(child, "the service")).toBe("ready");
  return child;
}

beforeAll(async () => {
  bus = await startPrivateBus({ policy: "open" });
  hostRoot = mkdtempSync(join(tmpdir(), "schedctl-host-"));
  // The host's group database: nobody is not in group schedctl (yet).
  writeTree(hostRoot, {
    "etc/passwd":
      "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n",
    "etc/group": "root:x:0:\nschedctl:x:990:\nnogroup:x:65534:\n",
  });
  service = await startService(bus.address, hostRoot);
  client = new ManagerClient({ kind: "session", address: bus.address });
});

afterAll(async () => {
  client?.close();
  service?.stdin?.end();
  if (service) await stopChild(service);
  await bus?.stop();
  if (hostRoot) rmSync(hostRoot, { recursive: true, force: true });
});

const call = (method: string | undefined, ...args: string[]): string[] => [
  "call",
  "--address",
  bus.address,
  "--dest",
  BUS_NAME,
  "--object-path",
  OBJECT_PATH,
  "--method",
  `${INTERFACE}.${method}`,
  ...args,
];

describe("introspection by real clients", () => {
  it("busctl lists every method, property and signal", async () => {
    const { code, stdout } = await runProgram("busctl", [
      `--address=${bus.address}`,
      "introspect",
      BUS_NAME,
      OBJECT_PATH,
    ]);
    expect(code).toBe(0);
    for (const [member, kind, signature] of [
      [".GetStatus", "method", "-"],
      [".ListPolicies", "method", "-"],
      [".GetHistory", "method", "u"],
      [".Explain", "method", "-"],
      [".SetMode", "method", "s"],
      [".SwitchPolicy", "method", "ss"],
      [".Rollback", "method", "-"],
      [".VerifyPolicy", "method", "s"],
      [".CreatePolicy", "method", "ss"],
      [".Reload", "method", "-"],
      [".Mode", "property", "s"],
      [".ActivePolicy", "property", "s"],
      [".Phase", "property", "s"],
      [".SchedExtState", "property", "s"],
      [".LlmBudget", "property", "a{sv}"],
      [".Version", "property", "s"],
      [".PhaseChanged", "signal", "ssd"],
      [".PolicyChanged", "signal", "sss"],
      [".RolledBack", "signal", "sss"],
    ] as const) {
      expect(stdout).toMatch(
        new RegExp(`^\\${member}\\s+${kind}\\s+${signature.replace(/[{}]/g, "\\$&")}\\s`, "m"),
      );
    }
    expect(stdout).toMatch(/^\.Mode\s+property\s+s\s+"auto"\s+emits-change/m);
  });

  it("gdbus shows the interface with named arguments", async () => {
    const { code, stdout } = await runProgram("gdbus", [
      "introspect",
      "--address",
      bus.address,
      "--dest",
      BUS_NAME,
      "--object-path",
      OBJECT_PATH,
    ]);
    expect(code).toBe(0);
    expect(stdout).toContain(`interface ${INTERFACE} {`);
    expect(stdout).toMatch(/SwitchPolicy\(in\s+s name,\s+in\s+s tunables_json,\s+out s result_json\)/);
    expect(stdout).toMatch(/GetHistory\(in\s+u limit,\s+out s history_json\)/);
    expect(stdout).toMatch(/PhaseChanged\(s phase,\s+s signature,\s+d drift\)/);
    expect(stdout).toContain("readonly s SchedExtState = 'disabled';");
  });
});

describe("methods, properties and signals from another process", () => {
  it("answers every read method with documents its schemas accept", async () => {
    const status = await client.status();
    expect(status).toMatchObject({
      mode: "auto",
      schedExt: { state: "disabled", ops: null },
      activePolicy: null,
    });
    expect((await client.policies()).map((p) => p.name)).toEqual(["simple", "batch"]);
    expect(await client.explain()).toMatchObject({
      policy: null,
      lines: [expect.stringContaining("no decision")],
    });
    expect(await client.history(5)).toEqual([]);
  });

  it("emits the signals and PropertiesChanged as the daemon's state moves", async () => {
    const listener = connectBus({ kind: "session", address: bus.address });
    try {
      const proxy = await listener.getProxyObject(BUS_NAME, OBJECT_PATH);
      const manager = proxy.getInterface(INTERFACE);
      const properties = proxy.getInterface("org.freedesktop.DBus.Properties");
      const seen: unknown[][] = [];
      const changed: Record<string, unknown>[] = [];
      for (const signal of ["PhaseChanged", "PolicyChanged", "RolledBack"]) {
        manager.on(signal, (...args: unknown[]) => seen.push([signal, ...args]));
      }
      properties.on("PropertiesChanged", (iface: string, values: Record<string, dbus.Variant>) => {
        if (iface === INTERFACE) {
          changed.push(Object.fromEntries(Object.entries(values).map(([k, v]) => [k, v.value])));
        }
      });
      // The match rules above must reach the bus before anything is emitted.
      await listener.call(
        new dbus.Message({
          destination: "org.freedesktop.DBus",
          path: "/org/freedesktop/DBus",
          interface: "org.freedesktop.DBus.Peer",
          member: "Ping",
        }),
      );

      service.stdin!.write("phase throughput thr-4c1a 9.5\n");
      const switched = await client.switchPolicy("simple", { slice_us: 5000 });
      expect(switched).toMatchObject({ policy: "simple", state: "probation" });
      const back = await client.rollback();
      expect(back).toEqual({ from: "simple", to: null, reason: "operator request" });
      await waitFor(() => seen.length >= 3 && changed.length >= 3);

      expect(seen).toEqual([
        ["PhaseChanged", "throughput", "thr-4c1a", 9.5],
        ["PolicyChanged", "simple", switched.hash, "operator request"],
        ["RolledBack", "simple", "", "operator request"],
      ]);
      expect(changed).toEqual([
        { Phase: "throughput" },
        { ActivePolicy: "simple", SchedExtState: "enabled" },
        { ActivePolicy: "", SchedExtState: "disabled" },
      ]);
      const history = await client.history(10);
      expect(history.map((h) => h.kind)).toEqual(["rollback", "deploy", "phase"]);
    } finally {
      listener.disconnect();
    }
  });

  it("reads every property with busctl", async () => {
    const { stdout } = await runProgram("busctl", [
      `--address=${bus.address}`,
      "--json=short",
      "get-property",
      BUS_NAME,
      OBJECT_PATH,
      INTERFACE,
      "Mode",
      "ActivePolicy",
      "Phase",
      "SchedExtState",
      "LlmBudget",
      "Version",
    ]);
    const values = stdout
      .trim()
      .split("\n")
      .map((line) => JSON.parse(line).data);
    expect(values.slice(0, 4)).toEqual(["auto", "", "throughput", "disabled"]);
    expect(values[4]).toMatchObject({
      Provider: { type: "s", data: "none" },
      CallsLeftDay: { type: "i", data: 40 },
    });
    expect(values[5]).toBe("0.1.0");
  });

  it("runs the other changing methods for root", async () => {
    await client.setMode("manual");
    expect((await client.status()).mode).toBe("manual");
    await client.setMode("auto");
    expect(await client.verifyPolicy("batch")).toMatchObject({ name: "batch", passed: true });
    const created = await client.createPolicy("mine", 'SCX_OPS_DEFINE(mine_ops, .name = "mine");');
    expect(created).toMatchObject({ name: "mine", passed: true, stage: "sandbox" });
    await client.reload();
    const { stdout } = await runProgram("gdbus", call("Reload"));
    expect(stdout.trim()).toBe("()");
  });

  it("maps the daemon's refusals to their own errors", async () => {
    await expect(client.switchPolicy("nosuch", {})).rejects.toMatchObject({ kind: "not-found" });
    await client.setMode("observe");
    await expect(client.switchPolicy("simple", {})).rejects.toMatchObject({
      kind: "refused",
      message: expect.stringContaining("observe"),
    });
    await client.setMode("auto");
  });
});

describe("malformed arguments get InvalidArgs saying what was wrong", () => {
  it.each([
    [["SetMode", "turbo"], /SetMode: mode: Invalid option: expected one of "auto"\|"observe"\|"manual"/],
    [["SwitchPolicy", "simple", "{slice_us: 1}"], /SwitchPolicy: tunables: not valid JSON/],
    [["SwitchPolicy", "simple", "[1,2]"], /SwitchPolicy: tunables: a JSON object of name/],
    [["SwitchPolicy", "Simple!", ""], /SwitchPolicy: name: a policy name is 1-32 characters/],
    [["VerifyPolicy", "relative/path.bpf.c"], /VerifyPolicy: target: a policy name or an absolute path/],
    [["GetHistory", "0"], /GetHistory: limit: Too small/],
    [["SwitchPolicy", "simple"], /SwitchPolicy takes \(ss\), got \(s\)/],
  ])("%j", async (args, message) => {
    const { code, stderr } = await runProgram("gdbus", call(args[0], ...args.slice(1)));
    expect(code).not.toBe(0);
    expect(stderr).toContain("org.freedesktop.DBus.Error.InvalidArgs");
    expect(stderr).toMatch(message);
  });

  it("reaches the client as an 'invalid' error", async () => {
    await expect(client.history(0)).rejects.toBeInstanceOf(ClientError);
    await expect(client.history(0)).rejects.toMatchObject({ kind: "invalid" });
  });
});

describe("authorization by the caller's bus credentials", () => {
  it("lets an unprivileged caller read", async () => {
    const { code, stdout } = await runAsNobody("gdbus", call("GetStatus"));
    expect(code).toBe(0);
    expect(stdout).toContain('"mode":"auto"');
  });

  it("refuses an unprivileged caller's changes with AccessDenied", async () => {
    for (const args of [["SwitchPolicy", "simple", ""], ["SetMode", "observe"], ["Rollback"], ["Reload"]]) {
      const { code, stderr } = await runAsNobody("gdbus", call(args[0], ...args.slice(1)));
      expect(code).not.toBe(0);
      expect(stderr).toContain("org.freedesktop.DBus.Error.AccessDenied");
      expect(stderr).toContain('user nobody (uid 65534) is neither root nor in group "schedctl"');
    }
    expect((await client.status()).mode).toBe("auto");
  });

  it("lets a member of group schedctl change things", async () => {
    writeTree(hostRoot, { "etc/group": "root:x:0:\nschedctl:x:990:nobody\nnogroup:x:65534:\n" });
    try {
      const { code, stdout, stderr } = await runAsNobody("gdbus", call("SetMode", "manual"));
      expect(stderr).toBe("");
      expect(code).toBe(0);
      expect(stdout.trim()).toBe("()");
      expect((await client.status()).mode).toBe("manual");
    } finally {
      writeTree(hostRoot, { "etc/group": "root:x:0:\nschedctl:x:990:\nnogroup:x:65534:\n" });
      await client.setMode("auto");
    }
  });
});

async function waitFor(condition: () => boolean, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error("timed out waiting for the bus");
    await new Promise((r) => setTimeout(r, 20));
  }
}
