import { chmodSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import pg from "pg";
import { parseIntoClientConfig } from "pg-connection-string";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Config } from "../../src/config/schema.ts";
import { openFleet } from "../../src/daemon/fleet.ts";
import type { Outcome } from "../../src/decide/types.ts";
import { FleetLink, type FleetLinkOptions } from "../../src/fleet/link.ts";
import { migrate, SCHEMA_VERSION } from "../../src/fleet/migrations.ts";
import { createHost } from "../../src/host/host.ts";
import { createMemoryLogger } from "../../src/log/logger.ts";
import { type PgCluster, startPgCluster } from "../helpers/postgres.ts";
import { tempDir } from "../helpers/tmp.ts";

// The fleet link against a real PostgreSQL 15 (a throwaway cluster of initdb and pg_ctl):
// migrations, credentials, what is sent and read back, and a database that dies and returns.

let db: PgCluster;
beforeAll(async () => {
  db = await startPgCluster();
}, 60_000);
afterAll(() => db?.destroy());

const password = () => readFileSync(db.passwordFile, "utf8").trim();

function outcome(at: number, overrides: Partial<Outcome> = {}): Outcome {
  return {
    at,
    signature: "sig-latency",
    class: "latency",
    policy: { kind: "policy", origin: "builtin", name: "latency", tunables: {} },
    kpiRatio: 0.5,
    passed: true,
    rolledBack: false,
    quarantined: false,
    workload: "units:/batch.slice/hogs.service,/system.slice/api.service",
    hash: "a".repeat(64),
    ...overrides,
  };
}

function link(hostId: string, mine: Outcome[], extra: Partial<FleetLinkOptions> = {}): FleetLink {
  return new FleetLink({
    hostId,
    kernel: "7.3.4",
    cpuClass: "test cpu",
    url: db.url,
    password: password(),
    timeoutMs: 2000,
    localOutcomesSince: (at) => mine.filter((o) => o.at > at),
    manifestOf: (name) => ({ name }),
    now: () => 1_000,
    warn: () => undefined,
    ...extra,
  });
}

describe("the fleet store in PostgreSQL", () => {
  it("applies its migrations once, and a second daemon's re-apply changes nothing", async () => {
    const a = link("host-a", []);
    await a.sync();
    expect(a.state()).toMatchObject({ state: "connected", schemaVersionsApplied: [1, 2] });
    const b = link("host-b", []);
    await b.sync();
    expect(b.state()).toMatchObject({ state: "connected", schemaVersionsApplied: [] });
    const client = new pg.Client({ ...parseIntoClientConfig(db.url), password: password() });
    await client.connect();
    try {
      expect(await migrate(client, 2_000)).toEqual([]);
      const { rows } = await client.query("SELECT version FROM fleet_schema ORDER BY version");
      expect(rows.map((r) => r.version)).toEqual([1, 2]);
      expect(SCHEMA_VERSION).toBe(2);
    } finally {
      await client.end();
    }
    await a.close();
    await b.close();
  });

  it("sends each outcome once and reads the other hosts' of the same kernel and CPU class", async () => {
    const mine = [outcome(10), outcome(11, { passed: false, rolledBack: true, reason: "KPI 1.6x worse" })];
    const a = link("host-c", mine);
    await a.sync();
    await a.sync();
    expect(a.state()).toMatchObject({ sent: 2, pending: 0 });
    const other = link("host-d", [outcome(12)], { kernel: "6.12.0" });
    await other.sync();
    const b = link("host-e", []);
    await b.sync();
    const seen = b.outcomes().filter((o) => o.fleetHost === "host-c");
    expect(seen).toEqual([
      { ...mine[0], fleetHost: "host-c" },
      { ...mine[1], fleetHost: "host-c" },
    ]);
    expect(b.outcomes().some((o) => o.fleetHost === "host-d")).toBe(false);
    expect(b.state().objects).toBeGreaterThanOrEqual(1);
    // A restarted daemon asks the database what it already holds: nothing is sent twice.
    const again = link("host-c", mine);
    await again.sync();
    expect(again.state()).toMatchObject({ sent: 0, pending: 0 });
    for (const l of [a, other, b, again]) await l.close();
  });

  it("goes offline when the database dies, says so, and catches up when it returns", async () => {
    const mine = [outcome(20)];
    const a = link("host-f", mine);
    await a.sync();
    expect(a.state().state).toBe("connected");
    db.kill();
    mine.push(outcome(21, { quarantined: true, passed: false, reason: "quarantined" }));
    await a.sync();
    expect(a.state()).toMatchObject({ state: "offline", pending: 1 });
    expect(a.state().lastError).toBeTruthy();
    expect(a.outcomes()).toEqual(expect.any(Array)); // the cache is kept
    db.start();
    await a.sync();
    expect(a.state()).toMatchObject({ state: "connected", sent: 2 });
    const b = link("host-g", []);
    await b.sync();
    expect(
      b
        .outcomes()
        .filter((o) => o.fleetHost === "host-f")
        .map((o) => o.quarantined),
    ).toEqual([false, true]);
    await a.close();
    await b.close();
  }, 60_000);

  it("refuses a password file others can read, and a password in the url, saying where", () => {
    const dir = tempDir();
    const file = join(dir, "pw");
    writeFileSync(file, "secret\n");
    chmodSync(file, 0o644);
    const fleet = openFleet({
      config: Config.parse({ fleet: { url: db.url, password_file: file } }).fleet,
      host: createHost(dir),
      log: createMemoryLogger(),
      localOutcomesSince: () => [],
      manifestOf: () => undefined,
      now: () => 0,
    });
    expect(fleet?.status()).toMatchObject({
      state: "off",
      summary: `off: [fleet] password_file ${file}: refusing a secret readable by group or others (mode 644); run chmod 600 ${file}`,
    });
    const bad = Config.safeParse({ fleet: { url: "postgres://u:hunter2@db/x" } });
    expect(bad.success).toBe(false);
    expect(bad.error?.issues[0]).toMatchObject({
      path: ["fleet", "url"],
      message: expect.stringMatching(/password_file/),
    });
  });
});
