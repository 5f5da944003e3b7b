// Runs inside the VM at the end of each run of the day, while the daemon still runs: prints what
// its store says (phases, deployments, the controller's state) beside what the kernel says, as
// one SCHEDCTL-RESULT line. Read-only: it never changes the daemon's database.
//
//   node guest-dump.js STATE_DB RUN
import { existsSync, readFileSync } from "node:fs";
import Database from "better-sqlite3";
import { RESULT_MARKER } from "../sandbox/types.ts";

const [dbPath, run] = process.argv.slice(2);

function readSys(name: string): string | null {
  try {
    return readFileSync(`/sys/kernel/sched_ext/${name}`, "utf8").trim();
  } catch {
    return null;
  }
}

function tableRows(db: Database.Database, sql: string): Record<string, unknown>[] {
  try {
    return db.prepare(sql).all() as Record<string, unknown>[];
  } catch {
    return []; // a store from before the table existed
  }
}

const report: Record<string, unknown> = {
  load: "store",
  run: Number(run),
  kernel: { state: readSys("state"), ops: readSys("root/ops") },
};
if (dbPath && existsSync(dbPath)) {
  const db = new Database(dbPath, { readonly: true, fileMustExist: true });
  report.phases = tableRows(db, "SELECT at, class, signature FROM phase_changes ORDER BY id");
  report.deployments = tableRows(
    db,
    "SELECT policy, hash, signature, started_at AS startedAt, ended_at AS endedAt, outcome, reason, kernel_reason AS kernelReason FROM deployments ORDER BY id",
  );
  const state = tableRows(db, "SELECT state FROM deploy_state WHERE id = 1")[0]?.state;
  if (typeof state === "string") {
    const parsed = JSON.parse(state) as {
      phase?: string;
      current?: { ref?: { name?: string }; loadable?: { opsName?: string } };
    };
    report.controller = {
      phase: parsed.phase,
      policy: parsed.current?.ref?.name ?? null,
      opsName: parsed.current?.loadable?.opsName ?? null,
    };
  }
  report.verdicts = tableRows(db, "SELECT COUNT(*) AS n, SUM(passed) AS passed FROM verdicts")[0] ?? null;
  db.close();
} else {
  report.missing = dbPath ?? "no state database named";
}
console.log(RESULT_MARKER + JSON.stringify(report));
