#!/usr/bin/env node
import { join } from "node:path";
import { parseArgs } from "node:util";
import packageJson from "../../package.json" with { type: "json" };
import { ConfigError, DEFAULT_CONFIG_DIR, loadConfig } from "../config/load.ts";
import type { Config } from "../config/schema.ts";
import type { BusKind } from "../dbus/bus.ts";
import { NameTakenError } from "../dbus/service.ts";
import { systemClock } from "../host/clock.ts";
import { createHost, type Host } from "../host/host.ts";
import { openJournal } from "../journal/journal.ts";
import { readSchedExtStatus } from "../kernel/sysfs.ts";
import { createLogger, type Logger } from "../log/logger.ts";
import type { ObservationStore } from "../observe/persistence.ts";
import { ObservePipeline } from "../observe/pipeline.ts";
import { HostSampler, type SampleSource } from "../observe/sampler.ts";
import { readTrace, TraceError, TraceSource } from "../observe/trace.ts";
import type { Db } from "../store/db.ts";
import { SqliteObservationStore } from "../store/samples.ts";
import { openStateDb } from "../store/store.ts";
import { startBus } from "./bus.ts";
import { DaemonLoop } from "./loop.ts";
import { DaemonManager } from "./manager.ts";
import { createNotifier } from "./notify.ts";
import { pipelineOptions, samplerOptions } from "./options.ts";
import { importVerdicts } from "./verdicts-import.ts";
import { wireStages } from "./wiring.ts";

const USAGE = `usage: schedctld --foreground [--observe-only] [--config PATH] [--host-root DIR] [--state-dir DIR] [--replay TRACE]

  --foreground    run in the foreground (the only mode; systemd runs it this way)
  --observe-only  observe and log phases and profiles; never touch the kernel's scheduler
  --config PATH   a directory holding schedctl.toml and conf.d/, or one .toml file (default ${DEFAULT_CONFIG_DIR})
  --host-root DIR where /proc, /sys and the cgroup filesystem are found (default /)
  --state-dir DIR where the state database lives (default: [daemon] state_dir)
  --replay TRACE  read samples from a trace recorded by "schedctl record" instead of the host
  --bus BUS       system (default), session or none: where org.schedctl1 is served
  --bus-address A serve on this D-Bus address instead (unix:path=...)
  --import-verdicts DB  copy the verdicts of another schedctl state database (made ahead of time
                  by the same verifier) into this one, then exit
`;

const VERSION = packageJson.version;

class UsageError extends Error {}

interface Arguments {
  observeOnly: boolean;
  config: string;
  hostRoot: string;
  stateDir: string | undefined;
  replay: string | undefined;
  bus: BusKind | "none";
  busAddress: string | undefined;
  importVerdicts: string | undefined;
}

function parse(argv: string[]): Arguments {
  let values: ReturnType<typeof parseArgs>["values"];
  try {
    ({ values } = parseArgs({
      args: argv,
      options: {
        foreground: { type: "boolean", default: false },
        "observe-only": { type: "boolean", default: false },
        config: { type: "string", default: DEFAULT_CONFIG_DIR },
        "host-root": { type: "string", default: "/" },
        "state-dir": { type: "string" },
        replay: { type: "string" },
        bus: { type: "string", default: "system" },
        "bus-address": { type: "string" },
        "import-verdicts": { type: "string" },
        help: { type: "boolean", short: "h", default: false },
      },
      strict: true,
    }));
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
  if (values.help) throw new UsageError("");
  if (!values.foreground && !values["import-verdicts"])
    throw new UsageError("schedctld runs in the foreground only: pass --foreground");
  const bus = values.bus as string;
  if (bus !== "system" && bus !== "session" && bus !== "none")
    throw new UsageError(`--bus: expected system, session or none, got "${bus}"`);
  return {
    observeOnly: values["observe-only"] === true,
    config: values.config as string,
    hostRoot: values["host-root"] as string,
    stateDir: values["state-dir"] as string | undefined,
    replay: values.replay as string | undefined,
    bus,
    busAddress: values["bus-address"] as string | undefined,
    importVerdicts: values["import-verdicts"] as string | undefined,
  };
}

/** Opens the state database; without it the daemon still observes (and says so). */
function openStore(
  config: Config,
  stateDir: string,
  log: Logger,
): { db: Db; store: ObservationStore } | undefined {
  const path = join(stateDir, "state.db");
  try {
    const db = openStateDb(path);
    return { db, store: new SqliteObservationStore(db, config.observe.ring_size) };
  } catch (error) {
    log.error({ path }, `${(error as Error).message}; going on without storing samples or phases`);
    return undefined;
  }
}

function openSource(args: Arguments, config: Config, log: Logger): SampleSource {
  if (args.replay) {
    const { samples, problems } = readTrace(args.replay);
    for (const p of problems)
      log.warn({ trace: args.replay, line: p.line }, `${args.replay}:${p.line}: ${p.message}; line skipped`);
    log.info(
      { trace: args.replay, samples: samples.length },
      `replaying ${samples.length} samples from ${args.replay}`,
    );
    return new TraceSource(samples);
  }
  return new HostSampler(createHost(args.hostRoot), samplerOptions(config), systemClock, log);
}

export async function main(argv: string[]): Promise<number> {
  let args: Arguments;
  try {
    args = parse(argv);
  } catch (error) {
    const message = (error as Error).message;
    process.stderr.write(message ? `schedctld: ${message}\n${USAGE}` : USAGE);
    return message ? 2 : 0;
  }
  let config: Config;
  let files: string[];
  try {
    ({ config, files } = loadConfig(args.config));
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    process.stderr.write(`schedctld: invalid configuration:\n${error.message}\n`);
    return 78; // EX_CONFIG: systemd's unit does not restart on it
  }
  const log = createLogger({ level: config.daemon.log_level });
  if (args.importVerdicts)
    return importInto(args.importVerdicts, config, args.stateDir ?? config.daemon.state_dir, log);
  log.info(
    { config: files.length ? files : "built-in defaults", hostRoot: args.hostRoot, mode: config.daemon.mode },
    `schedctld starting (${args.observeOnly ? "observe only" : `mode ${config.daemon.mode}`})`,
  );

  let source: SampleSource;
  try {
    source = openSource(args, config, log);
  } catch (error) {
    if (!(error instanceof TraceError)) throw error;
    log.fatal({}, error.message);
    return 1;
  }
  const opened = openStore(config, args.stateDir ?? config.daemon.state_dir, log);
  const host = createHost(args.hostRoot);
  const journal = openJournal({ logger: log });
  const notifier = createNotifier({ logger: log });
  const stateDir = args.stateDir ?? config.daemon.state_dir;
  const observeOnlyReason = whyObserveOnly(args, opened !== undefined, host);
  const stages =
    opened && !args.observeOnly && !args.replay
      ? wireStages({
          config,
          db: opened.db,
          host,
          clock: systemClock,
          log,
          journal,
          stateDir,
          mode: observeOnlyReason ? "observe" : config.daemon.mode,
          emit: (event) => manager.publish(event),
        })
      : undefined;
  if (observeOnlyReason && config.daemon.mode !== "observe")
    log.error({ mode: config.daemon.mode }, `staying in mode observe: ${observeOnlyReason}`);
  const manager = new DaemonManager({
    host,
    clock: systemClock,
    log,
    journal,
    notifier,
    store: opened?.store,
    state: () => loop.state,
    config,
    loadConfig: () => loadConfig(args.config).config,
    version: VERSION,
    stages,
    observeOnlyReason,
  });
  const loop = new DaemonLoop({
    clock: systemClock,
    source,
    pipeline: new ObservePipeline(pipelineOptions(config)),
    store: opened?.store,
    log,
    intervalMs: args.replay ? 0 : config.daemon.sample_interval_ms,
    handlers: stages ? [manager, stages.autopilot] : [manager],
  });
  let bus: Awaited<ReturnType<typeof startBus>>;
  try {
    bus =
      args.bus === "none"
        ? undefined
        : await startBus({ kind: args.bus, address: args.busAddress }, manager, host, log);
  } catch (error) {
    if (!(error instanceof NameTakenError)) throw error;
    log.fatal({}, error.message);
    opened?.db.close();
    return 1;
  }
  if (stages && stages.autopilot.mode !== "observe") {
    // Reconcile first: never leave an unknown or unverified policy attached.
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
  manager.busReady();
  manager.startWatchdog(args.replay ? 0 : config.daemon.sample_interval_ms);
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
  try {
    await loop.run();
  } finally {
    await bus?.close();
    journal.close();
    notifier.close();
    opened?.db.close();
    process.off("SIGINT", onSignal);
    process.off("SIGTERM", onSignal);
    process.off("SIGHUP", onHangup);
  }
  log.info({ ticks: loop.state.ticks, phaseChanges: loop.state.phaseChanges }, "schedctld stopped");
  return 0;
}

function importInto(from: string, config: Config, stateDir: string, log: Logger): number {
  const opened = openStore(config, stateDir, log);
  if (!opened) return 1;
  try {
    const { imported, kept } = importVerdicts(from, opened.db);
    log.info({ from, imported, kept }, `imported ${imported} verdicts from ${from} (${kept} already known)`);
    return 0;
  } catch (error) {
    log.error({ from }, `cannot import verdicts: ${(error as Error).message}`);
    return 1;
  } finally {
    opened.db.close();
  }
}

/** Why this daemon may not touch the kernel's scheduler (undefined: it may). */
function whyObserveOnly(args: Arguments, haveStore: boolean, host: Host): string | undefined {
  if (args.observeOnly) return "started with --observe-only";
  if (args.replay) return "replaying a trace: the samples are not this host's";
  if (!haveStore) return "the state database is unavailable, and deploying needs it (verdicts, deployments)";
  if (!readSchedExtStatus(host).supported)
    return "THIS KERNEL HAS NO sched_ext (/sys/kernel/sched_ext is missing): no policy can be attached; boot a kernel built with CONFIG_SCHED_CLASS_EXT=y";
  return undefined;
}

if (import.meta.main) process.exitCode = await main(process.argv.slice(2));
