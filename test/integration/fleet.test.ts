import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { policyKey } from "../../src/decide/candidates.ts";
import { managerOver, openRig, type Rig } from "../helpers/autopilot-rig.ts";
import { change, serviceUnderHogs } from "../helpers/decide-fixtures.ts";
import { adapt, scriptedModel } from "../helpers/fleet-day.ts";
import type { LlmServer } from "../helpers/llm-server.ts";
import { type PgCluster, startPgCluster } from "../helpers/postgres.ts";

// Two hosts sharing one fleet database, each the daemon's real stages with its own SQLite store
// on a fixture host (tests/helpers/autopilot-rig.ts), and a real PostgreSQL 15 between them: the
// second host's first sight of a phase reuses the first's outcome (no LLM call, never slower,
// still verified and on probation here); a quarantine on one is honoured by the other; the
// database killed changes nothing on the hosts but their status, and they catch up after.

let db: PgCluster;
beforeAll(async () => {
  db = await startPgCluster();
}, 60_000);
afterAll(() => db?.destroy());

const rigs: Rig[] = [];
const servers: LlmServer[] = [];
afterEach(async () => {
  for (const r of rigs.splice(0)) await r.close();
  for (const s of servers.splice(0)) await s.close();
});

function tracked(server: LlmServer): LlmServer {
  servers.push(server);
  return server;
}

async function host(url: string, hostId: string, llm: LlmServer): Promise<Rig> {
  const r = await openRig({
    llmEndpoint: llm.openaiEndpoint,
    fleet: { url, password_file: db.passwordFile, host_id: hostId, sync_interval_ms: 3_600_000 },
  });
  rigs.push(r);
  await r.stages.autopilot.start();
  return r;
}

describe("a fleet of two hosts on one PostgreSQL", () => {
  it("lets the second host reuse the first's outcome, and survives the database dying", async () => {
    const url = await db.createDatabase("fleet_reuse");
    const [llmA, llmB] = [await tracked(await scriptedModel()), await tracked(await scriptedModel())];
    const a = await host(url, "host-a", llmA);
    const firstSight = await adapt(a);
    expect(llmA.requests).toHaveLength(2);
    await a.stages.fleet!.sync();
    expect(a.stages.fleet!.status()).toMatchObject({ state: "connected", sent: 1, pending: 0 });

    const b = await host(url, "host-b", llmB);
    await b.stages.fleet!.sync();
    expect(b.stages.fleet!.status()).toMatchObject({ state: "connected", outcomes: 1, hosts: 1 });

    // The database dies before host B meets the phase: B decides from what it cached, A runs on,
    // and only their status lines change.
    const before = { phase: a.stages.controller.state.phase, kernel: a.kernel.status() };
    db.kill();
    let shared: number;
    try {
      await a.stages.fleet!.sync();
      for (let i = 0; i < 5; i++) await a.tick(serviceUnderHogs());
      expect({ phase: a.stages.controller.state.phase, kernel: a.kernel.status() }).toEqual(before);
      expect(managerOver(a).status().fleet).toMatchObject({
        state: "offline",
        summary: expect.stringMatching(/^offline/),
      });

      shared = await adapt(b);
      expect(llmB.requests, "no LLM call on the second host").toHaveLength(0);
      const [decided] = b.stages.decisions.recentDecisions(1);
      expect(decided!.decision).toMatchObject({ chooser: "reuse", fleet: { outcomes: 1, hosts: 1 } });
      expect(decided!.decision.rationale).toMatch(/fleet knowledge: 1 outcome\(s\) from 1 other host/);
      // Still this host's own verdict (compiled and verified here) and its own probation.
      const current = b.stages.controller.state.current!;
      expect(b.stages.verdicts.getVerdict(current.ref.hash)).toMatchObject({ passed: true });
      expect(b.stages.deployments.deployments(1)[0]).toMatchObject({ outcome: "passed" });
      const manager = managerOver(b);
      expect(manager.explain().lines.join("\n")).toMatch(
        /fleet: weighed 1 outcome\(s\) from 1 other host\(s\); this host compiled, verified and put it on probation itself/,
      );
      await b.stages.fleet!.sync();
      expect(manager.status().fleet).toMatchObject({ state: "offline", pending: 1, outcomes: 1 });
      // Nothing from the fleet was written to this host's own store.
      expect(b.stages.decisions.outcomesSince(-1, 100).map((o) => o.fleetHost)).toEqual([undefined]);
    } finally {
      db.start();
    }
    // The scripted model answers at once, so the first sight costs the host its LLM calls, not
    // much time: the reuse is never slower (bench:fleet prints both).
    expect(shared).toBeLessThanOrEqual(firstSight);
    console.log(`fleet reuse: first_sight_adapt_ms=${firstSight} shared_adapt_ms=${shared}`);
    await b.stages.fleet!.sync();
    expect(b.stages.fleet!.status()).toMatchObject({ state: "connected", pending: 0, sent: 1 });
    await a.stages.fleet!.sync();
    expect(a.stages.fleet!.status()).toMatchObject({ state: "connected", outcomes: 1, hosts: 1 });
    expect(a.stages.fleet!.outcomes().map((o) => o.fleetHost)).toEqual(["host-b"]);
  }, 240_000);

  it("honours a quarantine made on another host", async () => {
    const url = await db.createDatabase("fleet_quarantine");
    const [llmC, llmD] = [await tracked(await scriptedModel()), await tracked(await scriptedModel())];
    const c = await host(url, "host-c", llmC);
    c.kernel.refuseAll = "R1 invalid mem access 'scalar'";
    const latency = serviceUnderHogs();
    for (let i = 0; i < 3; i++) await c.tick(latency);
    c.stages.autopilot.onPhaseChange(change(latency, 12), c.context);
    await c.until("the refusal", () => c.journal.some((e) => e.type === "verification"));
    await c.tick(latency);
    const refused = c.stages.decisions.outcomesSince(-1, 100).find((o) => o.quarantined);
    expect(refused, "host C quarantined what its verifier refused").toBeDefined();
    await c.stages.fleet!.sync();

    const d = await host(url, "host-d", llmD);
    await d.stages.fleet!.sync();
    expect(d.stages.fleet!.status()).toMatchObject({ quarantines: expect.any(Number) });
    expect(d.stages.fleet!.status().quarantines).toBeGreaterThanOrEqual(1);
    const plan = d.stages.decider.planLocally(change(latency, 12));
    const key = policyKey(refused!.policy);
    expect(plan.decision.candidates.find((s) => s.key === key)).toMatchObject({
      excluded: "quarantined for this signature",
    });
    expect(policyKey(plan.decision.policy)).not.toBe(key);
    expect(plan.decision.fleet?.hosts).toBe(1);
  }, 240_000);
});
