#!/usr/bin/env node
import { parseArgs } from "node:util";
import { ConfigError, DEFAULT_CONFIG_DIR, loadConfig } from "../config/load.ts";
import { systemClock } from "../host/clock.ts";
import { createHost } from "../host/host.ts";
import { createLogger } from "../log/logger.ts";
import { HostSampler } from "../observe/sampler.ts";
import { TraceError, TraceWriter } from "../observe/trace.ts";
import { DAEMON_COMMANDS, daemonErrorExit } from "./daemon-commands.ts";

// schedctl: the command-line client. Each command is one entry of COMMANDS: its usage line and
// a function that takes its own arguments and returns the exit status.

export class UsageError extends Error {
  override readonly name = "UsageError";
}

interface Command {
  usage: string;
  summary: string;
  run(args: string[]): Promise<number>;
}

const COMMANDS: Record<string, Command> = {
  ...DAEMON_COMMANDS,
  record: {
    usage:
      "schedctl record --duration SECONDS --out FILE [--interval-ms N] [--host-root DIR] [--config PATH] [--cgroup-root PATH]... [--max-depth N]",
    summary: "capture raw samples of this host into a JSON Lines trace",
    run: record,
  },
  demo: {
    usage:
      "schedctl demo [--day FILE] [--phase-seconds N] [--repetitions N] [--seed N] [--out DIR] [--eject] [--llm] [--cache-dir DIR]",
    summary: "run a day of workloads in the sched_ext VM and watch schedctl work (local; needs qemu)",
    // Loaded on use: the VM harness is heavy and no other command needs it.
    run: async (args) => (await import("../demo/demo.ts")).demo(args),
  },
};

async function record(args: string[]): Promise<number> {
  const { values } = parseArgs({
    args,
    options: {
      duration: { type: "string" },
      out: { type: "string" },
      "interval-ms": { type: "string" },
      "host-root": { type: "string", default: "/" },
      config: { type: "string", default: DEFAULT_CONFIG_DIR },
      "cgroup-root": { type: "string", multiple: true },
      "max-depth": { type: "string" },
    },
    strict: true,
  });
  if (!values.out) throw new UsageError("--out FILE is required");
  const duration = positiveNumber("--duration", values.duration);
  const { config } = loadConfig(values.config);
  const interval = values["interval-ms"]
    ? positiveNumber("--interval-ms", values["interval-ms"])
    : config.daemon.sample_interval_ms;
  const maxDepth = values["max-depth"] ? positiveNumber("--max-depth", values["max-depth"], true) : undefined;
  const log = createLogger({ level: "warn" });
  const sampler = new HostSampler(
    createHost(values["host-root"]),
    {
      cgroupRoots: values["cgroup-root"] ?? config.observe.cgroup_roots,
      cgroupMaxDepth: maxDepth ?? config.observe.cgroup_max_depth,
      topProcesses: config.observe.top_processes,
    },
    systemClock,
    log,
  );
  for (const lack of sampler.lacks)
    process.stderr.write(`schedctl record: lacking ${lack.signal}: ${lack.reason}\n`);
  const writer = new TraceWriter(values.out);
  const stop = new AbortController();
  const onSignal = () => stop.abort();
  process.once("SIGINT", onSignal);
  process.once("SIGTERM", onSignal);
  const start = systemClock.monotonic();
  let written = 0;
  try {
    // One sample at the start and one per interval up to the duration: 60 s at 1 s gives 61.
    const last = Math.floor((duration * 1000) / interval);
    for (let k = 0; k <= last && !stop.signal.aborted; k++) {
      writer.write(sampler.next());
      written++;
      const wait = start + (k + 1) * interval - systemClock.monotonic();
      if (k < last && wait > 0) await systemClock.sleep(wait, stop.signal).catch(() => {});
    }
  } finally {
    writer.close();
    sampler.close();
    process.off("SIGINT", onSignal);
    process.off("SIGTERM", onSignal);
  }
  process.stderr.write(`schedctl record: ${written} samples written to ${values.out}\n`);
  return 0;
}

function positiveNumber(flag: string, text: string | undefined, allowZero = false): number {
  if (text === undefined) throw new UsageError(`${flag} is required`);
  const value = Number(text);
  if (!Number.isFinite(value) || value < 0 || (!allowZero && value === 0))
    throw new UsageError(
      `${flag}: expected a ${allowZero ? "non-negative" : "positive"} number, got "${text}"`,
    );
  return value;
}

const EXIT_STATUSES =
  "\nexit status: 0 done, 1 failed or refused, 2 bad usage or invalid arguments, 3 daemon not running\n" +
  "or no bus, 4 permission denied, 5 no such policy, 6 verification failed (see schedctl(1))\n";

function usage(): string {
  const width = Math.max(...Object.keys(COMMANDS).map((n) => n.length));
  const lines = Object.entries(COMMANDS).map(([name, c]) => `  ${name.padEnd(width)}  ${c.summary}`);
  return `usage: schedctl COMMAND [ARGS...]\n       schedctl COMMAND --help\n\ncommands:\n${lines.join("\n")}\n${EXIT_STATUSES}`;
}

export async function main(argv: string[]): Promise<number> {
  const [name, ...args] = argv;
  if (!name || name === "help" || name === "--help" || name === "-h") {
    process.stdout.write(usage());
    return name ? 0 : 2;
  }
  const command = COMMANDS[name];
  if (!command) {
    process.stderr.write(`schedctl: unknown command "${name}"\n${usage()}`);
    return 2;
  }
  const own = args.includes("--") ? args.slice(0, args.indexOf("--")) : args;
  if (own.includes("--help") || own.includes("-h")) {
    process.stdout.write(`usage: ${command.usage}\n\n${command.summary}\n${EXIT_STATUSES}`);
    return 0;
  }
  try {
    return await command.run(args);
  } catch (error) {
    if (error instanceof UsageError || (error as { code?: string }).code?.startsWith("ERR_PARSE_ARGS")) {
      process.stderr.write(`schedctl ${name}: ${(error as Error).message}\nusage: ${command.usage}\n`);
      return 2;
    }
    if (error instanceof ConfigError || error instanceof TraceError) {
      process.stderr.write(`schedctl ${name}: ${error.message}\n`);
      return 1;
    }
    const status = daemonErrorExit(name, command.usage, error);
    if (status !== undefined) return status;
    throw error;
  }
}

if (import.meta.main) process.exitCode = await main(process.argv.slice(2));
