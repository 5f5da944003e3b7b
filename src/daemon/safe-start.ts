import type { Config } from "../config/schema.ts";
import { DeployController } from "../deploy/controller.ts";
import type { Clock } from "../host/clock.ts";
import type { Host } from "../host/host.ts";
import { createKernel } from "../kernel/loader.ts";
import type { Kernel } from "../kernel/types.ts";
import type { Logger } from "../log/logger.ts";
import type { Db } from "../store/db.ts";
import { SqliteDeploymentStore } from "../store/deployments.ts";
import { SqliteVerdictStore } from "../store/verdicts.ts";

// The first thing a daemon that may touch the scheduler does: reconcile the kernel with the
// store, before loading anything it does not need for that. After a crash mid-probation the
// unproven policy is still attached, and under emulation or load the rest of the start-up
// (decide, verify, D-Bus, observe) takes seconds; this module imports only the kernel, the
// deployment controller and its stores, so that the host is safe first.

export interface DeploymentStage {
  kernel: Kernel;
  controller: DeployController;
  deployments: SqliteDeploymentStore;
  verdicts: SqliteVerdictStore;
}

export interface SafeStartOptions {
  config: Config;
  db: Db;
  host: Host;
  clock: Clock;
  log: Logger;
  /** Default: the real kernel behind `host`. */
  kernel?: Kernel | undefined;
}

/** The kernel and the deployment controller, not started (observe mode starts it only when asked). */
export function deploymentStage(o: SafeStartOptions): DeploymentStage {
  const { config, db, host, clock, log } = o;
  const kernel = o.kernel ?? createKernel({ host, clock, logger: log.child({ stage: "kernel" }) });
  const deployments = new SqliteDeploymentStore(db);
  const verdicts = new SqliteVerdictStore(db);
  const controller = new DeployController({
    kernel,
    store: deployments,
    verdicts,
    clock,
    logger: log.child({ stage: "deploy" }),
    config: {
      probationSeconds: config.deploy.probation_seconds,
      regressionRatio: config.deploy.regression_ratio,
      quarantineAfter: config.deploy.quarantine_after,
      keepPolicyOnStop: config.daemon.keep_policy_on_stop,
    },
    watchdogMs: config.deploy.watchdog_ms,
  });
  return { kernel, controller, deployments, verdicts };
}

/**
 * Builds the deployment stage and starts reconciling at once: an unknown or unproven policy's
 * pins are removed in this turn of the event loop. Autopilot.start() awaits the same
 * reconciliation (and sees its failure) once the rest of the daemon is loaded.
 */
export function startSafely(o: SafeStartOptions): DeploymentStage {
  const stage = deploymentStage(o);
  stage.controller.start().catch(() => undefined);
  return stage;
}
