import { describe, expect, it } from "vitest";
import { builtinPolicy } from "../../../src/policies/catalogue.ts";
import { SqlitePolicyRepository } from "../../../src/store/policies.ts";
import { openStateDb } from "../../../src/store/store.ts";

// The repository on a real SQLite database (in memory).
function repository() {
  return new SqlitePolicyRepository(openStateDb(":memory:"));
}

const H1 = "a".repeat(64);
const H2 = "b".repeat(64);

describe("the policy repository", () => {
  it("keeps policies with their manifests and finds them by workload class, best outcomes first", () => {
    const repo = repository();
    const latency = builtinPolicy("latency").manifest;
    const boost = builtinPolicy("cgroup-boost").manifest;
    const throughput = builtinPolicy("throughput").manifest;
    for (const m of [latency, boost, throughput]) repo.upsertPolicy(m, "0".repeat(64), 1);
    expect(repo.getPolicy("latency")?.manifest).toEqual(latency);
    expect(repo.policiesForWorkload("latency").map((p) => p.name)).toEqual(["cgroup-boost", "latency"]);

    repo.addVersion({ hash: H1, policy: "latency", tunables: { slice_us: 2000 }, createdAt: 2 });
    repo.recordOutcome({
      hash: H1,
      policy: "latency",
      signature: "sig-1",
      workloadClass: "latency",
      effect: { latency_p99_ratio: 0.7 },
      score: 0.3,
      at: 3,
    });
    expect(repo.policiesForWorkload("latency").map((p) => p.name)).toEqual(["latency", "cgroup-boost"]);
    expect(repo.outcomes({ signature: "sig-1" })).toEqual([
      expect.objectContaining({ policy: "latency", effect: { latency_p99_ratio: 0.7 } }),
    ]);
    expect(repo.outcomes({ workloadClass: "throughput" })).toEqual([]);

    // an update replaces the manifest and its workload classes
    repo.upsertPolicy({ ...throughput, workloads: ["latency"] }, "1".repeat(64), 4);
    expect(repo.getPolicy("throughput")).toMatchObject({ sourceHash: "1".repeat(64), updatedAt: 4 });
    expect(repo.policiesForWorkload("throughput")).toEqual([]);
  });

  it("records versions, each stage's latest verification and deployments", () => {
    const repo = repository();
    repo.upsertPolicy(builtinPolicy("fifo").manifest, "0".repeat(64), 1);
    repo.addVersion({ hash: H1, policy: "fifo", tunables: { slice_us: 5000 }, createdAt: 1 });
    repo.addVersion({ hash: H1, policy: "fifo", tunables: { slice_us: 1 }, createdAt: 9 });
    expect(repo.getVersion(H1)).toEqual({
      hash: H1,
      policy: "fifo",
      tunables: { slice_us: 5000 },
      createdAt: 1,
    });
    expect(() => repo.addVersion({ hash: H2, policy: "missing", tunables: {}, createdAt: 1 })).toThrow(
      /FOREIGN KEY/,
    );

    repo.recordVerification({
      hash: H1,
      stage: "kernel",
      passed: false,
      log: "R0 invalid mem access",
      at: 1,
    });
    repo.recordVerification({ hash: H1, stage: "kernel", passed: true, log: "", at: 2 });
    repo.recordVerification({
      hash: H1,
      stage: "dynamic",
      passed: true,
      log: "",
      figures: { p99_us: 120 },
      at: 3,
    });
    expect(repo.verifications(H1).map((v) => [v.stage, v.passed, v.figures])).toEqual([
      ["kernel", true, undefined],
      ["dynamic", true, { p99_us: 120 }],
    ]);

    const id = repo.startDeployment(H1, "probation", 10);
    repo.updateDeployment(id, { state: "rolled_back", endedAt: 20, reason: "runnable task stall" });
    expect(repo.recentDeployments(5)).toEqual([
      { id, hash: H1, state: "rolled_back", startedAt: 10, endedAt: 20, reason: "runnable task stall" },
    ]);
    expect(() => repo.updateDeployment(id + 1, { state: "x" })).toThrow(`no deployment with id ${id + 1}`);
  });
});
