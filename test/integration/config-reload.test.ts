import type { ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ManagerClient } from "../../src/dbus/client.ts";
import { type PrivateBus, spawnObservingDaemon, startPrivateBus, stopChild } from "../helpers/dbus.ts";
import { write, writeCgroup, writeSystem } from "../helpers/proc-tree.ts";
import { until } from "../helpers/until.ts";

// A bad configuration reloaded into the real daemon, by SIGHUP and by the D-Bus method: invalid
// TOML, a wrong type, an unknown key, an out-of-range threshold. The running configuration stays
// in force (llm.calls_per_hour shows through Status), and the error names file, line, column, key.

let bus: PrivateBus;
let daemon: ChildProcess;
let client: ManagerClient;
let dir: string;
let file: string;
let stderr = "";

const BAD: [string, string, RegExp][] = [
  ["invalid TOML", "[llm]\ncalls_per_hour = 9\n[detect\n", /schedctl\.toml:3:\d+: not valid TOML/],
  ["a wrong type", "[llm]\ncalls_per_hour = 'nine'\n", /schedctl\.toml:2:1: llm\.calls_per_hour: .*number/],
  [
    "an unknown key",
    "[llm]\ncalls_per_hour = 9\n[detect]\n  treshold = 4\n",
    /schedctl\.toml:4:3: unknown key detect\.treshold/,
  ],
  [
    "an out-of-range threshold",
    "[llm]\ncalls_per_hour = 9\n\n[detect]\nthreshold = -1\n",
    /schedctl\.toml:5:1: detect\.threshold: /,
  ],
];

const callsPerHour = async () => (await client.status()).llm.callsLeftHour;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "schedctl-reload-"));
  const root = join(dir, "host");
  writeSystem(root, { busy: [500, 400], idle: [1500, 1600], ctxt: 9000, forks: 300, running: 2, blocked: 0 });
  writeCgroup(root, "/", { usage: 1_000_000 });
  write(root, "/sys/kernel/sched_ext/state", "disabled\n");
  file = join(dir, "etc/schedctl.toml");
  write(
    dir,
    "etc/schedctl.toml",
    '[daemon]\nsample_interval_ms = 200\n[llm]\ncalls_per_hour = 7\n[metrics]\ntextfile = "off"\n',
  );
  bus = await startPrivateBus({ policy: "open" });
  daemon = spawnObservingDaemon({ bus, config: file, stateDir: dir, hostRoot: root });
  daemon.stderr!.on("data", (chunk: Buffer) => {
    stderr += chunk.toString();
  });
  client = new ManagerClient({ kind: "session", address: bus.address });
  await until("the daemon on the bus", () => stderr.includes("D-Bus service ready"));
});

afterAll(async () => {
  client?.close();
  if (daemon) await stopChild(daemon);
  await bus?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe("a bad configuration reloaded", () => {
  it.each(BAD)(
    "over D-Bus, %s: refused with file, line, column and key; the old one kept",
    async (_, text, where) => {
      expect(await callsPerHour()).toBe(7);
      writeFileSync(file, text);
      const refused = await client.reload().then(
        () => undefined,
        (error: Error) => error,
      );
      expect(refused?.message).toMatch(/nothing changed/);
      expect(refused?.message).toMatch(where);
      expect(await callsPerHour()).toBe(7);
    },
  );

  it.each(BAD)(
    "by SIGHUP, %s: logged with file, line, column and key; the old one kept",
    async (_, text, where) => {
      writeFileSync(file, text);
      const before = stderr.length;
      daemon.kill("SIGHUP");
      const logged = await until("the refusal in the log", () => {
        const line = stderr
          .slice(before)
          .split("\n")
          .find((l) => l.includes("reload refused"));
        return line && JSON.parse(line).msg;
      });
      expect(logged).toMatch(where);
      expect(await callsPerHour()).toBe(7);
    },
  );

  it("takes a good one, so what was kept was really the old one", async () => {
    writeFileSync(file, "[daemon]\nsample_interval_ms = 200\n[llm]\ncalls_per_hour = 9\n");
    await client.reload();
    expect(await callsPerHour()).toBe(9);
  });
});
