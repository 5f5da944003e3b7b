import { z } from "zod";
import {
  ControllerState,
  type DeploymentRecord,
  type DeploymentStore,
  Kpis,
  Outcome,
  type QuarantineEntry,
  type TransitionRecord,
} from "../deploy/types.ts";
import { type Db, type Migration, StoreError } from "./db.ts";

// Deploy's persistence: the controller's state (one row), its transition log, deployments with
// their baseline and probation KPIs, probation failures and the quarantine decide reads.

export const DEPLOYMENT_MIGRATIONS: readonly Migration[] = [
  {
    family: "deployments",
    version: 1,
    sql: `CREATE TABLE deploy_state (id INTEGER PRIMARY KEY CHECK (id = 1), state TEXT NOT NULL, at INTEGER NOT NULL);
    CREATE TABLE deploy_transitions (
      id INTEGER PRIMARY KEY AUTOINCREMENT,
      at INTEGER NOT NULL, from_phase TEXT NOT NULL, to_phase TEXT NOT NULL,
      event TEXT NOT NULL, reason TEXT NOT NULL, hash TEXT
    );
    CREATE TABLE deployments (
      id INTEGER PRIMARY KEY AUTOINCREMENT,
      hash TEXT NOT NULL, policy TEXT NOT NULL, signature TEXT, cgroup TEXT,
      started_at INTEGER NOT NULL, ended_at INTEGER,
      outcome TEXT NOT NULL, reason TEXT NOT NULL, kernel_reason TEXT, gap_ms REAL,
      baseline TEXT NOT NULL, probation TEXT NOT NULL
    );
    CREATE INDEX deployments_hash ON deployments (hash, signature);
    CREATE TABLE probation_failures (
      hash TEXT NOT NULL, signature TEXT NOT NULL, failures INTEGER NOT NULL,
      PRIMARY KEY (hash, signature)
    );
    CREATE TABLE quarantine (
      hash TEXT NOT NULL, policy TEXT NOT NULL, signature TEXT NOT NULL, at INTEGER NOT NULL, reason TEXT NOT NULL,
      PRIMARY KEY (hash, signature)
    );`,
  },
];

interface DeploymentRow {
  id: number;
  hash: string;
  policy: string;
  signature: string | null;
  cgroup: string | null;
  started_at: number;
  ended_at: number | null;
  outcome: string;
  reason: string;
  kernel_reason: string | null;
  gap_ms: number | null;
  baseline: string;
  probation: string;
}

const KpiList = z.array(Kpis);

export class SqliteDeploymentStore implements DeploymentStore {
  readonly #db: Db;

  constructor(db: Db) {
    this.#db = db;
  }

  loadState(): ControllerState | undefined {
    const row = this.#db.prepare<[], { state: string }>("SELECT state FROM deploy_state WHERE id = 1").get();
    if (!row) return undefined;
    const parsed = ControllerState.safeParse(JSON.parse(row.state));
    if (!parsed.success)
      throw new StoreError(`deploy_state: stored state does not parse: ${parsed.error.message}`);
    return parsed.data;
  }

  saveState(state: ControllerState): void {
    this.#db
      .prepare(
        "INSERT INTO deploy_state (id, state, at) VALUES (1, ?, ?) ON CONFLICT (id) DO UPDATE SET state = excluded.state, at = excluded.at",
      )
      .run(JSON.stringify(ControllerState.parse(state)), Date.now());
  }

  appendTransition(r: TransitionRecord): void {
    this.#db
      .prepare(
        "INSERT INTO deploy_transitions (at, from_phase, to_phase, event, reason, hash) VALUES (?, ?, ?, ?, ?, ?)",
      )
      .run(r.at, r.from, r.to, r.event, r.reason, r.hash ?? null);
  }

  transitions(limit = 100): TransitionRecord[] {
    return this.#db
      .prepare<
        [number],
        {
          at: number;
          from_phase: string;
          to_phase: string;
          event: string;
          reason: string;
          hash: string | null;
        }
      >("SELECT * FROM (SELECT * FROM deploy_transitions ORDER BY id DESC LIMIT ?) ORDER BY id")
      .all(limit)
      .map((r) => ({
        at: r.at,
        from: r.from_phase as TransitionRecord["from"],
        to: r.to_phase as TransitionRecord["to"],
        event: r.event,
        reason: r.reason,
        hash: r.hash ?? undefined,
      }));
  }

  saveDeployment(d: DeploymentRecord): number {
    const values = [
      d.hash,
      d.policy,
      d.signature ?? null,
      d.cgroup ?? null,
      d.startedAt,
      d.endedAt ?? null,
      Outcome.parse(d.outcome),
      d.reason,
      d.kernelReason ?? null,
      d.gapMs ?? null,
      JSON.stringify(KpiList.parse(d.baseline)),
      JSON.stringify(KpiList.parse(d.probation)),
    ];
    if (d.id === undefined) {
      const info = this.#db
        .prepare(
          `INSERT INTO deployments (hash, policy, signature, cgroup, started_at, ended_at, outcome, reason, kernel_reason, gap_ms, baseline, probation)
           VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
        )
        .run(...values);
      return Number(info.lastInsertRowid);
    }
    this.#db
      .prepare(
        `UPDATE deployments SET hash = ?, policy = ?, signature = ?, cgroup = ?, started_at = ?, ended_at = ?, outcome = ?,
         reason = ?, kernel_reason = ?, gap_ms = ?, baseline = ?, probation = ? WHERE id = ?`,
      )
      .run(...values, d.id);
    return d.id;
  }

  getDeployment(id: number): DeploymentRecord | undefined {
    const row = this.#db.prepare<[number], DeploymentRow>("SELECT * FROM deployments WHERE id = ?").get(id);
    return row ? fromRow(row) : undefined;
  }

  deployments(limit = 50): DeploymentRecord[] {
    return this.#db
      .prepare<[number], DeploymentRow>("SELECT * FROM deployments ORDER BY id DESC LIMIT ?")
      .all(limit)
      .map(fromRow);
  }

  addProbationFailure(hash: string, signature: string): number {
    return this.#db
      .prepare<[string, string], { failures: number }>(
        `INSERT INTO probation_failures (hash, signature, failures) VALUES (?, ?, 1)
         ON CONFLICT (hash, signature) DO UPDATE SET failures = failures + 1 RETURNING failures`,
      )
      .get(hash, signature)!.failures;
  }

  quarantine(e: QuarantineEntry): void {
    this.#db
      .prepare(
        `INSERT INTO quarantine (hash, policy, signature, at, reason) VALUES (?, ?, ?, ?, ?)
         ON CONFLICT (hash, signature) DO UPDATE SET at = excluded.at, reason = excluded.reason`,
      )
      .run(e.hash, e.policy, e.signature, e.at, e.reason);
  }

  isQuarantined(hash: string, signature: string): boolean {
    return (
      this.#db.prepare("SELECT 1 FROM quarantine WHERE hash = ? AND signature = ?").get(hash, signature) !==
      undefined
    );
  }

  quarantined(signature: string): QuarantineEntry[] {
    return this.#db
      .prepare<[string], QuarantineEntry>(
        "SELECT hash, policy, signature, at, reason FROM quarantine WHERE signature = ? ORDER BY at",
      )
      .all(signature);
  }
}

function fromRow(r: DeploymentRow): DeploymentRecord {
  return {
    id: r.id,
    hash: r.hash,
    policy: r.policy,
    signature: r.signature ?? undefined,
    cgroup: r.cgroup ?? undefined,
    startedAt: r.started_at,
    endedAt: r.ended_at ?? undefined,
    outcome: Outcome.parse(r.outcome),
    reason: r.reason,
    kernelReason: r.kernel_reason ?? undefined,
    gapMs: r.gap_ms ?? undefined,
    baseline: KpiList.parse(JSON.parse(r.baseline)),
    probation: KpiList.parse(JSON.parse(r.probation)),
  };
}
