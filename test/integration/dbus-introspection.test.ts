import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { connectBus, type MessageBus } from "../../src/dbus/bus.ts";
import { BUS_NAME, INTERFACE, OBJECT_PATH } from "../../src/dbus/names.ts";
import { type RunningService, startService } from "../../src/dbus/service.ts";
import { createHost } from "../../src/host/host.ts";
import { createMemoryLogger } from "../../src/log/logger.ts";
import { type PrivateBus, startPrivateBus } from "../helpers/dbus.ts";
import { runProgram } from "../helpers/run.ts";
import { ScriptedBackend } from "./dbus-backend.ts";

// The committed introspection XML (the source of docs/dbus.md) is what the real service tells a
// real bus. SCHEDCTL_UPDATE_XML=1 rewrites the file from the service instead of comparing.

const XML_FILE = join(import.meta.dirname, `../../etc/dbus-1/interfaces/${INTERFACE}.xml`);

let bus: PrivateBus;
let connection: MessageBus;
let service: RunningService;

beforeAll(async () => {
  bus = await startPrivateBus({ policy: "open" });
  connection = connectBus({ kind: "session", address: bus.address });
  service = await startService({
    bus: connection,
    backend: new ScriptedBackend(),
    host: createHost("/"),
    logger: createMemoryLogger(),
  });
});

afterAll(async () => {
  await service?.close();
  connection?.disconnect();
  await bus?.stop();
});

describe(`${INTERFACE}.xml`, () => {
  it("is the interface the running service introspects as", async () => {
    const { code, stdout, stderr } = await runProgram("dbus-send", [
      `--bus=${bus.address}`,
      "--print-reply=literal",
      `--dest=${BUS_NAME}`,
      OBJECT_PATH,
      "org.freedesktop.DBus.Introspectable.Introspect",
    ]);
    expect(stderr).toBe("");
    expect(code).toBe(0);
    const block = new RegExp(
      `<interface name="${INTERFACE.replaceAll(".", "\\.")}">[\\s\\S]*?</interface>`,
    ).exec(stdout);
    expect(block).not.toBeNull();
    const live = (block?.[0] ?? "")
      .split("\n")
      .map((l) => l.trim())
      .filter(Boolean)
      .join("\n");
    const file = `<!DOCTYPE node PUBLIC "-//freedesktop//DTD D-BUS Object Introspection 1.0//EN"\n "http://www.freedesktop.org/standards/dbus/1.0/introspect.dtd">\n<node>\n${live}\n</node>\n`;
    if (process.env.SCHEDCTL_UPDATE_XML === "1") writeFileSync(XML_FILE, file);
    expect(readFileSync(XML_FILE, "utf8")).toBe(file);
  });
});
