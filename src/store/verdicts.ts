import { Verdict, type VerdictStore } from "../verify/types.ts";
import { type Db, type Migration, StoreError } from "./db.ts";

// Verify's verdict cache: one row per content hash, never recomputed (a second put for the
// same hash keeps the first verdict).

export const VERDICT_MIGRATIONS: readonly Migration[] = [
  {
    family: "verdicts",
    version: 1,
    sql: `CREATE TABLE verdicts (
      hash TEXT PRIMARY KEY,
      policy TEXT NOT NULL,
      stage TEXT NOT NULL,
      passed INTEGER NOT NULL,
      at INTEGER NOT NULL,
      record TEXT NOT NULL
    );
    CREATE INDEX verdicts_policy ON verdicts (policy, passed);`,
  },
];

export class SqliteVerdictStore implements VerdictStore {
  readonly #get;
  readonly #put;
  readonly #list;

  constructor(db: Db) {
    this.#get = db.prepare<[string], { record: string }>("SELECT record FROM verdicts WHERE hash = ?");
    this.#put = db.prepare(
      "INSERT INTO verdicts (hash, policy, stage, passed, at, record) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (hash) DO NOTHING",
    );
    this.#list = db.prepare<[number], { record: string }>(
      "SELECT record FROM verdicts ORDER BY at DESC LIMIT ?",
    );
  }

  getVerdict(hash: string): Verdict | undefined {
    const row = this.#get.get(hash);
    return row ? parse(row.record, hash) : undefined;
  }

  putVerdict(verdict: Verdict): void {
    const v = Verdict.parse(verdict);
    this.#put.run(v.hash, v.policy.name, v.stage, v.passed ? 1 : 0, v.at, JSON.stringify(v));
  }

  recent(limit = 50): Verdict[] {
    return this.#list.all(limit).map((r) => parse(r.record, "recent"));
  }
}

function parse(record: string, where: string): Verdict {
  const parsed = Verdict.safeParse(JSON.parse(record));
  if (!parsed.success)
    throw new StoreError(`verdicts/${where}: stored verdict does not parse: ${parsed.error.message}`);
  return parsed.data;
}
