import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { main } from "../../../src/daemon/main.ts";
import { openDb } from "../../../src/store/db.ts";
import { openStateDb } from "../../../src/store/store.ts";
import { SqliteVerdictStore, VERDICT_MIGRATIONS } from "../../../src/store/verdicts.ts";
import type { Verdict } from "../../../src/verify/types.ts";
import { tempDir } from "../../helpers/tmp.ts";

function verdict(hashDigit: string, passed: boolean): Verdict {
  const hash = hashDigit.repeat(64);
  return {
    hash,
    policy: { origin: "builtin", name: "latency", tunables: {}, hash },
    stage: "dynamic",
    passed,
    log: passed ? "sandbox run passed" : "ejected in the sandbox",
    opsName: "schedctl_latency",
    at: 1,
  };
}

describe("schedctld --import-verdicts", () => {
  it("copies verdicts made ahead of time into the state database, keeping those it already has", async () => {
    const dir = tempDir();
    const made = openDb(join(dir, "made.db"), VERDICT_MIGRATIONS);
    new SqliteVerdictStore(made).putVerdict(verdict("a", true));
    new SqliteVerdictStore(made).putVerdict(verdict("b", false));
    made.close();
    const state = join(dir, "state");
    const own = openStateDb(join(state, "state.db"));
    new SqliteVerdictStore(own).putVerdict({ ...verdict("b", true), log: "verified here" });
    own.close();

    const code = await main([
      "--import-verdicts",
      join(dir, "made.db"),
      "--state-dir",
      state,
      "--config",
      dir,
    ]);
    expect(code).toBe(0);
    const after = new SqliteVerdictStore(openStateDb(join(state, "state.db")));
    expect(after.getVerdict("a".repeat(64))).toMatchObject({ passed: true, stage: "dynamic" });
    expect(after.getVerdict("b".repeat(64))).toMatchObject({ passed: true, log: "verified here" });
  });

  it("says what is wrong with a missing database and fails", async () => {
    const dir = tempDir();
    expect(await main(["--import-verdicts", join(dir, "nope.db"), "--state-dir", dir, "--config", dir])).toBe(
      1,
    );
  });
});
