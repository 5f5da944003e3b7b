// Runs inside the VM at the end of each run of the day, while the daemon still runs: prints what
// its store says (phases, deployments, the controller's state) beside what the kernel says, as
// one SCHEDCTL-RESULT line. A swap in flight is let finish first (up to SETTLE_MS), so the two
// are compared at rest. Read-only: it never changes the daemon's database.
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

const SETTLE_MS = 30_000;
const IN_FLIGHT = new Set(["deploying", "rolling_back"]);

function controllerPhase(db: Database.Database): string | undefined {
  const state = tableRows(db, "SELECT state FROM deploy_state WHERE id = 1")[0]?.state;
  return typeof state === "string" ? (JSON.parse(state) as { phase?: string }).phase : undefined;
}

const report: Record<string, unknown> = { load: "store", run: Number(run) };
if (dbPath && existsSync(dbPath)) {
  const db = new Database(dbPath, { readonly: true, fileMustExist: true });
  const started = Date.now();
  while (IN_FLIGHT.has(controllerPhase(db) ?? "") && Date.now() - started < SETTLE_MS)
    await new Promise((resolve) => setTimeout(resolve, 500));
  report.settleMs = Date.now() - started;
  report.kernel = { state: readSys("state"), ops: readSys("root/ops") };
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
  report.kernel = { state: readSys("state"), ops: readSys("root/ops") };
  report.missing = dbPath ?? "no state database named";
}
console.log(RESULT_MARKER + JSON.stringify(report));
