import { type ChildProcess, spawn } from "node:child_process";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { BUS_NAME, INTERFACE, OBJECT_PATH } from "../../src/dbus/names.ts";
import { firstLine, type PrivateBus, startPrivateBus, stopChild } from "../helpers/dbus.ts";
import { runAsNobody, runProgram } from "../helpers/run.ts";

// etc/dbus-1/system.d/org.schedctl1.conf, the first wall, enforced by a real dbus-daemon that
// denies by default as Debian's system bus does.

const POLICY = join(import.meta.dirname, "../../etc/dbus-1/system.d/org.schedctl1.conf");
const ENTRY = join(import.meta.dirname, "dbus-service-entry.ts");

let bus: PrivateBus;
let service: ChildProcess;

beforeAll(async () => {
  bus = await startPrivateBus({ policy: "system", include: [POLICY] });
  // The test runs as root, as schedctld does: root may own the name.
  service = spawn(process.execPath, [ENTRY, "--address", bus.address], {
    stdio: ["pipe", "pipe", "inherit"],
  });
  expect(await firstLine(service, "the service")).toBe("ready");
});

afterAll(async () => {
  service?.stdin?.end();
  if (service) await stopChild(service);
  await bus?.stop();
});

const gdbus = (iface: string, method: string, ...args: string[]) => [
  "call",
  "--address",
  bus.address,
  "--dest",
  BUS_NAME,
  "--object-path",
  OBJECT_PATH,
  "--method",
  `${iface}.${method}`,
  ...args,
];

describe("the D-Bus policy file", () => {
  it("lets everyone read: properties, introspection and the read methods", async () => {
    for (const args of [
      gdbus(INTERFACE, "GetStatus"),
      gdbus(INTERFACE, "ListPolicies"),
      gdbus(INTERFACE, "GetHistory", "5"),
      gdbus(INTERFACE, "Explain"),
      gdbus("org.freedesktop.DBus.Properties", "Get", INTERFACE, "Mode"),
      gdbus("org.freedesktop.DBus.Properties", "GetAll", INTERFACE),
      gdbus("org.freedesktop.DBus.Introspectable", "Introspect"),
    ]) {
      const { code, stderr } = await runAsNobody("gdbus", args);
      expect(stderr).toBe("");
      expect(code).toBe(0);
    }
  });

  it("stops an unprivileged caller's changes at the bus", async () => {
    for (const args of [
      gdbus(INTERFACE, "SwitchPolicy", "simple", ""),
      gdbus(INTERFACE, "SetMode", "observe"),
    ]) {
      const { code, stderr } = await runAsNobody("gdbus", args);
      expect(code).not.toBe(0);
      // The refusal comes from dbus-daemon itself (the daemon never saw the call).
      expect(stderr).toMatch(/org\.freedesktop\.DBus\.Error\.AccessDenied: Rejected send message/);
    }
  });

  it("lets root change things", async () => {
    const { code, stdout } = await runProgram("gdbus", gdbus(INTERFACE, "SetMode", "manual"));
    expect(code).toBe(0);
    expect(stdout.trim()).toBe("()");
  });

  it("lets only root own the name", async () => {
    const { code, stderr } = await runAsNobody("gdbus", [
      "call",
      "--address",
      bus.address,
      "--dest",
      "org.freedesktop.DBus",
      "--object-path",
      "/org/freedesktop/DBus",
      "--method",
      "org.freedesktop.DBus.RequestName",
      BUS_NAME,
      "4",
    ]);
    expect(code).not.toBe(0);
    expect(stderr).toMatch(/AccessDenied.*not allowed to own the service "org\.schedctl1"/);
  });
});
