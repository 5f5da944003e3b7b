// What a fleet saves on a phase it has met before: two hosts (the daemon's real decide, verify
// and deploy stages, each with its own SQLite store, on fixture hosts with a fixture sched_ext
// kernel: the same rig as the integration tests, not a VM) sharing one throwaway PostgreSQL 15
// cluster. Host A meets a service kept waiting by CPU hogs for the first time and asks the local
// scripted LLM; host B meets it next with the fleet database killed just before, so it decides
// from what it cached. Adapt time: the rig's clock (one sample a second) from the phase change
// to the passed probation, each host's compile done beforehand (clang time on this shared
// machine is not compared). offline_ok=1 when B reused without an LLM call while the database
// was down, A was untouched, and both caught up once it returned. Ends with
// `fleet: hosts=2 first_sight_adapt_s=.. shared_adapt_s=.. llm_calls_second_host=0 offline_ok=1`.

import { openRig, type Rig } from "../test/helpers/autopilot-rig.ts";
import { serviceUnderHogs } from "../test/helpers/decide-fixtures.ts";
import { adapt, scriptedModel } from "../test/helpers/fleet-day.ts";
import { startPgCluster } from "../test/helpers/postgres.ts";

const db = await startPgCluster();
const llmA = await scriptedModel();
const llmB = await scriptedModel();
const rigs: Rig[] = [];
try {
  const url = await db.createDatabase("fleet_bench");
  const host = async (hostId: string, endpoint: string) => {
    const r = await openRig({
      llmEndpoint: endpoint,
      fleet: { url, password_file: db.passwordFile, host_id: hostId, sync_interval_ms: 3_600_000 },
    });
    rigs.push(r);
    await r.stages.autopilot.start();
    return r;
  };
  const a = await host("bench-a", llmA.openaiEndpoint);
  const firstSight = await adapt(a);
  await a.stages.fleet!.sync();
  const b = await host("bench-b", llmB.openaiEndpoint);
  await b.stages.fleet!.sync();
  const fromFleet = b.stages.fleet!.status();
  console.log(`host A: first sight adapted in ${firstSight / 1000} s, ${llmA.requests.length} LLM call(s)`);
  console.log(`host B: the fleet gave ${fromFleet.outcomes} outcome(s) from ${fromFleet.hosts} host(s)`);

  const aBefore = JSON.stringify({ phase: a.stages.controller.state.phase, kernel: a.kernel.status() });
  db.kill();
  let offlineOk = true;
  let shared = Number.NaN;
  try {
    await a.stages.fleet!.sync();
    for (let i = 0; i < 5; i++) await a.tick(serviceUnderHogs());
    const aAfter = JSON.stringify({ phase: a.stages.controller.state.phase, kernel: a.kernel.status() });
    shared = await adapt(b);
    await b.stages.fleet!.sync();
    const [decided] = b.stages.decisions.recentDecisions(1);
    const bStatus = b.stages.fleet!.status();
    console.log(
      `host B (database down): ${decided!.decision.chooser} in ${shared / 1000} s; fleet ${bStatus.summary}`,
    );
    offlineOk &&=
      aAfter === aBefore &&
      a.stages.fleet!.status().state === "offline" &&
      bStatus.state === "offline" &&
      bStatus.pending === 1 &&
      decided!.decision.chooser === "reuse" &&
      b.stages.controller.state.phase === "active";
  } finally {
    db.start();
  }
  await b.stages.fleet!.sync();
  await a.stages.fleet!.sync();
  const back = [a, b].map((r) => r.stages.fleet!.status());
  console.log(`back: A ${back[0]!.summary}`);
  console.log(`back: B ${back[1]!.summary}`);
  offlineOk &&= back.every((s) => s.state === "connected" && s.pending === 0) && back[0]!.outcomes === 1;
  console.log(
    `fleet: hosts=2 first_sight_adapt_s=${firstSight / 1000} shared_adapt_s=${shared / 1000} llm_calls_second_host=${llmB.requests.length} offline_ok=${offlineOk ? 1 : 0}`,
  );
} finally {
  for (const r of rigs) await r.close();
  await llmA.close();
  await llmB.close();
  db.destroy();
}
