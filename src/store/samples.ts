import type { ObservationStore } from "../observe/persistence.ts";
import { PhaseChange, Sample } from "../observe/types.ts";
import { type Db, type Migration, StoreError } from "./db.ts";

// Observe's tables: the bounded ring of raw samples and the log of phase changes.

export const SAMPLE_MIGRATIONS: readonly Migration[] = [
  {
    family: "samples",
    version: 1,
    sql: `CREATE TABLE samples (
      seq INTEGER PRIMARY KEY AUTOINCREMENT,
      at INTEGER NOT NULL,
      record TEXT NOT NULL
    );
    CREATE TABLE phase_changes (
      id INTEGER PRIMARY KEY AUTOINCREMENT,
      at INTEGER NOT NULL,
      signature TEXT NOT NULL,
      class TEXT NOT NULL,
      from_signature TEXT,
      drift REAL NOT NULL,
      record TEXT NOT NULL
    );
    CREATE INDEX phase_changes_signature ON phase_changes (signature, at);`,
  },
];

/** Phase changes kept; far more than a host produces in months, but never unbounded. */
const PHASE_LOG_SIZE = 100_000;

export class SqliteObservationStore implements ObservationStore {
  readonly #ringSize: number;
  readonly #insertSample;
  readonly #trimSamples;
  readonly #recentSamples;
  readonly #countSamples;
  readonly #insertPhase;
  readonly #trimPhases;
  readonly #recentPhases;
  readonly #phasesTo;

  constructor(db: Db, ringSize: number) {
    this.#ringSize = ringSize;
    this.#insertSample = db.prepare<[number, string]>("INSERT INTO samples (at, record) VALUES (?, ?)");
    this.#trimSamples = db.prepare<[number]>("DELETE FROM samples WHERE seq <= ?");
    this.#recentSamples = db.prepare<[number], { record: string }>(
      "SELECT record FROM (SELECT seq, record FROM samples ORDER BY seq DESC LIMIT ?) ORDER BY seq",
    );
    this.#countSamples = db.prepare<[], { n: number }>("SELECT count(*) AS n FROM samples");
    this.#insertPhase = db.prepare<[number, string, string, string | null, number, string]>(
      "INSERT INTO phase_changes (at, signature, class, from_signature, drift, record) VALUES (?, ?, ?, ?, ?, ?)",
    );
    this.#trimPhases = db.prepare<[number]>("DELETE FROM phase_changes WHERE id <= ?");
    this.#recentPhases = db.prepare<[number], { record: string }>(
      "SELECT record FROM phase_changes ORDER BY id DESC LIMIT ?",
    );
    this.#phasesTo = db.prepare<[string, number], { record: string }>(
      "SELECT record FROM phase_changes WHERE signature = ? ORDER BY id DESC LIMIT ?",
    );
  }

  appendSample(sample: Sample): void {
    const { lastInsertRowid } = this.#insertSample.run(Math.round(sample.at), JSON.stringify(sample));
    this.#trimSamples.run(Number(lastInsertRowid) - this.#ringSize);
  }

  recentSamples(limit: number): Sample[] {
    return this.#recentSamples.all(limit).map((r) => parse(Sample, r.record, "samples"));
  }

  sampleCount(): number {
    return this.#countSamples.get()!.n;
  }

  recordPhaseChange(change: PhaseChange): void {
    const c = PhaseChange.parse(change);
    const { lastInsertRowid } = this.#insertPhase.run(
      Math.round(c.at),
      c.to.signature,
      c.to.class,
      c.from?.signature ?? null,
      c.drift,
      JSON.stringify(c),
    );
    this.#trimPhases.run(Number(lastInsertRowid) - PHASE_LOG_SIZE);
  }

  recentPhaseChanges(limit: number): PhaseChange[] {
    return this.#recentPhases.all(limit).map((r) => parse(PhaseChange, r.record, "phase_changes"));
  }

  phaseChangesTo(signature: string, limit: number): PhaseChange[] {
    return this.#phasesTo.all(signature, limit).map((r) => parse(PhaseChange, r.record, "phase_changes"));
  }
}

function parse<T>(
  schema: { safeParse(v: unknown): { success: true; data: T } | { success: false; error: Error } },
  record: string,
  table: string,
): T {
  let value: unknown;
  try {
    value = JSON.parse(record);
  } catch (error) {
    throw new StoreError(`${table}: stored row is not JSON: ${(error as Error).message}`);
  }
  const parsed = schema.safeParse(value);
  if (!parsed.success) throw new StoreError(`${table}: stored row does not parse: ${parsed.error.message}`);
  return parsed.data;
}
