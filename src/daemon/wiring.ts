import { existsSync, mkdirSync, readdirSync, statSync, symlinkSync } from "node:fs";
import { join } from "node:path";
import type { Config } from "../config/schema.ts";
import type { ManagerEvent, Mode } from "../dbus/backend.ts";
import { createDecider, type Decider } from "../decide/index.ts";
import { seededRandom } from "../decide/random.ts";
import type { LlmCallRecord, Outcome } from "../decide/types.ts";
import type { DeployController } from "../deploy/controller.ts";
import { findCgroup2Mount } from "../host/cgroup.ts";
import type { Clock } from "../host/clock.ts";
import type { Host } from "../host/host.ts";
import type { Journal } from "../journal/journal.ts";
import type { Kernel } from "../kernel/types.ts";
import type { Logger } from "../log/logger.ts";
import type { DaemonMetrics } from "../metrics/registry.ts";
import { builtinCatalogue, type PolicySource } from "../policies/catalogue.ts";
import { PolicyCompiler } from "../policies/compile.ts";
import { vmlinuxHeaderFor } from "../policies/vmlinux.ts";
import { which } from "../sandbox/exec.ts";
import { ensureSandboxKernel } from "../sandbox/kernel-image.ts";
import { createQemuSandbox } from "../sandbox/vm.ts";
import type { Db } from "../store/db.ts";
import { SqliteDecideStore } from "../store/decisions.ts";
import type { SqliteDeploymentStore } from "../store/deployments.ts";
import type { SqliteVerdictStore } from "../store/verdicts.ts";
import { requestFor } from "../verify/build.ts";
import type { DefaultThresholds, VerdictStore } from "../verify/types.ts";
import { Verifier } from "../verify/verifier.ts";
import { Autopilot, generatedSource } from "./autopilot.ts";
import { type Fleet, openFleet } from "./fleet.ts";
import { type DeploymentStage, deploymentStage } from "./safe-start.ts";

// The real Decide, Verify and Deploy stages, built from the configuration for one daemon.

export interface Stages {
  autopilot: Autopilot;
  controller: DeployController;
  decider: Decider;
  kernel: Kernel;
  decisions: SqliteDecideStore;
  deployments: SqliteDeploymentStore;
  verdicts: SqliteVerdictStore;
  verifier: Verifier;
  compiler: PolicyCompiler;
  catalogue: () => PolicySource[];
  /** Where policies created over the bus are kept (NAME.bpf.c + NAME.json). */
  generatedDir: string;
  /** The shared fleet store, when [fleet] names one (started and stopped by the caller). */
  fleet: Fleet | undefined;
}

export interface WiringOptions {
  config: Config;
  db: Db;
  host: Host;
  clock: Clock;
  log: Logger;
  journal: Journal;
  stateDir: string;
  mode: Mode;
  emit: (event: ManagerEvent) => void;
  /** Default: the real kernel behind `host`. */
  kernel?: Kernel;
  /** The kernel and the deployment controller when already built (startSafely); default: built here. */
  deployment?: DeploymentStage;
  /** Counts swaps, rollbacks, ejections, refusals and LLM calls; undefined: none kept. */
  metrics?: DaemonMetrics;
}

export function wireStages(o: WiringOptions): Stages {
  const { config, db, host, clock, log } = o;
  const { kernel, controller, deployments, verdicts } =
    o.deployment ?? deploymentStage({ config, db, host, clock, log, kernel: o.kernel });
  const { metrics } = o;
  if (metrics) {
    controller.onTransition((notice) => metrics.transition(notice));
    controller.onKernelDisabled((reason) => metrics.kernelDisabled(reason));
  }
  const cacheDir = config.verify.cache_dir;
  linkPrebuiltObjects(cacheDir, log);
  const compiler = new PolicyCompiler({
    cacheDir,
    vmlinuxH: vmlinuxHeaderFor({
      host,
      cacheDir,
      sandboxKernel: () => ensureSandboxKernel({ cacheDir, logger: log.child({ stage: "sandbox" }) }),
    }),
    resolveCgroupId: (path) => cgroupId(host, path),
  });
  const sandbox = sandboxFor(config, cacheDir, log);
  const verifier = new Verifier({
    verdicts: metrics ? countingVerdicts(verdicts, metrics) : verdicts,
    hostKernel: kernel,
    sandbox,
    clock,
    logger: log.child({ stage: "verify" }),
    options: {
      maxTimeoutMs: config.verify.max_timeout_ms,
      sandboxSeconds: config.verify.sandbox_seconds,
      dynamic: config.verify.dynamic,
      againstDefault: defaultThresholds(config),
    },
  });
  const generatedDir = join(o.stateDir, "policies");
  const catalogue = () => [
    ...builtinCatalogue(),
    ...(existsSync(generatedDir) && readdirSync(generatedDir).some((f) => f.endsWith(".bpf.c"))
      ? builtinCatalogue(generatedDir)
      : []),
  ];
  let fleet: Fleet | undefined;
  const decisions = new JournalledDecideStore(db, o.journal, () => fleet, metrics);
  fleet = openFleet({
    config: config.fleet,
    host,
    log,
    localOutcomesSince: (at) => decisions.outcomesSince(at, FLEET_SEND_LIMIT),
    manifestOf: (name) => catalogue().find((p) => p.manifest.name === name)?.manifest,
    now: () => clock.now(),
  });
  const decider = createDecider({
    config,
    store: decisions,
    catalogue: () => catalogue().map((p) => p.manifest),
    verifier: {
      // Generated code from the LLM: the same verifier, keyed by the same content hash.
      async verify(candidate, signal) {
        signal?.throwIfAborted();
        const request = requestFor(compiler, generatedSource(candidate.name, candidate.source, "mixed"));
        const [verdict] = await verifier.verify([request], signal);
        return { passed: verdict!.passed, stage: verdict!.stage, log: verdict!.log };
      },
    },
    clock,
    logger: log,
    credentialsDirectory: process.env.CREDENTIALS_DIRECTORY,
    ...(config.decide.seed !== undefined ? { random: seededRandom(config.decide.seed) } : {}),
  });
  const autopilot = new Autopilot(
    {
      config,
      log: log.child({ stage: "autopilot" }),
      journal: o.journal,
      controller,
      deployments,
      decider,
      compiler,
      catalogue,
      verify: (requests, signal) => verifier.verify(requests, signal),
      emit: o.emit,
      now: () => clock.now(),
    },
    o.mode,
  );
  return {
    autopilot,
    controller,
    decider,
    kernel,
    decisions,
    deployments,
    verdicts,
    verifier,
    compiler,
    catalogue,
    generatedDir,
    fleet,
  };
}

/** The verifier's store, each new verdict counted on its way in (refusals by stage). */
function countingVerdicts(verdicts: VerdictStore, metrics: DaemonMetrics): VerdictStore {
  return {
    getVerdict: (hash) => verdicts.getVerdict(hash),
    putVerdict: (verdict) => {
      verdicts.putVerdict(verdict);
      metrics.verdict(verdict);
    },
  };
}

/** Outcomes sent to the fleet per sync: a host back after a long absence catches up in steps. */
const FLEET_SEND_LIMIT = 1000;

export function defaultThresholds(config: Config): DefaultThresholds {
  const t = config.verify.against_default;
  return {
    minWorkerShare: t.min_worker_share,
    maxP99Ratio: t.max_p99_ratio,
    minThroughputRatio: t.min_throughput_ratio,
  };
}

/** The sandbox VM when verify.dynamic wants one and qemu is here; otherwise says what follows. */
function sandboxFor(config: Config, cacheDir: string, log: Logger) {
  if (config.verify.dynamic === "probation-only") {
    log.warn(
      {},
      'verify.dynamic = "probation-only": candidates are not run in a sandbox VM; the kernel verifier must accept them and they are attached only under the probation guard',
    );
    return undefined;
  }
  if (!which("qemu-system-x86_64")) {
    log.warn(
      {},
      'no qemu-system-x86_64: the dynamic stage cannot run, so only candidates with a verdict produced ahead of time can be deployed (install qemu-system-x86, or set verify.dynamic = "probation-only")',
    );
    return undefined;
  }
  return createQemuSandbox({ cacheDir, logger: log.child({ stage: "sandbox" }) });
}

/**
 * The package ships the built-in policies compiled ahead of time (prebuilt/objects/<hash>.bpf.o,
 * the compile cache's own layout): linked into the cache, a host without clang deploys them.
 */
function linkPrebuiltObjects(cacheDir: string, log: Logger): void {
  const prebuilt = join(import.meta.dirname, "..", "..", "prebuilt", "objects");
  if (!existsSync(prebuilt)) return;
  const objects = join(cacheDir, "objects");
  try {
    mkdirSync(objects, { recursive: true });
    for (const file of readdirSync(prebuilt)) {
      if (file.endsWith(".bpf.o") && !existsSync(join(objects, file)))
        symlinkSync(join(prebuilt, file), join(objects, file));
    }
  } catch (error) {
    log.warn({ error: (error as Error).message }, `cannot link the prebuilt policies into ${objects}`);
  }
}

/** A cgroup's id is its directory's inode number in the cgroup2 filesystem. */
function cgroupId(host: Host, path: string): bigint {
  const mount = findCgroup2Mount(host);
  if (!mount.found) throw new Error(mount.reason);
  return statSync(host.resolve(join(mount.path, path)), { bigint: true }).ino;
}

/**
 * The decider's store: every call to the model also written to the journal (its audit trail),
 * and the fleet's outcomes read beside this host's own (advisory: they weigh on and prune the
 * candidates, never bypass verification or probation, and are never written to SQLite).
 */
class JournalledDecideStore extends SqliteDecideStore {
  readonly #journal: Journal;
  readonly #fleet: () => Fleet | undefined;
  readonly #metrics: DaemonMetrics | undefined;

  constructor(db: Db, journal: Journal, fleet: () => Fleet | undefined, metrics: DaemonMetrics | undefined) {
    super(db);
    this.#journal = journal;
    this.#fleet = fleet;
    this.#metrics = metrics;
  }

  override addOutcome(outcome: Outcome): void {
    super.addOutcome(outcome);
    this.#fleet()?.outcomeRecorded();
  }

  override outcomesForSignature(signature: string): Outcome[] {
    const fleet = this.#fleet()?.outcomes() ?? [];
    return [...super.outcomesForSignature(signature), ...fleet.filter((o) => o.signature === signature)];
  }

  override outcomesForClass(workloadClass: Outcome["class"]): Outcome[] {
    const fleet = this.#fleet()?.outcomes() ?? [];
    return [...super.outcomesForClass(workloadClass), ...fleet.filter((o) => o.class === workloadClass)];
  }

  override addCall(call: LlmCallRecord): void {
    super.addCall(call);
    this.#metrics?.llmCall(call);
    this.#journal.record({
      type: "llm-consultation",
      provider: call.provider,
      model: call.model,
      signature: (call.consultationId !== undefined && this.consultationSignature(call.consultationId)) || "",
      tokensIn: call.inputTokens,
      tokensOut: call.outputTokens,
      costUsd: call.costUsd,
      outcome: `${call.stage} ${call.result}`,
    });
  }
}
