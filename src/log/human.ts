// The terminal's view of the log: one line per record (time, level, message, the fields that
// matter), for `schedctld --foreground` on a TTY. JSON stays the format for journald and pipes.

import { forTerminal } from "../text/untrusted.ts";

/** Fields every record carries or that only machines read: never shown on the line (nor journald's UPPER_CASE ones). */
const HIDDEN = new Set(["level", "time", "svc", "msg", "pid", "hostname", "v"]);
const JOURNAL_FIELD = /^[A-Z][A-Z0-9_]*$/;
/** Shown first when present, in this order; other scalar fields follow, up to MAX_FIELDS. */
const FIRST = ["event", "mode", "policy", "phase", "class", "to", "from", "reason", "error", "signal"];
const MAX_FIELDS = 6;
const MAX_VALUE = 80;
const MESSAGE_MAX = 2048;

const LEVELS: Record<number, string> = {
  10: "TRACE",
  20: "DEBUG",
  30: "INFO",
  40: "WARN",
  50: "ERROR",
  60: "FATAL",
};
const COLOURS: Record<number, string> = { 40: "33", 50: "31", 60: "31" };

/** Host text (unit names, comm) reaches the terminal: the one cleaner, whole for the message, cut for a field. */
const printable = (text: string) => forTerminal(text, MESSAGE_MAX);
const cut = (text: string) => forTerminal(text, MAX_VALUE);

function shown(value: unknown): string | undefined {
  if (typeof value === "string") {
    const text = cut(value);
    return /[\s"=]/.test(text) ? JSON.stringify(text) : text;
  }
  if (typeof value === "number" || typeof value === "boolean") return String(value);
  if (Array.isArray(value) && value.length > 0 && value.every((v) => typeof v === "string"))
    return cut(value.slice(0, 3).join(",") + (value.length > 3 ? ",…" : ""));
  return undefined;
}

/** One pino JSON record as a line a person reads; a line that is not a record passes through, cleaned. */
export function humanLine(json: string, colour: boolean): string {
  let record: Record<string, unknown>;
  try {
    record = JSON.parse(json) as Record<string, unknown>;
  } catch {
    return printable(json.trimEnd());
  }
  if (record === null || typeof record !== "object") return printable(json.trimEnd());
  const level = typeof record.level === "number" ? record.level : 30;
  const at = typeof record.time === "string" ? new Date(record.time) : undefined;
  const time = at && !Number.isNaN(at.getTime()) ? at.toTimeString().slice(0, 8) : "--:--:--";
  const name = (LEVELS[level] ?? String(level)).padEnd(5);
  const paint = colour && COLOURS[level] ? `\x1b[${COLOURS[level]}m${name}\x1b[0m` : name;
  const keys = [
    ...FIRST.filter((k) => k in record),
    ...Object.keys(record).filter((k) => !HIDDEN.has(k) && !JOURNAL_FIELD.test(k) && !FIRST.includes(k)),
  ];
  const fields: string[] = [];
  for (const key of keys) {
    if (fields.length === MAX_FIELDS) break;
    const value = shown(record[key]);
    if (value !== undefined) fields.push(`${key}=${value}`);
  }
  const message = printable(typeof record.msg === "string" ? record.msg : "");
  return [time, paint, message, ...fields].join(" ").trimEnd();
}

/** A pino destination that writes humanLine() of each record to a file descriptor's stream. */
export function humanDestination(
  out: { write(text: string): unknown },
  colour: boolean,
): { write(text: string): void } {
  return {
    write(chunk: string) {
      for (const line of chunk.split("\n")) if (line.trim() !== "") out.write(`${humanLine(line, colour)}\n`);
    },
  };
}
