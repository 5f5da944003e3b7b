#!/usr/bin/env node
import { join } from "node:path";
import { parseArgs } from "node:util";
import packageJson from "../../package.json" with { type: "json" };
import { ConfigError, DEFAULT_CONFIG_DIR, loadConfig } from "../config/load.ts";
import type { Config } from "../config/schema.ts";
import type { BusKind } from "../dbus/bus.ts";
import { systemClock } from "../host/clock.ts";
import { createHost, type Host } from "../host/host.ts";
import { readSchedExtStatus } from "../kernel/sysfs.ts";
import { createLogger, type Logger, logFormatFor } from "../log/logger.ts";
import type { ObservationStore } from "../observe/persistence.ts";
import type { Db } from "../store/db.ts";
import { SqliteObservationStore } from "../store/samples.ts";
import { openStateDb } from "../store/store.ts";
import { startSafely } from "./safe-start.ts";

// schedctld's entry. Safety first: a daemon that may touch the scheduler reconciles the
// kernel's state with its store (startSafely) before it loads the rest of itself (run.ts:
// observe, decide, verify, D-Bus), which takes seconds on a slow or loaded host.

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
  const log = createLogger({ level: config.daemon.log_level, format: logFormatFor(process.stderr) });
  if (args.importVerdicts)
    return importInto(args.importVerdicts, config, args.stateDir ?? config.daemon.state_dir, log);
  log.info(
    { config: files.length ? files : "built-in defaults", hostRoot: args.hostRoot, mode: config.daemon.mode },
    `schedctld starting (${args.observeOnly ? "observe only" : `mode ${config.daemon.mode}`})`,
  );
  const stateDir = args.stateDir ?? config.daemon.state_dir;
  const opened = openStore(config, stateDir, log);
  const host = createHost(args.hostRoot);
  const observeOnly = whyObserveOnly(args, opened !== undefined, host);
  const observeOnlyReason = observeOnly?.reason;
  const deployment =
    opened && !observeOnlyReason && config.daemon.mode !== "observe"
      ? startSafely({ config, db: opened.db, host, clock: systemClock, log })
      : undefined;
  const { runDaemon } = await import("./run.ts");
  return runDaemon({
    config,
    loadConfig: () => loadConfig(args.config).config,
    version: VERSION,
    log,
    host,
    hostRoot: args.hostRoot,
    stateDir,
    replay: args.replay,
    observeOnly: args.observeOnly,
    bus: args.bus,
    busAddress: args.busAddress,
    opened,
    observeOnlyReason,
    observeOnlyLevel: observeOnly?.level ?? "info",
    deployment,
  });
}

async function importInto(from: string, config: Config, stateDir: string, log: Logger): Promise<number> {
  const opened = openStore(config, stateDir, log);
  if (!opened) return 1;
  const { importVerdicts } = await import("./verdicts-import.ts");
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
/** Why the daemon only observes, at the level it deserves: asked for is info, a missing kernel feature a warning with the fix, a broken store an error. */
function whyObserveOnly(
  args: Arguments,
  haveStore: boolean,
  host: Host,
): { reason: string; level: "info" | "warn" | "error" } | undefined {
  if (args.observeOnly) return { reason: "started with --observe-only", level: "info" };
  if (args.replay) return { reason: "replaying a trace: the samples are not this host's", level: "info" };
  if (!haveStore)
    return {
      reason: "the state database is unavailable, and deploying needs it (verdicts, deployments)",
      level: "error",
    };
  if (!readSchedExtStatus(host).supported)
    return {
      reason:
        "this kernel has no sched_ext (/sys/kernel/sched_ext is missing): no policy can be attached; to let schedctl act, boot a kernel built with CONFIG_SCHED_CLASS_EXT=y (Linux 6.12 or later; the sandbox boots Debian's from trixie-backports)",
      level: "warn",
    };
  return undefined;
}

if (import.meta.main) process.exitCode = await main(process.argv.slice(2));
