// Runs inside the sched_ext VM: the real Kernel, the deployment controller, a SQLite store and
// a minimal KPI sampler, driven through one scenario named on the command line. Reports
// `SCHEDCTL-RESULT {...}` lines for the host-side test. Node is ~20x slower here: little work.
//
//   LOAD="shell command" node deploy-guest.js PLAN.json SCENARIO   (types stripped on the host)
import { spawn } from "node:child_process";
import { existsSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { setTimeout as sleep } from "node:timers/promises";
import { DeployController, type TransitionNotice } from "../../../src/deploy/controller.ts";
import type { DeployPhase, Kpis, Placed } from "../../../src/deploy/types.ts";
import { systemClock } from "../../../src/host/clock.ts";
import { createHost } from "../../../src/host/host.ts";
import { createKernel } from "../../../src/kernel/loader.ts";
import { PROBATION_MARKER } from "../../../src/kernel/types.ts";
import { createLogger } from "../../../src/log/logger.ts";
import { RESULT_MARKER } from "../../../src/sandbox/types.ts";
import { SqliteDeploymentStore } from "../../../src/store/deployments.ts";
import { openStateDb } from "../../../src/store/store.ts";
import { SqliteVerdictStore } from "../../../src/store/verdicts.ts";

export interface GuestPlan {
  db: string;
  policies: Record<string, Placed>;
  probationSeconds: number;
  regressionRatio: number;
  /** cgroup (relative to /sys/fs/cgroup) whose KPIs the decisions target. */
  cgroup?: string;
}

const [planPath, scenario] = process.argv.slice(2);
const plan = JSON.parse(readFileSync(planPath!, "utf8")) as GuestPlan;
const report = (value: object) =>
  console.log(RESULT_MARKER + JSON.stringify({ load: "deploy", scenario, ...value }));

// The daemon's own schema: schedctld restarts on this database (acceptance 4).
const db = openStateDb(plan.db);
const store = new SqliteDeploymentStore(db);
const host = createHost("/");
const kernel = createKernel({ host, logger: createLogger({ level: "warn" }) });
const logger = createLogger({ level: "info" });
const config = {
  probationSeconds: Number(process.env.PROBATION_SECONDS ?? plan.probationSeconds),
  regressionRatio: Number(process.env.REGRESSION_RATIO ?? plan.regressionRatio),
  quarantineAfter: 2,
  keepPolicyOnStop: false,
};
const controller = new DeployController({
  kernel,
  store,
  verdicts: new SqliteVerdictStore(db),
  clock: systemClock,
  logger,
  config,
  watchdogMs: 100,
});
const transitions: TransitionNotice[] = [];
controller.onTransition((t) => transitions.push(t));

/** KPIs over the last tick: PSI cpu some, schedstat run delay per run time, the cgroup's PSI. */
class MiniSampler {
  #last: { at: number; psi: number; wait: number; run: number; cg: number | undefined } | undefined;

  sample(): Kpis | undefined {
    const now = { at: performance.now() * 1000, ...this.#read() };
    const last = this.#last;
    this.#last = now;
    if (!last) return undefined;
    const wallUs = now.at - last.at;
    return {
      psiCpuSome: (now.psi - last.psi) / wallUs,
      runDelayPerCpuTime: (now.wait - last.wait) / Math.max(1, now.run - last.run),
      ...(now.cg !== undefined && last.cg !== undefined
        ? { cgroupPsiCpuSome: (now.cg - last.cg) / wallUs }
        : {}),
    };
  }

  #read() {
    let wait = 0;
    let run = 0;
    for (const line of readFileSync("/proc/schedstat", "utf8").split("\n")) {
      if (!/^cpu\d/.test(line)) continue;
      const f = line.split(" ");
      run += Number(f[7]);
      wait += Number(f[8]);
    }
    const cg = plan.cgroup ? someTotal(`/sys/fs/cgroup${plan.cgroup}/cpu.pressure`) : undefined;
    return { psi: someTotal("/proc/pressure/cpu"), wait, run, cg };
  }
}

function someTotal(path: string): number {
  const some = readFileSync(path, "utf8").split("\n")[0]!;
  return Number(/total=(\d+)/.exec(some)![1]);
}

const sampler = new MiniSampler();
const ticker = setInterval(() => controller.watch(sampler.sample()), 1000);

async function until(phase: DeployPhase | DeployPhase[], timeoutMs: number): Promise<boolean> {
  const wanted = Array.isArray(phase) ? phase : [phase];
  const deadline = performance.now() + timeoutMs;
  while (!wanted.includes(controller.state.phase)) {
    if (performance.now() > deadline) return false;
    await sleep(50);
  }
  return true;
}

function policy(name: string): Placed {
  const p = plan.policies[name];
  if (!p) throw new Error(`plan has no policy ${name}`);
  return p;
}

function apply(name: string, reason: string) {
  const { ref, loadable } = policy(name);
  return controller.apply({
    ref,
    loadable,
    reason,
    signature: "vm-test",
    ...(plan.cgroup ? { cgroup: plan.cgroup } : {}),
  });
}

function kernelTruth() {
  const s = kernel.status();
  return {
    state: s.state,
    ops: s.ops ?? null,
    enableSeq: s.enableSeq,
    links: kernel.pinnedLinks(),
    probationMarkers: probationMarkers(),
  };
}

/** Pinned policies marked as still in probation (what the schedctld wrapper drops at start). */
function probationMarkers(): string[] {
  const root = "/sys/fs/bpf/schedctl";
  if (!existsSync(root)) return [];
  return readdirSync(root)
    .map((dir) => `${root}/${dir}/${PROBATION_MARKER}`)
    .filter((marker) => existsSync(marker));
}

function deploymentsSummary() {
  return store.deployments(20).map((d) => ({
    policy: d.policy,
    outcome: d.outcome,
    reason: d.reason,
    kernelReason: d.kernelReason ?? null,
    gapMs: d.gapMs ?? null,
    baseline: d.baseline.length,
    probation: d.probation.length,
    meanCgroupPsi: {
      before: mean(d.baseline.map((k) => k.cgroupPsiCpuSome ?? 0)),
      after: mean(d.probation.map((k) => k.cgroupPsiCpuSome ?? 0)),
    },
  }));
}

function mean(xs: number[]): number {
  return xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : 0;
}

const scenarios: Record<string, () => Promise<object>> = {
  /** Acceptance 1 + bench: two built-in policies swapped under load, then an injected ejection. */
  async swap() {
    const names = [process.env.FIRST ?? "vtime", process.env.SECOND ?? "fifo"];
    const first = apply(names[0]!, "vm test: first policy");
    await until("active", 60_000);
    // What bpftool's struct_ops register repeats in every swap: each program's load through the
    // kernel's verifier (timed here as a verify-only load, under the same load).
    const verifyLoadMs: number[] = [];
    for (const name of names) {
      const { loadable } = policy(name);
      if (loadable.kind !== "object") continue;
      const started = performance.now();
      if ((await kernel.verifyLoad(loadable.objectPath)).ok) verifyLoadMs.push(performance.now() - started);
    }
    const swaps: object[] = [];
    for (let i = 1; i <= Number(process.env.SWAPS ?? 1); i++) {
      const answer = apply(names[i % 2]!, `vm test: swap ${i}`);
      await until(["probation", "rolling_back", "fallback_default"], 60_000);
      const truth = kernelTruth();
      await until(["active", "fallback_default"], 60_000);
      swaps.push({ answer, truth, settled: kernelTruth() });
    }
    const events = kernel.readEvents();
    const ejections = events.filter(
      (e) => e.kind === "disabled" && e.reason !== "unregistered from user space",
    );
    // Inject an ejection (sysrq-S disables the BPF scheduler) and time the controller's notice.
    const noticed = new Promise<number>((resolve) =>
      controller.onTransition((t) => t.to === "rolling_back" && resolve(t.monotonic)),
    );
    const injectedAt = performance.now();
    writeFileSync("/proc/sysrq-trigger", "S");
    const detectMs = (await noticed) - injectedAt;
    const injectedReason = controller.state.reason;
    await until(["active", "fallback_default"], 30_000);
    return {
      first,
      swaps,
      ejections: ejections.map((e) => e.raw),
      detectMs,
      verifyLoadMs,
      injectedReason,
      deployments: deploymentsSummary(),
    };
  },

  /** Acceptance 2: a policy that stops dispatching is ejected; the known-good one comes back. */
  async eject() {
    apply("vtime", "vm test: known-good");
    await until("active", 60_000);
    const noticed = new Promise<number>((resolve) =>
      controller.onTransition((t) => t.to === "rolling_back" && resolve(t.monotonic)),
    );
    const applied = apply("stall", "vm test: stalls after a while");
    const noticedMono = await noticed;
    const noticedSinceBootS =
      Number(process.hrtime.bigint()) / 1e9 - (performance.now() - noticedMono) / 1000;
    await until(["active", "fallback_default"], 60_000);
    return {
      applied,
      noticedSinceBootS,
      reason: controller.state.reason,
      final: kernelTruth(),
      deployments: deploymentsSummary(),
    };
  },

  /** Acceptance 3: a valid policy that hurts the interactive cgroup is rolled back by the KPI guard. */
  async kpi() {
    await sleep(6000); // baseline under the kernel default
    const applied = apply("slow", "vm test: very long slices");
    await until(["rolling_back", "active"], 300_000);
    const enteredProbation = transitions.find((t) => t.to === "probation")?.monotonic;
    const left = transitions.find((t) => t.from === "probation")?.monotonic;
    const probationHeldS =
      enteredProbation !== undefined && left !== undefined ? (left - enteredProbation) / 1000 : null;
    await until(["active", "fallback_default"], 60_000);
    return {
      applied,
      probationHeldS,
      reason: controller.state.reason,
      final: kernelTruth(),
      deployments: deploymentsSummary(),
    };
  },

  /** Acceptance 4, first half: known-good in place, a second policy left in probation; then SIGKILL. */
  async "kill-mid-probation"() {
    apply("vtime", "vm test: known-good");
    await until("active", 60_000);
    config.probationSeconds = 600; // long enough to be killed in it
    apply("fifo", "vm test: left in probation");
    await until("probation", 60_000);
    report({ step: "in-probation", truth: kernelTruth() });
    writeFileSync("/tmp/in-probation", "1");
    await sleep(600_000);
    return {};
  },

  /** Acceptance 4, after schedctld restarted on the killed run's store: what it stored. */
  async restarted() {
    return {
      deployments: deploymentsSummary(),
      transitions: store.transitions(20).map((t) => `${t.from}->${t.to} (${t.event}): ${t.reason}`),
    };
  },

  /** Acceptance 5: candidates without a passing verdict are refused; the kernel never sees them. */
  async refuse() {
    const before = kernelTruth();
    const answers = Object.fromEntries(
      Object.keys(plan.policies).map((name) => [name, apply(name, "vm test: refused?")]),
    );
    await sleep(1500);
    return { before, answers, after: kernelTruth(), phase: controller.state.phase };
  },
};

const run = scenarios[scenario!];
if (!run) throw new Error(`unknown scenario ${scenario}`);
// After a restart the store is only read: schedctld itself reconciled it.
if (scenario !== "restarted") await controller.start();
// The load starts once this process is up: Node's start-up under emulation is slow enough without it.
const load = process.env.LOAD
  ? spawn("sh", ["-c", process.env.LOAD], { detached: true, stdio: "ignore" })
  : undefined;
const result = await run();
clearInterval(ticker);
if (load?.pid) process.kill(-load.pid, "SIGKILL");
if (scenario === "restarted") report(result);
else {
  report({ ...result, transitions: transitions.map((t) => `${t.from}->${t.to} (${t.event}): ${t.reason}`) });
  await controller.stop(false);
  report({ step: "stopped", truth: kernelTruth() });
}
