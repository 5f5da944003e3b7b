import { mkdirSync } from "node:fs";
import { dirname } from "node:path";
import Database from "better-sqlite3";

export type Db = Database.Database;

/**
 * A migration of one table family. Families migrate independently (each module of store/ owns
 * its tables and appends its own steps), so two families never compete for a version number.
 * A step, once released, is never edited: add a new one.
 */
export interface Migration {
  family: string;
  version: number;
  sql: string;
}

export class StoreError extends Error {
  override readonly name = "StoreError";
}

/** Opens (creating if needed) the state database in WAL mode and applies pending migrations. */
export function openDb(path: string, migrations: readonly Migration[]): Db {
  if (path !== ":memory:") mkdirSync(dirname(path), { recursive: true });
  let db: Db;
  try {
    db = new Database(path);
  } catch (error) {
    throw new StoreError(`${path}: cannot open the state database: ${(error as Error).message}`);
  }
  db.pragma("journal_mode = WAL");
  db.pragma("synchronous = NORMAL");
  db.pragma("foreign_keys = ON");
  db.pragma("busy_timeout = 5000");
  migrate(db, migrations, path);
  return db;
}

function migrate(db: Db, migrations: readonly Migration[], path: string): void {
  db.exec(`CREATE TABLE IF NOT EXISTS schema_migrations (
    family TEXT NOT NULL, version INTEGER NOT NULL, applied_at INTEGER NOT NULL,
    PRIMARY KEY (family, version))`);
  const applied = new Set(
    db
      .prepare<[], { family: string; version: number }>("SELECT family, version FROM schema_migrations")
      .all()
      .map((r) => `${r.family}/${r.version}`),
  );
  const record = db.prepare("INSERT INTO schema_migrations (family, version, applied_at) VALUES (?, ?, ?)");
  const ordered = [...migrations].sort((a, b) => a.family.localeCompare(b.family) || a.version - b.version);
  for (const m of ordered) {
    if (applied.has(`${m.family}/${m.version}`)) continue;
    try {
      db.transaction(() => {
        db.exec(m.sql);
        record.run(m.family, m.version, Date.now());
      })();
    } catch (error) {
      throw new StoreError(`${path}: migration ${m.family}/${m.version} failed: ${(error as Error).message}`);
    }
  }
}
