import { type Db, type Migration, openDb } from "./db.ts";
import { DECISION_MIGRATIONS } from "./decisions.ts";
import { DEPLOYMENT_MIGRATIONS } from "./deployments.ts";
import { POLICY_MIGRATIONS } from "./policies.ts";
import { SAMPLE_MIGRATIONS } from "./samples.ts";
import { VERDICT_MIGRATIONS } from "./verdicts.ts";

// Every table family's migrations. A family module (samples.ts, policies.ts, ...) exports its
// own list; add it here. Order between families does not matter.
export const ALL_MIGRATIONS: readonly Migration[] = [
  ...SAMPLE_MIGRATIONS,
  ...DECISION_MIGRATIONS,
  ...DEPLOYMENT_MIGRATIONS,
  ...VERDICT_MIGRATIONS,
  ...POLICY_MIGRATIONS,
];

export function openStateDb(path: string): Db {
  return openDb(path, ALL_MIGRATIONS);
}
