import { type Db, type Migration, openDb } from "./db.ts";

// Every table family's migrations. A family module (samples.ts, policies.ts, ...) exports its
// own list; add it here. Order between families does not matter.
export const ALL_MIGRATIONS: readonly Migration[] = [];

export function openStateDb(path: string): Db {
  return openDb(path, ALL_MIGRATIONS);
}
