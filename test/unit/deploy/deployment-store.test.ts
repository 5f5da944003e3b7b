import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { initialState } from "../../../src/deploy/machine.ts";
import type { DeploymentRecord } from "../../../src/deploy/types.ts";
import { openDb } from "../../../src/store/db.ts";
import { DEPLOYMENT_MIGRATIONS, SqliteDeploymentStore } from "../../../src/store/deployments.ts";
import { tempDir } from "../../helpers/tmp.ts";

describe("deployment store (SQLite)", () => {
  it("persists state, transitions, deployments with KPIs, failures and the quarantine", () => {
    const path = join(tempDir(), "state.db");
    const store = new SqliteDeploymentStore(openDb(path, DEPLOYMENT_MIGRATIONS));
    const state = {
      ...initialState(5),
      paused: true,
      recent: [{ psiCpuSome: 0.1, runDelayPerCpuTime: 0.2 }],
    };
    store.saveState(state);
    store.appendTransition({
      at: 6,
      from: "idle",
      to: "deploying",
      event: "apply",
      reason: "phase",
      hash: "h",
    });
    const record: DeploymentRecord = {
      hash: "d".repeat(64),
      policy: "latency",
      signature: "sig",
      cgroup: "/api.service",
      startedAt: 10,
      endedAt: undefined,
      outcome: "in_probation",
      reason: "phase",
      kernelReason: undefined,
      gapMs: undefined,
      baseline: [{ psiCpuSome: 0.1, runDelayPerCpuTime: 0.2, cgroupPsiCpuSome: 0.01 }],
      probation: [],
    };
    const id = store.saveDeployment(record);
    store.saveDeployment({
      ...record,
      id,
      outcome: "rolled_back",
      endedAt: 20,
      gapMs: 42,
      probation: record.baseline,
    });
    expect(store.addProbationFailure("h", "sig")).toBe(1);
    expect(store.addProbationFailure("h", "sig")).toBe(2);
    store.quarantine({ hash: "h", policy: "latency", signature: "sig", at: 30, reason: "2 failures" });

    const reopened = new SqliteDeploymentStore(openDb(path, DEPLOYMENT_MIGRATIONS));
    expect(reopened.loadState()).toEqual(state);
    expect(reopened.transitions()).toEqual([
      { at: 6, from: "idle", to: "deploying", event: "apply", reason: "phase", hash: "h" },
    ]);
    expect(reopened.getDeployment(id)).toEqual({
      ...record,
      id,
      outcome: "rolled_back",
      endedAt: 20,
      gapMs: 42,
      probation: record.baseline,
    });
    expect(reopened.isQuarantined("h", "sig")).toBe(true);
    expect(reopened.isQuarantined("h", "other")).toBe(false);
    expect(reopened.quarantined("sig")).toEqual([
      { hash: "h", policy: "latency", signature: "sig", at: 30, reason: "2 failures" },
    ]);
  });
});
