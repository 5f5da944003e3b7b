import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { openDb } from "../../../src/store/db.ts";
import { SqliteVerdictStore, VERDICT_MIGRATIONS } from "../../../src/store/verdicts.ts";
import type { Verdict } from "../../../src/verify/types.ts";
import { tempDir } from "../../helpers/tmp.ts";

const hash = "c".repeat(64);
const verdict: Verdict = {
  hash,
  policy: { origin: "builtin", name: "fifo", tunables: { slice_us: 2000 }, hash },
  stage: "dynamic",
  passed: true,
  log: "dynamic run passed",
  opsName: "schedctl_fifo",
  figures: {
    seconds: 8,
    workers: 5,
    progress: [10, 20, 20, 25, 25],
    minProgress: 10,
    meanProgress: 20,
    jainIndex: 0.93,
    opsPerSec: 12.5,
    latencyP50Us: 300,
    latencyP99Us: 9000,
    requestsPerSec: 40,
    cyclictestP50Us: 80,
    cyclictestP99Us: 4000,
    cyclictestMaxUs: 9000,
    stillEnabled: true,
  },
  againstDefault: {
    minShareRatio: 0.5,
    latencyP99Ratio: 1.2,
    cyclictestP99Ratio: 1.1,
    throughputRatio: 0.98,
    forkRatio: 0.7,
  },
  admits: ["throughput"],
  compiledAgainst: "the sandbox kernel 7.3.4+deb13-cloud-amd64 (this host's kernel has no sched_ext)",
  timings: { compileMs: 300, staticMs: 20, sandboxMs: 30_000 },
  at: 1_700_000_000_000,
};

describe("verdict store (SQLite)", () => {
  it("keeps verdicts by content hash across reopen, and never overwrites the first", () => {
    const path = join(tempDir(), "state.db");
    const db = openDb(path, VERDICT_MIGRATIONS);
    const store = new SqliteVerdictStore(db);
    expect(store.getVerdict(hash)).toBeUndefined();
    store.putVerdict(verdict);
    store.putVerdict({ ...verdict, passed: false, stage: "kernel", log: "later" });
    db.close();
    const again = new SqliteVerdictStore(openDb(path, VERDICT_MIGRATIONS));
    expect(again.getVerdict(hash)).toEqual(verdict);
    expect(again.recent()).toHaveLength(1);
  });

  it("refuses a malformed verdict with the field that is wrong", () => {
    const store = new SqliteVerdictStore(openDb(":memory:", VERDICT_MIGRATIONS));
    expect(() => store.putVerdict({ ...verdict, hash: "nope" })).toThrow(/hash/);
  });
});
