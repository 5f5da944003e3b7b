import { z } from "zod";
import { RESULT_MARKER } from "../sandbox/types.ts";

// What the guest says during a day, parsed from its console: the day's own marks, the kernel's
// sched_ext state changes, each round of a phase's command with its output, the store dumps, and the daemon's JSON log
// lines (prefixed with the run and the guest's uptime by the guest script). Guest output is
// untrusted input: every record goes through a schema; what does not fit is skipped.

/** Prefix of a daemon log line on the console: `SCHEDCTLD <run> <uptime> <json>`. */
export const DAEMON_PREFIX = "SCHEDCTLD ";

export const DayMark = z.object({
  load: z.literal("day"),
  event: z.enum(["run-start", "daemon-ready", "phase-start", "phase-end", "run-end", "eject", "done"]),
  t: z.number(),
  run: z.number().int().optional(),
  phase: z.number().int().optional(),
  /** The phase's name in the day file. */
  name: z.string().optional(),
  mode: z.enum(["baseline", "day1", "learned"]).optional(),
  daemonExit: z.number().optional(),
});
export type DayMark = z.infer<typeof DayMark>;

export const KernelChange = z.object({
  load: z.literal("kernel"),
  t: z.number(),
  state: z.string(),
  ops: z.string(),
});
export type KernelChange = z.infer<typeof KernelChange>;

/** One round of a phase's foreground command: when it ran, how it ended, what it printed. */
export const Round = z
  .object({
    load: z.literal("round"),
    run: z.number().int(),
    phase: z.number().int(),
    unit: z.string(),
    start: z.number(),
    end: z.number(),
    status: z.number().int(),
    /** The tail of its output (or of the file its KPI reads), base64. */
    out: z.string(),
  })
  .transform(({ out, load: _, ...round }) => ({
    ...round,
    output: Buffer.from(out, "base64").toString("utf8"),
  }));
export type Round = z.infer<typeof Round>;

export const StoreDump = z.object({
  load: z.literal("store"),
  run: z.number().int(),
  kernel: z.object({ state: z.string().nullable(), ops: z.string().nullable() }),
  phases: z.array(z.object({ at: z.number(), class: z.string(), signature: z.string() })).default([]),
  deployments: z
    .array(
      z.object({
        policy: z.string(),
        outcome: z.string(),
        reason: z.string(),
        kernelReason: z.string().nullable().optional(),
        startedAt: z.number(),
        endedAt: z.number().nullable().optional(),
      }),
    )
    .default([]),
  controller: z
    .object({ phase: z.string().optional(), policy: z.string().nullable(), opsName: z.string().nullable() })
    .optional(),
  verdicts: z.object({ n: z.number(), passed: z.number().nullable() }).nullable().optional(),
  missing: z.string().optional(),
  /** How long the dump waited for a swap in flight to finish. */
  settleMs: z.number().optional(),
});
export type StoreDump = z.infer<typeof StoreDump>;

/** One daemon log record, with the run it belongs to and the guest uptime it was printed at. */
export interface DaemonLine {
  kind: "daemon";
  run: number;
  t: number;
  level: number;
  msg: string;
  /** `phase` (the loop's phase change) or the journal's kind: decision, verification, deploy, rollback. */
  event: string | undefined;
  fields: Record<string, unknown>;
}

export type DayEvent =
  | { kind: "mark"; mark: DayMark }
  | { kind: "kernel"; change: KernelChange }
  | { kind: "round"; round: Round }
  | { kind: "store"; dump: StoreDump }
  | { kind: "kernel-after-stop"; run: number; state: string }
  | DaemonLine;

const AfterStop = z.object({
  load: z.literal("kernel-after-stop"),
  run: z.number().int(),
  state: z.string(),
});

/** A guest-reported value (a RESULT line's JSON) as a day event, or undefined when it is not one. */
export function eventOfResult(value: unknown): DayEvent | undefined {
  const load = (value as { load?: unknown } | null)?.load;
  const parsers = {
    day: () => ({ kind: "mark" as const, mark: DayMark.parse(value) }),
    kernel: () => ({ kind: "kernel" as const, change: KernelChange.parse(value) }),
    store: () => ({ kind: "store" as const, dump: StoreDump.parse(value) }),
    round: () => ({ kind: "round" as const, round: Round.parse(value) }),
    "kernel-after-stop": () => ({
      kind: "kernel-after-stop" as const,
      ...AfterStop.omit({ load: true }).parse(value),
    }),
  } as Record<string, () => DayEvent>;
  try {
    if (typeof load !== "string") return undefined;
    return parsers[load]?.();
  } catch {
    return undefined;
  }
}

/** One console line as a day event, or undefined (boot messages, a line cut by a kernel message). */
export function parseConsoleLine(line: string): DayEvent | undefined {
  const result = line.indexOf(RESULT_MARKER);
  if (result >= 0) {
    try {
      return eventOfResult(JSON.parse(line.slice(result + RESULT_MARKER.length)));
    } catch {
      return undefined;
    }
  }
  if (line.startsWith(DAEMON_PREFIX)) return parseDaemonLine(line.slice(DAEMON_PREFIX.length));
  return undefined;
}

function parseDaemonLine(rest: string): DaemonLine | undefined {
  const m = /^(\d+) (\d+(?:\.\d+)?) (\{.*\})\s*$/.exec(rest);
  if (!m) return undefined;
  let record: Record<string, unknown>;
  try {
    record = JSON.parse(m[3]!) as Record<string, unknown>;
  } catch {
    return undefined;
  }
  if (typeof record !== "object" || record === null) return undefined;
  const event = typeof record.SCHEDCTL_EVENT === "string" ? record.SCHEDCTL_EVENT : record.event;
  return {
    kind: "daemon",
    run: Number(m[1]),
    t: Number(m[2]),
    level: typeof record.level === "number" ? record.level : 30,
    msg: typeof record.msg === "string" ? record.msg : "",
    event: typeof event === "string" ? event : undefined,
    fields: record,
  };
}

/** Every day event in a console, in order. */
export function parseConsole(console: string): DayEvent[] {
  const events: DayEvent[] = [];
  for (const line of console.split(/\r?\n/)) {
    const event = parseConsoleLine(line);
    if (event) events.push(event);
  }
  return events;
}
