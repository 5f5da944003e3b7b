import { pino } from "pino";
import { humanDestination } from "./human.ts";

/**
 * The one logger. Every stage receives a Logger; only the daemon creates the real one.
 * Structured fields go in the first argument, the message in the second (pino's convention).
 */
export interface Logger {
  trace(fields: object, message: string): void;
  debug(fields: object, message: string): void;
  info(fields: object, message: string): void;
  warn(fields: object, message: string): void;
  error(fields: object, message: string): void;
  fatal(fields: object, message: string): void;
  child(bindings: object): Logger;
}

export type LogLevel = "trace" | "debug" | "info" | "warn" | "error" | "fatal";

export interface LoggerOptions {
  level?: LogLevel;
  /** A file descriptor or path; default standard error. */
  destination?: number | string;
  /** "human": one readable line per record on standard error (a terminal); default "json". */
  format?: "json" | "human";
}

/** Human lines on a terminal, JSON for journald and pipes; SCHEDCTL_LOG_FORMAT=json|human decides instead. */
export function logFormatFor(
  stream: { isTTY?: boolean },
  env: NodeJS.ProcessEnv = process.env,
): "json" | "human" {
  if (env.SCHEDCTL_LOG_FORMAT === "json" || env.SCHEDCTL_LOG_FORMAT === "human")
    return env.SCHEDCTL_LOG_FORMAT;
  return stream.isTTY ? "human" : "json";
}

export function createLogger(options: LoggerOptions = {}): Logger {
  return pino(
    { level: options.level ?? "info", base: { svc: "schedctld" }, timestamp: pino.stdTimeFunctions.isoTime },
    options.format === "human"
      ? humanDestination(process.stderr, !process.env.NO_COLOR && process.env.TERM !== "dumb")
      : pino.destination({ dest: options.destination ?? 2, sync: true }),
  );
}

/** A logger that keeps every record in memory, for tests that check what was said. */
export interface MemoryLogger extends Logger {
  readonly records: { level: LogLevel; message: string; fields: Record<string, unknown> }[];
}

export function createMemoryLogger(bindings: Record<string, unknown> = {}): MemoryLogger {
  const records: MemoryLogger["records"] = [];
  const make = (bound: Record<string, unknown>): MemoryLogger => {
    const at =
      (level: LogLevel) =>
      (fields: object, message: string): void => {
        records.push({ level, message, fields: { ...bound, ...fields } });
      };
    return {
      records,
      trace: at("trace"),
      debug: at("debug"),
      info: at("info"),
      warn: at("warn"),
      error: at("error"),
      fatal: at("fatal"),
      child: (more) => make({ ...bound, ...more }),
    };
  };
  return make(bindings);
}
