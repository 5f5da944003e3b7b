import type { ClientBase } from "pg";

// The fleet database's schema, versioned: each migration runs once, in order, in its own
// transaction, under an advisory lock so that two daemons starting together do not race.
// A daemon never drops or rewrites what an older one wrote; a database newer than this code
// is used as long as the tables it reads are there.

const MIGRATIONS: readonly { version: number; what: string; sql: string }[] = [
  {
    version: 1,
    what: "outcomes: one row per policy outcome a host measured",
    sql: `CREATE TABLE fleet_outcomes (
      host_id text NOT NULL,
      local_key text NOT NULL,
      at bigint NOT NULL,
      kernel text NOT NULL,
      cpu_class text NOT NULL,
      signature text NOT NULL,
      workload text,
      class text NOT NULL,
      policy_key text NOT NULL,
      policy jsonb NOT NULL,
      kpi_ratio double precision NOT NULL,
      passed boolean NOT NULL,
      rolled_back boolean NOT NULL,
      quarantined boolean NOT NULL,
      reason text,
      hash text,
      PRIMARY KEY (host_id, local_key)
    );
    CREATE INDEX fleet_outcomes_by_host_class ON fleet_outcomes (kernel, cpu_class, at);`,
  },
  {
    version: 2,
    what: "objects: the verified policy objects' hashes and manifests",
    sql: `CREATE TABLE fleet_objects (
      hash text NOT NULL,
      host_id text NOT NULL,
      kernel text NOT NULL,
      manifest jsonb NOT NULL,
      verified_at bigint NOT NULL,
      PRIMARY KEY (hash, host_id)
    );`,
  },
];

export const SCHEMA_VERSION = MIGRATIONS[MIGRATIONS.length - 1]!.version;
/** pg_advisory_xact_lock key: "schedctl" folded into an int. */
const LOCK_KEY = 0x5c4edc71;

/** Applies the migrations this database lacks; returns the versions applied (none on a re-run). */
export async function migrate(client: ClientBase, now: number): Promise<number[]> {
  await client.query("BEGIN");
  try {
    await client.query("SELECT pg_advisory_xact_lock($1)", [LOCK_KEY]);
    await client.query(
      "CREATE TABLE IF NOT EXISTS fleet_schema (version integer PRIMARY KEY, what text NOT NULL, applied_at bigint NOT NULL)",
    );
    const { rows } = await client.query<{ version: number }>("SELECT version FROM fleet_schema");
    const have = new Set(rows.map((r) => r.version));
    const applied: number[] = [];
    for (const m of MIGRATIONS) {
      if (have.has(m.version)) continue;
      await client.query(m.sql);
      await client.query("INSERT INTO fleet_schema (version, what, applied_at) VALUES ($1, $2, $3)", [
        m.version,
        m.what,
        now,
      ]);
      applied.push(m.version);
    }
    await client.query("COMMIT");
    return applied;
  } catch (error) {
    await client.query("ROLLBACK").catch(() => undefined);
    throw error;
  }
}
