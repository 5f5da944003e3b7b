import pg from "pg";
import { parseIntoClientConfig } from "pg-connection-string";
import { z } from "zod";
import { policyKey } from "../decide/candidates.ts";
import { ChosenPolicy, Outcome } from "../decide/types.ts";
import { WorkloadClass } from "../observe/types.ts";
import { migrate } from "./migrations.ts";

// The link to the fleet's PostgreSQL: sends this host's outcomes (each once) and reads the other
// hosts' for the same kernel and CPU model class into a cache. Every query runs in sync(), a job
// of its own off the sampling loop; readers only ever see the cache. A database that is missing,
// refuses us or dies is "offline": the host goes on alone and catches up when it is back.

export interface FleetIdentity {
  hostId: string;
  kernel: string;
  cpuClass: string;
}

export interface FleetLinkOptions extends FleetIdentity {
  url: string;
  password: string | undefined;
  timeoutMs: number;
  /** This host's own outcomes after `at` (wall-clock ms), oldest first: what the fleet lacks. */
  localOutcomesSince: (at: number) => Outcome[];
  /** The manifest of a policy by name, stored beside a verified object's hash. */
  manifestOf: (name: string) => unknown;
  now: () => number;
  warn: (message: string) => void;
}

export interface FleetState {
  state: "connected" | "offline";
  /** The database as host:port/database (never the credentials). */
  database: string;
  hostId: string;
  kernel: string;
  cpuClass: string;
  /** Wall-clock ms of the last successful sync (0: never). */
  lastSyncAt: number;
  lastError: string | undefined;
  schemaVersionsApplied: number[];
  /** What came from the fleet (other hosts' outcomes for this kernel and CPU class). */
  outcomes: number;
  quarantines: number;
  hosts: number;
  objects: number;
  /** This host's outcomes sent, and those waiting for the database. */
  sent: number;
  pending: number;
}

/** A link that never synced: nothing known from the fleet, nothing sent. */
export const NOTHING_SYNCED = {
  lastSyncAt: 0,
  outcomes: 0,
  quarantines: 0,
  hosts: 0,
  objects: 0,
  sent: 0,
  pending: 0,
} as const;

/** Newest rows of other hosts kept in the cache: a bound on memory and on each read. */
const READ_LIMIT = 5000;
const SEND_BATCH = 200;

/** A row as another host wrote it: checked before it counts (a bad row is skipped, said once). */
const Row = z.object({
  host_id: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/),
  at: z.union([z.string(), z.number()]),
  signature: z.string().max(200),
  workload: z.string().max(500).nullable(),
  class: WorkloadClass,
  policy: ChosenPolicy,
  kpi_ratio: z.number().positive(),
  passed: z.boolean(),
  rolled_back: z.boolean(),
  quarantined: z.boolean(),
  reason: z.string().max(2000).nullable(),
  hash: z
    .string()
    .regex(/^[0-9a-f]{64}$/)
    .nullable(),
});

export class FleetLink {
  readonly #o: FleetLinkOptions;
  readonly #pool: pg.Pool;
  #migrated = false;
  /** The newest `at` of ours the database holds (undefined: not asked since connecting). */
  #sentUpTo: number | undefined;
  /** The last high-water mark known, for counting what waits while offline. */
  #lastSent = -1;
  #running: Promise<void> | undefined;
  #cache: Outcome[] = [];
  #state: FleetState;

  constructor(options: FleetLinkOptions) {
    this.#o = options;
    // The URL read as libpq reads it (sslmode, sslrootcert, ...), then the password from its file
    // (pg lets a connection string's fields win over the ones given beside it).
    this.#pool = new pg.Pool({
      ...parseIntoClientConfig(options.url),
      ...(options.password !== undefined && { password: options.password }),
      max: 1,
      connectionTimeoutMillis: options.timeoutMs,
      idleTimeoutMillis: 60_000,
      query_timeout: options.timeoutMs,
      statement_timeout: options.timeoutMs,
      application_name: "schedctld",
    });
    // A connection the server dropped while idle: noticed here, the next sync reconnects.
    this.#pool.on("error", (error) => this.#offline(error));
    // A checked-out connection the server drops reports it after its query failed: heard here,
    // or it would be an uncaught error that stops the daemon.
    this.#pool.on("connect", (client) => client.on("error", (error) => this.#offline(error)));
    this.#state = {
      state: "offline",
      database: describeUrl(options.url),
      hostId: options.hostId,
      kernel: options.kernel,
      cpuClass: options.cpuClass,
      ...NOTHING_SYNCED,
      lastError: "not synced yet",
      schemaVersionsApplied: [],
    };
  }

  /** The other hosts' outcomes, from the cache (no query). */
  outcomes(): readonly Outcome[] {
    return this.#cache;
  }

  state(): FleetState {
    return { ...this.#state };
  }

  /** One round: migrate once, send what the fleet lacks, read the others'. Never throws. */
  sync(): Promise<void> {
    this.#running ??= this.#sync().finally(() => {
      this.#running = undefined;
    });
    return this.#running;
  }

  async close(): Promise<void> {
    await this.#running;
    await this.#pool.end().catch(() => undefined);
  }

  async #sync(): Promise<void> {
    let client: pg.PoolClient | undefined;
    try {
      client = await this.#pool.connect();
      if (!this.#migrated) {
        this.#state.schemaVersionsApplied = await migrate(client, this.#o.now());
        this.#migrated = true;
      }
      await this.#send(client);
      await this.#read(client);
      client.release();
      Object.assign(this.#state, { state: "connected", lastSyncAt: this.#o.now(), lastError: undefined });
    } catch (error) {
      client?.release(error as Error);
      this.#offline(error as Error);
    }
  }

  async #send(client: pg.PoolClient): Promise<void> {
    if (this.#sentUpTo === undefined) {
      const { rows } = await client.query<{ at: string | null }>(
        "SELECT max(at) AS at FROM fleet_outcomes WHERE host_id = $1",
        [this.#o.hostId],
      );
      this.#sentUpTo = rows[0]?.at == null ? -1 : Number(rows[0].at);
    }
    const backlog = this.#o.localOutcomesSince(this.#sentUpTo);
    this.#state.pending = backlog.length;
    for (let i = 0; i < backlog.length; i += SEND_BATCH) {
      const batch = backlog.slice(i, i + SEND_BATCH);
      await client.query("BEGIN");
      for (const o of batch) await this.#insert(client, o);
      await client.query("COMMIT");
      this.#sentUpTo = batch[batch.length - 1]!.at;
      this.#state.sent += batch.length;
      this.#state.pending -= batch.length;
    }
  }

  async #insert(client: pg.PoolClient, o: Outcome): Promise<void> {
    const { hostId, kernel, cpuClass } = this.#o;
    const key = policyKey(o.policy);
    await client.query(
      `INSERT INTO fleet_outcomes (host_id, local_key, at, kernel, cpu_class, signature, workload, class,
         policy_key, policy, kpi_ratio, passed, rolled_back, quarantined, reason, hash)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)
       ON CONFLICT (host_id, local_key) DO NOTHING`,
      [
        hostId,
        `${o.at}:${o.decisionId ?? ""}:${key}`,
        o.at,
        kernel,
        cpuClass,
        o.signature,
        o.workload ?? null,
        o.class,
        key,
        JSON.stringify(o.policy),
        o.kpiRatio,
        o.passed,
        o.rolledBack,
        o.quarantined,
        o.reason ?? null,
        o.hash ?? null,
      ],
    );
    if (o.hash && o.policy.kind === "policy" && o.passed) {
      await client.query(
        `INSERT INTO fleet_objects (hash, host_id, kernel, manifest, verified_at) VALUES ($1, $2, $3, $4, $5)
         ON CONFLICT (hash, host_id) DO NOTHING`,
        [o.hash, hostId, kernel, JSON.stringify(this.#o.manifestOf(o.policy.name) ?? null), o.at],
      );
    }
  }

  async #read(client: pg.PoolClient): Promise<void> {
    const { hostId, kernel, cpuClass } = this.#o;
    const { rows } = await client.query(
      `SELECT * FROM (SELECT host_id, at, signature, workload, class, policy, kpi_ratio, passed, rolled_back,
         quarantined, reason, hash FROM fleet_outcomes
         WHERE kernel = $1 AND cpu_class = $2 AND host_id <> $3 ORDER BY at DESC LIMIT $4) newest ORDER BY at`,
      [kernel, cpuClass, hostId, READ_LIMIT],
    );
    const cache: Outcome[] = [];
    let refused = 0;
    for (const raw of rows) {
      const row = Row.safeParse(raw);
      if (!row.success) {
        refused++;
        continue;
      }
      const r = row.data;
      cache.push(
        Outcome.parse({
          at: Number(r.at),
          signature: r.signature,
          class: r.class,
          policy: r.policy,
          kpiRatio: r.kpi_ratio,
          passed: r.passed,
          rolledBack: r.rolled_back,
          quarantined: r.quarantined,
          ...(r.workload !== null && { workload: r.workload }),
          ...(r.reason !== null && { reason: r.reason }),
          ...(r.hash !== null && { hash: r.hash }),
          fleetHost: r.host_id,
        }),
      );
    }
    if (refused > 0)
      this.#o.warn(`fleet: ignored ${refused} malformed outcome row(s) in ${this.#state.database}`);
    const objects = await client.query<{ n: string }>(
      "SELECT count(DISTINCT hash) AS n FROM fleet_objects WHERE kernel = $1",
      [kernel],
    );
    this.#cache = cache;
    Object.assign(this.#state, {
      outcomes: cache.length,
      quarantines: cache.filter((o) => o.quarantined).length,
      hosts: new Set(cache.map((o) => o.fleetHost)).size,
      objects: Number(objects.rows[0]?.n ?? 0),
    });
  }

  #offline(error: Error): void {
    const why = error.message || String(error);
    if (this.#state.state === "connected" || this.#state.lastError !== why)
      this.#o.warn(`fleet ${this.#state.database} offline: ${why}; this host goes on alone`);
    const pending = this.#o.localOutcomesSince(this.#sentUpTo ?? this.#lastSent).length;
    // Reconnected, the database may have lost what we sent (a restore): it is asked again.
    if (this.#sentUpTo !== undefined) this.#lastSent = this.#sentUpTo;
    this.#sentUpTo = undefined;
    Object.assign(this.#state, { state: "offline", lastError: why, pending });
  }
}

/** host:port/database of a postgres:// URL, for status lines. */
export function describeUrl(url: string): string {
  try {
    const u = new URL(url);
    return `${u.hostname}${u.port ? `:${u.port}` : ""}${u.pathname}`;
  } catch {
    return "(unparsable url)";
  }
}
