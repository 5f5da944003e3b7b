import { z } from "zod";
import {
  type Consultation,
  ConsultationStatus,
  type DecideStore,
  Decision,
  type LlmCallRecord,
  type LlmUsage,
  Outcome,
} from "../decide/types.ts";
import type { WorkloadClass } from "../observe/types.ts";
import { type Db, type Migration, StoreError } from "./db.ts";

// The Decide stage's memory: decisions taken, outcomes of deployed decisions (the planner's
// evidence), and the LLM audit trail (consultations and every call, which is also the budget's
// ledger). JSON columns are validated with zod when read back.

export const DECISION_MIGRATIONS: readonly Migration[] = [
  {
    family: "decide",
    version: 1,
    sql: `
      CREATE TABLE decide_decisions (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        at INTEGER NOT NULL,
        signature TEXT NOT NULL,
        class TEXT NOT NULL,
        chooser TEXT NOT NULL,
        confidence REAL NOT NULL,
        rationale TEXT NOT NULL,
        consultation_id INTEGER,
        decision_json TEXT NOT NULL);
      CREATE INDEX decide_decisions_signature ON decide_decisions (signature, id);
      CREATE TABLE decide_outcomes (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        at INTEGER NOT NULL,
        signature TEXT NOT NULL,
        class TEXT NOT NULL,
        kpi_ratio REAL NOT NULL,
        passed INTEGER NOT NULL,
        rolled_back INTEGER NOT NULL,
        quarantined INTEGER NOT NULL,
        decision_id INTEGER,
        outcome_json TEXT NOT NULL);
      CREATE INDEX decide_outcomes_signature ON decide_outcomes (signature, id);
      CREATE INDEX decide_outcomes_class ON decide_outcomes (class, id);
      CREATE TABLE llm_consultations (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        signature TEXT NOT NULL,
        started_at INTEGER NOT NULL,
        finished_at INTEGER,
        status TEXT NOT NULL,
        goal TEXT,
        decision_json TEXT,
        rationale TEXT,
        outcome TEXT);
      CREATE INDEX llm_consultations_signature ON llm_consultations (signature, id);
      CREATE TABLE llm_calls (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        consultation_id INTEGER,
        at INTEGER NOT NULL,
        stage TEXT NOT NULL,
        provider TEXT NOT NULL,
        model TEXT NOT NULL,
        prompt_hash TEXT NOT NULL,
        input_tokens INTEGER NOT NULL,
        output_tokens INTEGER NOT NULL,
        cost_usd REAL NOT NULL,
        latency_ms REAL NOT NULL,
        result TEXT NOT NULL);
      CREATE INDEX llm_calls_at ON llm_calls (at);`,
  },
];

const ConsultationRow = z.object({
  id: z.number().int(),
  signature: z.string(),
  started_at: z.number(),
  status: ConsultationStatus,
  goal: z.string().nullable(),
  decision_json: z.string().nullable(),
  rationale: z.string().nullable(),
  outcome: z.string().nullable(),
});

export class SqliteDecideStore implements DecideStore {
  readonly #db: Db;

  constructor(db: Db) {
    this.#db = db;
  }

  addDecision(decision: Decision): number {
    const d = Decision.parse(decision);
    const result = this.#db
      .prepare(
        `INSERT INTO decide_decisions (at, signature, class, chooser, confidence, rationale, consultation_id, decision_json)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
      )
      .run(
        d.at,
        d.signature,
        d.class,
        d.chooser,
        d.confidence,
        d.rationale,
        d.consultationId ?? null,
        JSON.stringify(d),
      );
    return Number(result.lastInsertRowid);
  }

  /** The latest decisions, newest first (for status displays and the audit). */
  recentDecisions(limit: number): { id: number; decision: Decision }[] {
    return this.#db
      .prepare<[number], { id: number; decision_json: string }>(
        "SELECT id, decision_json FROM decide_decisions ORDER BY id DESC LIMIT ?",
      )
      .all(limit)
      .map((row) => ({
        id: row.id,
        decision: parseJson(Decision, row.decision_json, `decide_decisions ${row.id}`),
      }));
  }

  addOutcome(outcome: Outcome): void {
    const o = Outcome.parse(outcome);
    this.#db
      .prepare(
        `INSERT INTO decide_outcomes (at, signature, class, kpi_ratio, passed, rolled_back, quarantined, decision_id, outcome_json)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      )
      .run(
        o.at,
        o.signature,
        o.class,
        o.kpiRatio,
        o.passed ? 1 : 0,
        o.rolledBack ? 1 : 0,
        o.quarantined ? 1 : 0,
        o.decisionId ?? null,
        JSON.stringify(o),
      );
  }

  outcomesForSignature(signature: string): Outcome[] {
    return this.#outcomes(
      "SELECT id, outcome_json FROM decide_outcomes WHERE signature = ? ORDER BY id",
      signature,
    );
  }

  outcomesForClass(workloadClass: WorkloadClass): Outcome[] {
    return this.#outcomes(
      "SELECT id, outcome_json FROM decide_outcomes WHERE class = ? ORDER BY id",
      workloadClass,
    );
  }

  /** What became of a stored decision (its newest outcome), for status and explain. */
  outcomeOfDecision(decisionId: number): Outcome | undefined {
    const row = this.#db
      .prepare<[number], { id: number; outcome_json: string }>(
        "SELECT id, outcome_json FROM decide_outcomes WHERE decision_id = ? ORDER BY id DESC LIMIT 1",
      )
      .get(decisionId);
    return row ? parseJson(Outcome, row.outcome_json, `decide_outcomes ${row.id}`) : undefined;
  }

  /** Outcomes measured after `at`, oldest first, at most `limit` (what the fleet has not heard of). */
  outcomesSince(at: number, limit: number): Outcome[] {
    return this.#outcomes(
      "SELECT id, outcome_json FROM decide_outcomes WHERE at > ? ORDER BY at, id LIMIT ?",
      at,
      limit,
    );
  }

  #outcomes(sql: string, ...args: (string | number)[]): Outcome[] {
    return this.#db
      .prepare<(string | number)[], { id: number; outcome_json: string }>(sql)
      .all(...args)
      .map((row) => parseJson(Outcome, row.outcome_json, `decide_outcomes ${row.id}`));
  }

  /** The signature a consultation was held for. */
  consultationSignature(id: number): string | undefined {
    const row = this.#db.prepare("SELECT signature FROM llm_consultations WHERE id = ?").get(id) as
      | { signature: string }
      | undefined;
    return row?.signature;
  }

  startConsultation(signature: string, at: number): number {
    const result = this.#db
      .prepare("INSERT INTO llm_consultations (signature, started_at, status) VALUES (?, ?, 'running')")
      .run(signature, at);
    return Number(result.lastInsertRowid);
  }

  finishConsultation(
    id: number,
    result: { status: ConsultationStatus; goal?: string; decision?: Decision; rationale: string },
  ): void {
    this.#db
      .prepare(
        `UPDATE llm_consultations SET status = ?, goal = ?, decision_json = ?, rationale = ?, finished_at = ?
         WHERE id = ?`,
      )
      .run(
        ConsultationStatus.parse(result.status),
        result.goal ?? null,
        result.decision ? JSON.stringify(Decision.parse(result.decision)) : null,
        result.rationale,
        Date.now(),
        id,
      );
  }

  setConsultationOutcome(id: number, outcome: string): void {
    this.#db.prepare("UPDATE llm_consultations SET outcome = ? WHERE id = ?").run(outcome, id);
  }

  consultationFor(signature: string): Consultation | undefined {
    const row = this.#db
      .prepare<[string], unknown>(
        `SELECT id, signature, started_at, status, goal, decision_json, rationale, outcome
         FROM llm_consultations WHERE signature = ? ORDER BY id DESC LIMIT 1`,
      )
      .get(signature);
    return row === undefined ? undefined : toConsultation(row);
  }

  /** Every consultation, newest first, with its calls' totals: the audit trail later interfaces show. */
  consultations(limit: number): (Consultation & LlmUsage & { latencyMs: number })[] {
    const rows = this.#db
      .prepare<[number], Record<string, unknown>>(
        `SELECT c.id, c.signature, c.started_at, c.status, c.goal, c.decision_json, c.rationale, c.outcome,
                count(k.id) AS calls, coalesce(sum(k.input_tokens + k.output_tokens), 0) AS tokens,
                coalesce(sum(k.cost_usd), 0) AS cost, coalesce(sum(k.latency_ms), 0) AS latency
         FROM llm_consultations c LEFT JOIN llm_calls k ON k.consultation_id = c.id
         GROUP BY c.id ORDER BY c.id DESC LIMIT ?`,
      )
      .all(limit);
    return rows.map((row) => ({
      ...toConsultation(row),
      calls: Number(row.calls),
      tokens: Number(row.tokens),
      costUsd: Number(row.cost),
      latencyMs: Number(row.latency),
    }));
  }

  addCall(call: LlmCallRecord): void {
    this.#db
      .prepare(
        `INSERT INTO llm_calls (consultation_id, at, stage, provider, model, prompt_hash, input_tokens, output_tokens,
           cost_usd, latency_ms, result) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      )
      .run(
        call.consultationId ?? null,
        call.at,
        call.stage,
        call.provider,
        call.model,
        call.promptHash,
        call.inputTokens,
        call.outputTokens,
        call.costUsd,
        call.latencyMs,
        call.result,
      );
  }

  /** Calls that reached the model (result "ok"), their tokens and cost, since the given time. */
  usageSince(sinceMs: number): LlmUsage {
    const row = this.#db
      .prepare<[number], { calls: number; tokens: number | null; cost: number | null }>(
        `SELECT count(*) AS calls, sum(input_tokens + output_tokens) AS tokens, sum(cost_usd) AS cost
         FROM llm_calls WHERE at >= ? AND result = 'ok'`,
      )
      .get(sinceMs);
    return { calls: row?.calls ?? 0, tokens: row?.tokens ?? 0, costUsd: row?.cost ?? 0 };
  }
}

function toConsultation(raw: unknown): Consultation {
  const row = ConsultationRow.parse(raw);
  return {
    id: row.id,
    signature: row.signature,
    startedAt: row.started_at,
    status: row.status,
    ...(row.goal !== null && { goal: row.goal }),
    ...(row.decision_json !== null && {
      decision: parseJson(Decision, row.decision_json, `llm_consultations ${row.id}`),
    }),
    ...(row.rationale !== null && { rationale: row.rationale }),
    ...(row.outcome !== null && { outcome: row.outcome }),
  };
}

function parseJson<T>(schema: z.ZodType<T>, json: string, where: string): T {
  let value: unknown;
  try {
    value = JSON.parse(json);
  } catch (error) {
    throw new StoreError(`${where}: stored JSON is corrupt: ${(error as Error).message}`);
  }
  const parsed = schema.safeParse(value);
  if (!parsed.success) {
    throw new StoreError(
      `${where}: stored record does not match its schema: ${parsed.error.issues[0]?.message}`,
    );
  }
  return parsed.data;
}
