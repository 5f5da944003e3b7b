// Runs inside the sched_ext VM after schedctld stopped: reads what the daemon stored (the same
// SQLite file `schedctl history`/`explain` read through the daemon) and prints it as one
// `SCHEDCTL-RESULT {...}` line for the host-side test.
//
//   node daemon-report.js STATE_DB SCENARIO
import { RESULT_MARKER } from "../../../src/sandbox/types.ts";
import { SqliteDecideStore } from "../../../src/store/decisions.ts";
import { SqliteDeploymentStore } from "../../../src/store/deployments.ts";
import { SqliteObservationStore } from "../../../src/store/samples.ts";
import { openStateDb } from "../../../src/store/store.ts";
import { SqliteVerdictStore } from "../../../src/store/verdicts.ts";

const [path, scenario] = process.argv.slice(2);
const db = openStateDb(path!);
const decisions = new SqliteDecideStore(db);
const report = {
  load: "daemon",
  scenario,
  phases: new SqliteObservationStore(db, 100)
    .recentPhaseChanges(50)
    .reverse()
    .map((c) => ({ at: c.at, class: c.to.class, signature: c.to.signature, drift: c.drift })),
  decisions: decisions
    .recentDecisions(50)
    .reverse()
    .map(({ id, decision }) => ({
      id,
      chooser: decision.chooser,
      class: decision.class,
      signature: decision.signature,
      policy: decision.policy.kind === "policy" ? decision.policy.name : "default",
      origin: decision.policy.kind === "policy" ? decision.policy.origin : "default",
      rationale: decision.rationale,
      outcome: decisions.outcomeOfDecision(id) ?? null,
    })),
  consultations: decisions
    .consultations(10)
    .map((c) => ({ status: c.status, calls: c.calls, outcome: c.outcome })),
  verdicts: new SqliteVerdictStore(db).recent(50).map((v) => ({
    policy: v.policy.name,
    hash: v.hash,
    passed: v.passed,
    stage: v.stage,
    log: v.log.slice(0, 600),
  })),
  deployments: new SqliteDeploymentStore(db)
    .deployments(50)
    .reverse()
    .map((d) => ({
      policy: d.policy,
      hash: d.hash,
      outcome: d.outcome,
      reason: d.reason,
      probation: d.probation.length,
    })),
};
console.log(RESULT_MARKER + JSON.stringify(report));
db.close();
