import { pino } from "pino";

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
}

export function createLogger(options: LoggerOptions = {}): Logger {
  return pino(
    { level: options.level ?? "info", base: { svc: "schedctld" }, timestamp: pino.stdTimeFunctions.isoTime },
    pino.destination({ dest: options.destination ?? 2, sync: true }),
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
