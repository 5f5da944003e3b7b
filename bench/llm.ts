// How much LLM use schedctl's decide flow saves over a naive agent that asks the LLM at every
// phase change. Replays a seeded 24-hour trace (about 200 phase changes among 8 recurring phases,
// plus drifted and novel ones) against the local scripted LLM server; probation outcomes are
// simulated from a hidden per-phase truth with noise. Ends with
// `llm: naive_calls=N schedctl_calls=S reduction=X tokens=T`.

import { Config } from "../src/config/schema.ts";
import { consult } from "../src/decide/consult.ts";
import { Decider } from "../src/decide/decider.ts";
import { createLlm } from "../src/decide/llm/index.ts";
import { MemoryDecideStore } from "../src/decide/memory.ts";
import { gaussian, type Random, seededRandom } from "../src/decide/random.ts";
import type { ChosenPolicy } from "../src/decide/types.ts";
import { createMemoryLogger } from "../src/log/logger.ts";
import type { CgroupShare, PhaseChange, Profile, WorkloadClass } from "../src/observe/types.ts";
import { builtinCatalogue } from "../src/policies/catalogue.ts";
import { profile } from "../test/helpers/decide-fixtures.ts";
import { advisor, startLlmServer } from "../test/helpers/llm-server.ts";

const SEED = Number(process.env.BENCH_SEED ?? 20261125);
const DAY_MS = 24 * 3_600_000;
const TARGET_CHANGES = 200;
/** The repository's own built-in policies (bpf/policies/*.json). */
const CATALOGUE = builtinCatalogue().map((p) => p.manifest);

interface Phase {
  name: string;
  class: WorkloadClass;
  cgroups: CgroupShare[];
  comms: string[];
  /** Hidden truth: the KPI ratio each policy gets on this phase (1 = the kernel default). */
  truth: Record<string, number>;
  cpu: number;
}

const unit = (path: string, cpuShare: number, psiCpuSome: number, tasks: number): CgroupShare => ({
  path,
  cpuShare,
  psiCpuSome,
  tasks,
});
const API = "/system.slice/api.service";
const DB = "/system.slice/postgres.service";

const RECURRING: Phase[] = [
  { name: "idle", class: "idle", cgroups: [], comms: ["systemd"], truth: {}, cpu: 0.02 },
  {
    name: "api-under-hogs",
    class: "latency",
    cgroups: [unit("/batch.slice/hogs.service", 0.8, 0.3, 4), unit(API, 0.15, 0.7, 3)],
    comms: ["stress-ng-cpu", "api-server"],
    truth: { latency: 0.45, "cgroup-boost": 0.6 },
    cpu: 0.95,
  },
  {
    name: "db-under-report",
    class: "latency",
    cgroups: [unit("/batch.slice/report.service", 0.7, 0.2, 2), unit(DB, 0.2, 0.6, 8)],
    comms: ["report-gen", "postgres"],
    truth: { latency: 0.55, "cgroup-boost": 0.65 },
    cpu: 0.9,
  },
  {
    name: "build",
    class: "throughput",
    cgroups: [unit("/user.slice/build.scope", 0.95, 0.4, 60)],
    comms: ["cc1", "ld", "make"],
    truth: { fifo: 0.92, throughput: 0.85, vtime: 0.97, "batch-order": 0.95 },
    cpu: 1,
  },
  {
    name: "batch-jobs",
    class: "throughput",
    cgroups: [unit("/batch.slice/jobs.service", 0.9, 0.3, 40)],
    comms: ["job-runner"],
    truth: {
      fifo: 0.95,
      throughput: 0.9,
      vtime: 1.0,
      "batch-order:longest": 0.8,
      "batch-order:shortest": 1.1,
    },
    cpu: 1,
  },
  {
    name: "ml-training",
    class: "throughput",
    cgroups: [unit("/user.slice/train.scope", 0.97, 0.1, 8)],
    comms: ["python3"],
    truth: { fifo: 0.9, throughput: 0.88, vtime: 0.98, "batch-order": 1.0 },
    cpu: 1,
  },
  {
    name: "api-plus-build",
    class: "mixed",
    cgroups: [unit("/user.slice/build.scope", 0.75, 0.4, 40), unit(API, 0.2, 0.8, 3)],
    comms: ["cc1", "api-server"],
    truth: { "cgroup-boost": 0.55, latency: 0.75, vtime: 1.05 },
    cpu: 1,
  },
  {
    name: "backup",
    class: "io",
    cgroups: [unit("/system.slice/backup.service", 0.2, 0.05, 2)],
    comms: ["restic"],
    truth: {},
    cpu: 0.25,
  },
];

/** The true KPI ratio of a policy on a phase (unknown policies: about as good as the default). */
function trueRatio(phase: Phase, policy: ChosenPolicy): number {
  if (policy.kind === "default") return 1;
  const variant =
    typeof policy.tunables.order === "string" ? `${policy.name}:${policy.tunables.order}` : policy.name;
  return phase.truth[variant] ?? phase.truth[policy.name] ?? 1.02;
}

function profileOf(phase: Phase, signature: string, at: number, random: Random): Profile {
  return profile(phase.class, signature, {
    at,
    features: { cpu_util: phase.cpu * (0.95 + 0.1 * random.next()) },
    topCgroups: phase.cgroups,
    topProcesses: phase.comms.map((comm, i) => ({
      pid: 100 + i,
      comm,
      cpuShare: phase.cpu / phase.comms.length,
    })),
  });
}

/** The day: phases follow each other at random; a few are drifted variants never seen before. */
function trace(random: Random): PhaseChange[] {
  const changes: PhaseChange[] = [];
  let at = 0;
  let previous: Profile | undefined;
  let novel = 0;
  const meanDwell = DAY_MS / TARGET_CHANGES;
  let last = -1;
  while (at < DAY_MS) {
    let index = Math.floor(random.next() * RECURRING.length);
    if (index === last) index = (index + 1) % RECURRING.length;
    last = index;
    const phase = RECURRING[index]!;
    const drifted = phase.class !== "idle" && random.next() < 0.08;
    const signature = drifted ? `${phase.name}-drift-${++novel}` : phase.name;
    const to = profileOf(phase, signature, at, random);
    const drift = drifted ? 12 + 10 * random.next() : 2 + 18 * random.next();
    changes.push({ at, ...(previous && { from: previous }), to, drift, moved: [] });
    previous = to;
    at += meanDwell * (0.3 + 1.4 * random.next());
  }
  return changes;
}

function phaseOf(change: PhaseChange): Phase {
  return RECURRING.find(
    (p) => change.to.signature === p.name || change.to.signature.startsWith(`${p.name}-drift-`),
  )!;
}

const chooseForClass = (cls: string | undefined) => {
  if (cls === "latency" || cls === "mixed") {
    return {
      action: "pick",
      policy: "latency",
      tunables: {},
      rationale: "short slices, wake-up preemption",
      confidence: 0.7,
    };
  }
  if (cls === "throughput") {
    return { action: "pick", policy: "throughput", tunables: {}, rationale: "long slices", confidence: 0.7 };
  }
  return { action: "default", rationale: "nothing to gain", confidence: 0.8 };
};

async function main(): Promise<void> {
  const server = await startLlmServer(advisor({ choose: chooseForClass }));
  const random = seededRandom(SEED);
  const changes = trace(random);
  let now = 0;
  const env = (store: MemoryDecideStore) => ({
    audit: store,
    now: () => now,
    monotonic: () => performance.now(),
    sleep: async () => {},
    logger: createMemoryLogger(),
  });
  const llmSection = { provider: "openai", endpoint: server.openaiEndpoint, model: "scripted" } as const;

  // The naive agent: goal inference and synthesis at every phase change, budget unlimited.
  const naiveStore = new MemoryDecideStore();
  const unlimited = Config.parse({
    llm: { ...llmSection, calls_per_hour: 1e6, calls_per_day: 1e6, tokens_per_day: 1e12 },
  });
  const naiveLlm = createLlm(unlimited.llm, env(naiveStore));
  if (!("client" in naiveLlm)) throw new Error(naiveLlm.disabled);
  let naiveKpi = 0;
  for (const change of changes) {
    now = change.at;
    const result = await consult(naiveLlm.client, {
      change,
      catalogue: CATALOGUE,
      avoid: [],
      consultationId: naiveStore.startConsultation(change.to.signature, now),
      maxCorrections: 1,
      maxRepairRounds: 0,
      verifier: undefined,
    });
    naiveKpi += result.kind === "decided" ? trueRatio(phaseOf(change), result.policy) : 1;
  }

  // schedctl: reuse, then the planner, then the LLM only on a far drift the planner is unsure of.
  const store = new MemoryDecideStore();
  const config = Config.parse({ llm: llmSection });
  const llm = createLlm(config.llm, env(store));
  if (!("client" in llm)) throw new Error(llm.disabled);
  const decider = new Decider({
    decide: config.decide,
    llmConfig: config.llm,
    quarantineAfter: config.deploy.quarantine_after,
    catalogue: () => CATALOGUE,
    store,
    llm: llm.client,
    random: seededRandom(SEED + 1),
    now: () => now,
    logger: createMemoryLogger(),
  });
  const outcomeNoise = seededRandom(SEED + 2);
  const byChooser: Record<string, number> = {};
  let kpi = 0;
  let rollbacks = 0;
  for (const change of changes) {
    now = change.at;
    const { id, decision } = await decider.decide(change);
    byChooser[decision.chooser] = (byChooser[decision.chooser] ?? 0) + 1;
    const truth = trueRatio(phaseOf(change), decision.policy);
    if (decision.policy.kind === "default") {
      kpi += 1;
      continue;
    }
    const measured = truth * Math.exp(0.12 * gaussian(outcomeNoise));
    const passed = measured <= config.deploy.regression_ratio;
    kpi += passed ? truth : 1; // a failed probation rolls back to the default
    if (!passed) rollbacks++;
    decider.recordOutcome({
      at: now,
      signature: decision.signature,
      class: decision.class,
      policy: decision.policy,
      kpiRatio: measured,
      passed,
      rolledBack: !passed,
      decisionId: id,
    });
  }
  if (process.env.BENCH_VERBOSE)
    for (const c of store.consultations)
      console.log(`consulted: ${c.signature} at ${(c.startedAt / 3_600_000).toFixed(1)}h ${c.status}`);
  await server.close();

  const naive = naiveStore.usageSince(0);
  const ours = store.usageSince(0);
  const signatures = new Set(changes.map((c) => c.to.signature)).size;
  const reduction = naive.calls / Math.max(1, ours.calls);
  console.log(`trace: seed=${SEED} phase_changes=${changes.length} signatures=${signatures} hours=24`);
  console.log(
    `naive agent: calls=${naive.calls} tokens=${naive.tokens} consultations=${changes.length} mean_kpi_ratio=${(naiveKpi / changes.length).toFixed(3)}`,
  );
  console.log(
    `schedctl:    calls=${ours.calls} tokens=${ours.tokens} consultations=${store.consultations.length} mean_kpi_ratio=${(kpi / changes.length).toFixed(3)} rollbacks=${rollbacks}`,
  );
  console.log(
    `schedctl decisions: ${Object.entries(byChooser)
      .map(([k, v]) => `${k}=${v}`)
      .join(" ")}`,
  );
  console.log(`token reduction: ${(naive.tokens / Math.max(1, ours.tokens)).toFixed(1)}x`);
  console.log(
    `llm: naive_calls=${naive.calls} schedctl_calls=${ours.calls} reduction=${reduction.toFixed(1)} tokens=${ours.tokens}`,
  );
}

await main();
