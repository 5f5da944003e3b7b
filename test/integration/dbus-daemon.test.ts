import type { ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type dbus from "dbus-next";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { connectBus } from "../../src/dbus/bus.ts";
import { ManagerClient } from "../../src/dbus/client.ts";
import { BUS_NAME, INTERFACE, OBJECT_PATH } from "../../src/dbus/names.ts";
import { MESSAGE_IDS } from "../../src/journal/events.ts";
import { bindDatagramSink, type DatagramSink } from "../helpers/datagram.ts";
import { type PrivateBus, spawnObservingDaemon, startPrivateBus, stopChild } from "../helpers/dbus.ts";
import { write, writeCgroup, writeSystem } from "../helpers/proc-tree.ts";
import { runProgram } from "../helpers/run.ts";
import { until } from "../helpers/until.ts";

// The real daemon (observe-only, on a fixture host whose kernel runs someone else's sched_ext
// scheduler) on a private bus, with $NOTIFY_SOCKET bound by the test: what systemd, the bus
// and the logs see of it.

const SCHED_EXT = "/sys/kernel/sched_ext";

let bus: PrivateBus;
let daemon: ChildProcess;
let notify: DatagramSink;
let client: ManagerClient;
let dir: string;
let root: string;
let stderr = "";
const notes = () => notify.received.map((b) => b.toString());

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "schedctl-daemon-"));
  root = join(dir, "host");
  writeSystem(root, { busy: [500, 400], idle: [1500, 1600], ctxt: 9000, forks: 300, running: 2, blocked: 0 });
  writeCgroup(root, "/", { usage: 1_000_000 });
  write(root, `${SCHED_EXT}/state`, "enabled\n");
  write(root, `${SCHED_EXT}/root/ops`, "scx_rusty\n");
  write(root, `${SCHED_EXT}/enable_seq`, "3\n");
  write(dir, "etc/schedctl.toml", '[daemon]\nsample_interval_ms = 200\n[metrics]\ntextfile = "off"\n');
  bus = await startPrivateBus({ policy: "open" });
  notify = bindDatagramSink(dir, "notify");
  daemon = spawnObservingDaemon({
    bus,
    config: join(dir, "etc/schedctl.toml"),
    stateDir: dir,
    hostRoot: root,
    env: { ...process.env, NOTIFY_SOCKET: notify.path, WATCHDOG_USEC: "500000" },
  });
  daemon.stderr!.on("data", (chunk: Buffer) => {
    stderr += chunk.toString();
  });
  client = new ManagerClient({ kind: "session", address: bus.address });
});

afterAll(async () => {
  client?.close();
  if (daemon) await stopChild(daemon);
  notify?.close();
  await bus?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe("schedctld on the bus and under systemd's protocol", () => {
  it("says READY=1 with its status once the first sample is taken and the name is owned", async () => {
    const ready = await until("READY=1", () => notes().find((n) => n.startsWith("READY=1")));
    expect(ready).toMatch(/^READY=1\nSTATUS=observe; phase (unknown|\w+ \([\w-]+\)); scheduler scx_rusty\n$/);
    const owner = await runProgram("busctl", [`--address=${bus.address}`, "status", BUS_NAME]);
    expect(owner.code).toBe(0);
  });

  it("reports the kernel's truth: another scheduler is attached, none of ours", async () => {
    const status = await client.status();
    expect(status).toMatchObject({
      mode: "observe",
      schedExt: { state: "enabled", ops: "scx_rusty" },
      activePolicy: null,
      version: "0.1.0",
    });
    expect(status.samples).toBeGreaterThan(0);
    expect((await client.explain()).lines[0]).toBe(
      "the kernel runs scx_rusty, which schedctl did not attach",
    );
    expect((await client.policies()).map((p) => p.name)).toContain("fifo");
  });

  it("emits PropertiesChanged when the kernel's state changes under it", async () => {
    const listener = connectBus({ kind: "session", address: bus.address });
    try {
      const proxy = await listener.getProxyObject(BUS_NAME, OBJECT_PATH);
      const changes: Record<string, unknown>[] = [];
      proxy
        .getInterface("org.freedesktop.DBus.Properties")
        .on("PropertiesChanged", (iface: string, values: Record<string, dbus.Variant>) => {
          if (iface === INTERFACE)
            changes.push(Object.fromEntries(Object.entries(values).map(([k, v]) => [k, v.value])));
        });
      await new Promise((r) => setTimeout(r, 300));
      write(root, `${SCHED_EXT}/state`, "disabled\n");
      await until("SchedExtState disabled", () => changes.find((c) => c.SchedExtState === "disabled"));
      expect((await client.status()).schedExt).toEqual({ state: "disabled", ops: null });
    } finally {
      listener.disconnect();
    }
  });

  it("refuses what it cannot do yet, saying why", async () => {
    await expect(client.switchPolicy("fifo", {})).rejects.toMatchObject({
      kind: "refused",
      message: expect.stringContaining("observes only"),
    });
    await expect(client.setMode("auto")).rejects.toMatchObject({ kind: "refused" });
    await client.setMode("observe");
    expect((await client.history(50)).some((h) => h.kind === "mode")).toBe(true);
  });

  it("pings the watchdog at half the interval while its loop ticks", async () => {
    await until("two watchdog pings", () => notes().filter((n) => n === "WATCHDOG=1\n").length >= 2);
  });

  it("writes its phase changes as journal records (to the log where no journald runs)", async () => {
    const record = await until("a phase-change record", () =>
      stderr
        .split("\n")
        .filter(Boolean)
        .map((line) => JSON.parse(line))
        .find((r) => r.MESSAGE_ID === MESSAGE_IDS["phase-change"]),
    );
    expect(record).toMatchObject({ SCHEDCTL_EVENT: "phase-change", SCHEDCTL_PHASE: expect.any(String) });
    expect(record.SCHEDCTL_SIGNATURE).toMatch(/^[\w-]+$/);
  });

  it("reloads on SIGHUP (RELOADING=1, then READY=1) and stops on SIGTERM (STOPPING=1)", async () => {
    const before = notes().length;
    daemon.kill("SIGHUP");
    const after = await until("reload notifications", () => {
      const fresh = notes().slice(before);
      return fresh.some((n) => n.startsWith("READY=1")) && fresh;
    });
    expect(after.find((n) => n.startsWith("RELOADING=1"))).toMatch(/^RELOADING=1\nMONOTONIC_USEC=\d+\n$/);
    const exited = new Promise<number | null>((resolve) => daemon.once("exit", resolve));
    daemon.kill("SIGTERM");
    expect(await exited).toBe(0);
    expect(notes()).toContain("STOPPING=1\n");
    await expect(client.status()).rejects.toMatchObject({ kind: "not-running" });
  });
});
