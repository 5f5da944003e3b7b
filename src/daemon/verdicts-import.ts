import { existsSync } from "node:fs";
import type { Db } from "../store/db.ts";
import { openDb } from "../store/db.ts";
import { SqliteVerdictStore, VERDICT_MIGRATIONS } from "../store/verdicts.ts";

// Verdicts produced ahead of time: a verification run elsewhere (a build host's `schedctl
// verify`, a package's postinst, the VM harness running the catalogue's variants in one
// sandbox boot) by the same verifier on the same content hashes. The daemon uses a stored
// verdict as it is and never recomputes it, so copying the rows in is all it takes; a hash
// that already has a verdict here keeps it.

export interface ImportResult {
  imported: number;
  kept: number;
}

export function importVerdicts(fromPath: string, into: Db): ImportResult {
  if (!existsSync(fromPath)) throw new Error(`${fromPath}: no such state database`);
  const from = openDb(fromPath, VERDICT_MIGRATIONS);
  try {
    const source = new SqliteVerdictStore(from);
    const target = new SqliteVerdictStore(into);
    const result: ImportResult = { imported: 0, kept: 0 };
    for (const verdict of source.recent(Number.MAX_SAFE_INTEGER)) {
      if (target.getVerdict(verdict.hash)) {
        result.kept++;
        continue;
      }
      target.putVerdict(verdict);
      result.imported++;
    }
    return result;
  } finally {
    from.close();
  }
}
