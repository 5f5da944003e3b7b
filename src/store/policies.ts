import type { z } from "zod";
import {
  DeploymentRecord,
  OutcomeRecord,
  type PolicyRecord,
  PolicyRecord as PolicyRecordSchema,
  type PolicyRepository,
  VerificationRecord,
  VersionRecord,
} from "../policies/repository.ts";
import type { Manifest, PolicyWorkload } from "../policies/types.ts";
import type { Db, Migration } from "./db.ts";

// The policy repository's tables (see src/policies/repository.ts for what each holds).

export const POLICY_MIGRATIONS: readonly Migration[] = [
  {
    family: "policies",
    version: 1,
    sql: `
      CREATE TABLE policies (
        name TEXT PRIMARY KEY,
        origin TEXT NOT NULL CHECK (origin IN ('builtin', 'external', 'generated')),
        source_hash TEXT NOT NULL,
        manifest TEXT NOT NULL,
        updated_at INTEGER NOT NULL
      );
      CREATE TABLE policy_workloads (
        name TEXT NOT NULL REFERENCES policies(name) ON DELETE CASCADE,
        workload_class TEXT NOT NULL,
        PRIMARY KEY (name, workload_class)
      );
      CREATE TABLE policy_versions (
        hash TEXT PRIMARY KEY,
        policy TEXT NOT NULL REFERENCES policies(name),
        tunables TEXT NOT NULL,
        created_at INTEGER NOT NULL
      );
      CREATE TABLE policy_verifications (
        id INTEGER PRIMARY KEY,
        hash TEXT NOT NULL,
        stage TEXT NOT NULL,
        passed INTEGER NOT NULL,
        log TEXT NOT NULL,
        figures TEXT,
        at INTEGER NOT NULL
      );
      CREATE INDEX policy_verifications_hash ON policy_verifications (hash, id);
      CREATE TABLE policy_deployments (
        id INTEGER PRIMARY KEY,
        hash TEXT NOT NULL,
        state TEXT NOT NULL,
        started_at INTEGER NOT NULL,
        ended_at INTEGER,
        reason TEXT
      );
      CREATE TABLE policy_outcomes (
        id INTEGER PRIMARY KEY,
        hash TEXT NOT NULL,
        policy TEXT NOT NULL,
        signature TEXT NOT NULL,
        workload_class TEXT NOT NULL,
        effect TEXT NOT NULL,
        score REAL NOT NULL,
        at INTEGER NOT NULL
      );
      CREATE INDEX policy_outcomes_signature ON policy_outcomes (signature);
      CREATE INDEX policy_outcomes_class ON policy_outcomes (workload_class, policy);
    `,
  },
];

interface PolicyRow {
  name: string;
  origin: string;
  source_hash: string;
  manifest: string;
  updated_at: number;
}

function policyFromRow(row: PolicyRow): PolicyRecord {
  return PolicyRecordSchema.parse({
    name: row.name,
    origin: row.origin,
    sourceHash: row.source_hash,
    manifest: JSON.parse(row.manifest),
    updatedAt: row.updated_at,
  });
}

export class SqlitePolicyRepository implements PolicyRepository {
  readonly #db: Db;

  constructor(db: Db) {
    this.#db = db;
  }

  upsertPolicy(manifest: Manifest, sourceHash: string, at: number): void {
    this.#db.transaction(() => {
      this.#db
        .prepare(
          `INSERT INTO policies (name, origin, source_hash, manifest, updated_at) VALUES (?, ?, ?, ?, ?)
           ON CONFLICT (name) DO UPDATE SET origin = excluded.origin, source_hash = excluded.source_hash,
             manifest = excluded.manifest, updated_at = excluded.updated_at`,
        )
        .run(manifest.name, manifest.origin, sourceHash, JSON.stringify(manifest), at);
      this.#db.prepare("DELETE FROM policy_workloads WHERE name = ?").run(manifest.name);
      const add = this.#db.prepare("INSERT INTO policy_workloads (name, workload_class) VALUES (?, ?)");
      for (const w of new Set(manifest.workloads)) add.run(manifest.name, w);
    })();
  }

  getPolicy(name: string): PolicyRecord | undefined {
    const row = this.#db.prepare<[string], PolicyRow>("SELECT * FROM policies WHERE name = ?").get(name);
    return row && policyFromRow(row);
  }

  listPolicies(): PolicyRecord[] {
    return this.#db.prepare<[], PolicyRow>("SELECT * FROM policies ORDER BY name").all().map(policyFromRow);
  }

  policiesForWorkload(workloadClass: z.infer<typeof PolicyWorkload>): PolicyRecord[] {
    return this.#db
      .prepare<[string, string], PolicyRow>(
        `SELECT p.* FROM policies p JOIN policy_workloads w ON w.name = p.name AND w.workload_class = ?
         LEFT JOIN (SELECT policy, avg(score) AS mean FROM policy_outcomes WHERE workload_class = ? GROUP BY policy) o
           ON o.policy = p.name
         ORDER BY o.mean IS NULL, o.mean DESC, p.name`,
      )
      .all(workloadClass, workloadClass)
      .map(policyFromRow);
  }

  addVersion(version: VersionRecord): void {
    const v = VersionRecord.parse(version);
    this.#db
      .prepare(
        "INSERT OR IGNORE INTO policy_versions (hash, policy, tunables, created_at) VALUES (?, ?, ?, ?)",
      )
      .run(v.hash, v.policy, JSON.stringify(v.tunables), v.createdAt);
  }

  getVersion(hash: string): VersionRecord | undefined {
    const row = this.#db
      .prepare<[string], { hash: string; policy: string; tunables: string; created_at: number }>(
        "SELECT * FROM policy_versions WHERE hash = ?",
      )
      .get(hash);
    return (
      row &&
      VersionRecord.parse({
        hash: row.hash,
        policy: row.policy,
        tunables: JSON.parse(row.tunables),
        createdAt: row.created_at,
      })
    );
  }

  recordVerification(result: VerificationRecord): void {
    const r = VerificationRecord.parse(result);
    this.#db
      .prepare(
        "INSERT INTO policy_verifications (hash, stage, passed, log, figures, at) VALUES (?, ?, ?, ?, ?, ?)",
      )
      .run(r.hash, r.stage, r.passed ? 1 : 0, r.log, r.figures ? JSON.stringify(r.figures) : null, r.at);
  }

  verifications(hash: string): VerificationRecord[] {
    const rows = this.#db
      .prepare<
        [string],
        { hash: string; stage: string; passed: number; log: string; figures: string | null; at: number }
      >(
        `SELECT * FROM policy_verifications WHERE id IN
           (SELECT max(id) FROM policy_verifications WHERE hash = ? GROUP BY stage) ORDER BY id`,
      )
      .all(hash);
    return rows.map((r) =>
      VerificationRecord.parse({
        hash: r.hash,
        stage: r.stage,
        passed: r.passed === 1,
        log: r.log,
        figures: r.figures === null ? undefined : JSON.parse(r.figures),
        at: r.at,
      }),
    );
  }

  startDeployment(hash: string, state: string, at: number): number {
    const info = this.#db
      .prepare("INSERT INTO policy_deployments (hash, state, started_at) VALUES (?, ?, ?)")
      .run(hash, state, at);
    return Number(info.lastInsertRowid);
  }

  updateDeployment(id: number, change: { state: string; endedAt?: number; reason?: string }): void {
    const info = this.#db
      .prepare(
        "UPDATE policy_deployments SET state = ?, ended_at = coalesce(?, ended_at), reason = coalesce(?, reason) WHERE id = ?",
      )
      .run(change.state, change.endedAt ?? null, change.reason ?? null, id);
    if (info.changes === 0) throw new Error(`no deployment with id ${id}`);
  }

  recentDeployments(limit: number): DeploymentRecord[] {
    return this.#db
      .prepare<
        [number],
        {
          id: number;
          hash: string;
          state: string;
          started_at: number;
          ended_at: number | null;
          reason: string | null;
        }
      >("SELECT * FROM policy_deployments ORDER BY id DESC LIMIT ?")
      .all(limit)
      .map((r) =>
        DeploymentRecord.parse({
          id: r.id,
          hash: r.hash,
          state: r.state,
          startedAt: r.started_at,
          endedAt: r.ended_at ?? undefined,
          reason: r.reason ?? undefined,
        }),
      );
  }

  recordOutcome(outcome: OutcomeRecord): void {
    const o = OutcomeRecord.parse(outcome);
    this.#db
      .prepare(
        "INSERT INTO policy_outcomes (hash, policy, signature, workload_class, effect, score, at) VALUES (?, ?, ?, ?, ?, ?, ?)",
      )
      .run(o.hash, o.policy, o.signature, o.workloadClass, JSON.stringify(o.effect), o.score, o.at);
  }

  outcomes(filter: { signature?: string; workloadClass?: string; policy?: string }): OutcomeRecord[] {
    const rows = this.#db
      .prepare<
        [{ signature: string | null; workloadClass: string | null; policy: string | null }],
        {
          hash: string;
          policy: string;
          signature: string;
          workload_class: string;
          effect: string;
          score: number;
          at: number;
        }
      >(
        `SELECT * FROM policy_outcomes WHERE (@signature IS NULL OR signature = @signature)
           AND (@workloadClass IS NULL OR workload_class = @workloadClass) AND (@policy IS NULL OR policy = @policy) ORDER BY score DESC, id DESC`,
      )
      .all({
        signature: filter.signature ?? null,
        workloadClass: filter.workloadClass ?? null,
        policy: filter.policy ?? null,
      });
    return rows.map((r) =>
      OutcomeRecord.parse({
        hash: r.hash,
        policy: r.policy,
        signature: r.signature,
        workloadClass: r.workload_class,
        effect: JSON.parse(r.effect),
        score: r.score,
        at: r.at,
      }),
    );
  }
}
