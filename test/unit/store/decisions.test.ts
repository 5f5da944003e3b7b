import { join } from "node:path";
import { describe, expect, it } from "vitest";
import type { Decision } from "../../../src/decide/types.ts";
import { StoreError } from "../../../src/store/db.ts";
import { SqliteDecideStore } from "../../../src/store/decisions.ts";
import { openStateDb } from "../../../src/store/store.ts";
import { tempDir } from "../../helpers/tmp.ts";

const decision: Decision = {
  at: 10,
  signature: "sig-a",
  class: "latency",
  policy: { kind: "policy", origin: "builtin", name: "latency", tunables: { slice_us: 2000 } },
  chooser: "llm",
  rationale: "llm (goal: latency): short slices",
  confidence: 0.8,
  cgroup: "/system.slice/api.service",
  candidates: [],
  consultationId: 1,
};

describe("SqliteDecideStore", () => {
  it("keeps decisions, outcomes and the LLM audit across a reopen, and sums usage from ok calls", () => {
    const path = join(tempDir(), "state.db");
    const db = openStateDb(path);
    const store = new SqliteDecideStore(db);
    const cid = store.startConsultation("sig-a", 5);
    store.addCall({
      consultationId: cid,
      at: 6,
      stage: "goal",
      provider: "openai",
      model: "m",
      promptHash: "ab",
      inputTokens: 100,
      outputTokens: 20,
      costUsd: 0.01,
      latencyMs: 12,
      result: "ok",
    });
    store.addCall({
      consultationId: cid,
      at: 7,
      stage: "synthesis",
      provider: "openai",
      model: "m",
      promptHash: "cd",
      inputTokens: 0,
      outputTokens: 0,
      costUsd: 0,
      latencyMs: 30,
      result: "http 429",
    });
    store.finishConsultation(cid, {
      status: "decided",
      goal: "latency",
      decision,
      rationale: decision.rationale,
    });
    expect(store.addDecision(decision)).toBe(1);
    store.addOutcome({
      at: 20,
      signature: "sig-a",
      class: "latency",
      policy: decision.policy,
      kpiRatio: 0.5,
      passed: true,
      rolledBack: false,
      quarantined: false,
      decisionId: 1,
    });
    store.setConsultationOutcome(cid, "passed probation");
    db.close();

    const again = new SqliteDecideStore(openStateDb(path));
    expect(again.consultationFor("sig-a")).toMatchObject({
      id: cid,
      status: "decided",
      decision,
      outcome: "passed probation",
    });
    expect(again.consultationFor("sig-b")).toBeUndefined();
    expect(again.outcomesForSignature("sig-a")).toHaveLength(1);
    expect(again.outcomesForClass("latency")[0]?.kpiRatio).toBe(0.5);
    expect(again.outcomesForClass("idle")).toEqual([]);
    expect(again.usageSince(0)).toEqual({ calls: 1, tokens: 120, costUsd: 0.01 });
    expect(again.usageSince(7)).toEqual({ calls: 0, tokens: 0, costUsd: 0 });
    expect(again.recentDecisions(5)).toEqual([{ id: 1, decision }]);
    expect(again.consultations(5)[0]).toMatchObject({ id: cid, calls: 2, tokens: 120, latencyMs: 42 });
  });

  it("refuses a record that does not match its schema, and says where a stored row is corrupt", () => {
    const db = openStateDb(join(tempDir(), "state.db"));
    const store = new SqliteDecideStore(db);
    expect(() => store.addDecision({ ...decision, confidence: 2 })).toThrow(/confidence/);
    db.prepare(
      "INSERT INTO decide_outcomes (at, signature, class, kpi_ratio, passed, rolled_back, quarantined, outcome_json) VALUES (1, 'x', 'idle', 1, 1, 0, 0, '{')",
    ).run();
    expect(() => store.outcomesForSignature("x")).toThrow(StoreError);
    expect(() => store.outcomesForSignature("x")).toThrow(/decide_outcomes 1: stored JSON is corrupt/);
    db.close();
  });
});
