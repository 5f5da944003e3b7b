import type { Rig } from "./autopilot-rig.ts";
import { change, serviceEased, serviceUnderHogs } from "./decide-fixtures.ts";
import type { LlmServer } from "./llm-server.ts";
import { startLlmServer } from "./llm-server.ts";

// One phase of a fleet host's day, shared by the fleet tests and bench:fleet: a service kept
// waiting by hogs, the scripted model that answers it, and the time the host takes to adapt.

/** The scripted model: the service waits behind the hogs; pick the latency policy. */
export function scriptedModel(): Promise<LlmServer> {
  return startLlmServer([
    {
      json: {
        optimise: "latency",
        protect_cgroup: "/system.slice/api.service",
        kpi: "the service's wake-up latency",
        rationale: "the service waits behind the hogs",
      },
    },
    {
      json: { action: "pick", policy: "latency", tunables: {}, rationale: "made for this", confidence: 0.9 },
    },
  ]);
}

/**
 * Phase change to the service under hogs, until its policy passed probation: the clock's ms (one
 * tick a sample). Each host first compiles the policy into its own cache, as the package's
 * prebuilt objects have it: clang's seconds on this shared machine are not what is compared.
 */
export async function adapt(r: Rig): Promise<number> {
  const source = r.stages.catalogue().find((p) => p.manifest.name === "latency")!;
  await r.stages.compiler.compile(source, {});
  const latency = serviceUnderHogs();
  for (let i = 0; i < 3; i++) await r.tick(latency);
  const from = r.clock.now();
  r.stages.autopilot.onPhaseChange(change(latency, 12), r.context);
  const eased = serviceEased(latency);
  await r.until(
    "probation passed",
    () => r.stages.controller.state.phase === "active",
    () => (r.stages.controller.state.phase === "probation" ? eased : latency),
  );
  await r.tick(latency); // the outcome is recorded once the probation samples are stored
  return r.clock.now() - from;
}
