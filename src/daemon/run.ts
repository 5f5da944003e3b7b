import type { Config } from "../config/schema.ts";
import type { BusKind } from "../dbus/bus.ts";
import { NameTakenError } from "../dbus/service.ts";
import { systemClock } from "../host/clock.ts";
import { createHost, type Host } from "../host/host.ts";
import { openJournal } from "../journal/journal.ts";
import type { Logger } from "../log/logger.ts";
import { DaemonMetrics } from "../metrics/registry.ts";
import type { ObservationStore } from "../observe/persistence.ts";
import { ObservePipeline } from "../observe/pipeline.ts";
import { HostSampler, type SampleSource } from "../observe/sampler.ts";
import { readTrace, TraceError, TraceSource } from "../observe/trace.ts";
import type { Db } from "../store/db.ts";
import { startBus } from "./bus.ts";
import { DaemonLoop } from "./loop.ts";
import { DaemonManager } from "./manager.ts";
import { MetricsHandler } from "./metrics.ts";
import { createNotifier } from "./notify.ts";
import { pipelineOptions, samplerOptions } from "./options.ts";
import type { DeploymentStage } from "./safe-start.ts";
import { wireStages } from "./wiring.ts";

// Everything of schedctld after its safe start (main.ts): observe, decide, verify, D-Bus and
// the loop. Loaded only once the kernel's state is being reconciled.

export interface RunOptions {
  config: Config;
  loadConfig: () => Config;
  version: string;
  log: Logger;
  host: Host;
  hostRoot: string;
  stateDir: string;
  replay: string | undefined;
  observeOnly: boolean;
  bus: BusKind | "none";
  busAddress: string | undefined;
  opened: { db: Db; store: ObservationStore } | undefined;
  /** Why the kernel's scheduler is not ours to touch (undefined: it is). */
  observeOnlyReason: string | undefined;
  /** How loud the reason is: info when asked for, warn for a missing kernel feature, error for a broken store. */
  observeOnlyLevel: "info" | "warn" | "error";
  /** The deployment stage main.ts built and started reconciling, when it may touch the kernel. */
  deployment: DeploymentStage | undefined;
}

function openSource(o: RunOptions): SampleSource {
  const { replay, config, log } = o;
  if (replay) {
    const { samples, problems } = readTrace(replay);
    for (const p of problems)
      log.warn({ trace: replay, line: p.line }, `${replay}:${p.line}: ${p.message}; line skipped`);
    log.info(
      { trace: replay, samples: samples.length },
      `replaying ${samples.length} samples from ${replay}`,
    );
    return new TraceSource(samples);
  }
  return new HostSampler(createHost(o.hostRoot), samplerOptions(config), systemClock, log);
}

export async function runDaemon(o: RunOptions): Promise<number> {
  const { config, log, host, opened, observeOnlyReason } = o;
  let source: SampleSource;
  try {
    source = openSource(o);
  } catch (error) {
    if (!(error instanceof TraceError)) throw error;
    log.fatal({}, error.message);
    opened?.db.close();
    return 1;
  }
  const journal = openJournal({ logger: log });
  const notifier = createNotifier({ logger: log });
  // A replay's samples are not this host's: nothing to tell its Prometheus.
  const metrics = o.replay ? undefined : new DaemonMetrics();
  const stages =
    opened && !o.observeOnly && !o.replay
      ? wireStages({
          config,
          db: opened.db,
          host,
          clock: systemClock,
          log,
          journal,
          stateDir: o.stateDir,
          mode: observeOnlyReason ? "observe" : config.daemon.mode,
          emit: (event) => manager.publish(event),
          deployment: o.deployment,
          metrics,
        })
      : undefined;
  if (observeOnlyReason && config.daemon.mode !== "observe")
    log[o.observeOnlyLevel]({ mode: config.daemon.mode }, `staying in mode observe: ${observeOnlyReason}`);
  const manager = new DaemonManager({
    host,
    clock: systemClock,
    log,
    journal,
    notifier,
    store: opened?.store,
    state: () => loop.state,
    config,
    loadConfig: o.loadConfig,
    version: o.version,
    stages,
    observeOnlyReason,
  });
  const exporter =
    metrics &&
    new MetricsHandler({
      config: config.metrics,
      metrics,
      log,
      state: () => loop.state,
      mode: () => stages?.autopilot.mode ?? "observe",
      deploy: stages && (() => ({ state: stages.controller.state, now: systemClock.now() })),
    });
  const loop = new DaemonLoop({
    clock: systemClock,
    source,
    pipeline: new ObservePipeline(pipelineOptions(config)),
    store: opened?.store,
    log,
    intervalMs: o.replay ? 0 : config.daemon.sample_interval_ms,
    handlers: [manager, ...(stages ? [stages.autopilot] : []), ...(exporter ? [exporter] : [])],
  });
  // Handled from here on, before the bus and the takeover: a stop that systemd sends while the
  // daemon starts still goes through the loop's end, which hands the kernel back.
  const onSignal = (signal: string) => {
    log.info({ signal }, `${signal}: stopping`);
    loop.stop();
  };
  const onHangup = () => {
    manager.reload().catch(() => undefined); // a bad file is logged and the running configuration kept
  };
  process.on("SIGINT", onSignal);
  process.on("SIGTERM", onSignal);
  process.on("SIGHUP", onHangup);
  const unlisten = () => {
    process.off("SIGINT", onSignal);
    process.off("SIGTERM", onSignal);
    process.off("SIGHUP", onHangup);
  };
  let bus: Awaited<ReturnType<typeof startBus>>;
  try {
    bus =
      o.bus === "none"
        ? undefined
        : await startBus({ kind: o.bus, address: o.busAddress }, manager, host, log);
  } catch (error) {
    unlisten();
    if (!(error instanceof NameTakenError)) throw error;
    log.fatal({}, error.message);
    opened?.db.close();
    return 1;
  }
  if (stages && stages.autopilot.mode !== "observe") {
    // The reconciliation main.ts started: never leave an unknown or unverified policy attached.
    try {
      await stages.autopilot.start();
    } catch (error) {
      log.error(
        { error: String(error) },
        `cannot take over the kernel's scheduler: ${(error as Error).message}; observing only`,
      );
      await stages.autopilot.setMode("observe").catch(() => undefined);
    }
  }
  stages?.fleet?.start();
  await exporter?.start();
  manager.busReady();
  manager.startWatchdog(o.replay ? 0 : config.daemon.sample_interval_ms);
  try {
    await loop.run();
  } finally {
    await stages?.fleet?.stop();
    await bus?.close();
    journal.close();
    notifier.close();
    opened?.db.close();
    unlisten();
  }
  log.info({ ticks: loop.state.ticks, phaseChanges: loop.state.phaseChanges }, "schedctld stopped");
  return 0;
}
