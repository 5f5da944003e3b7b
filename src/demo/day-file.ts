import { existsSync, readFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { parse as parseToml } from "smol-toml";
import { z } from "zod";
import { tomlErrorAt } from "../config/load.ts";
import type { Metric } from "../sandbox/tools/parser.ts";
import { PARSERS } from "../sandbox/tools/registry.ts";

// A day as a TOML file (days/*.toml, or a user's own): its phases, each with the unit its
// commands run in, its foreground command and the KPI read from each round of it, its background
// load and the files it needs in the guest; the order of the phases; and the figures of the
// bench's last line. Read and checked whole before anything boots: an error names the file, the
// phase, the key and what was expected.

/** The day the demo and the bench run unless told otherwise (installed beside the code). */
export const BUILTIN_DAY = join(import.meta.dirname, "..", "..", "days", "builtin.toml");

const Name = z
  .string()
  .regex(/^[a-z][a-z0-9_-]*$/, "expected a name of a-z, 0-9, _ and -, starting with a letter");
/** A cgroup path below the cgroup2 mount; it goes into the guest's shell script as it is. */
const Unit = z
  .string()
  .regex(
    /^[A-Za-z0-9_.@:-]+(\/[A-Za-z0-9_.@:-]+)*$/,
    "expected a cgroup path such as system.slice/my.service (letters, digits, _ . @ : -, parts split by /)",
  )
  .refine((u) => !u.split("/").some((part) => part === "." || part === ".."), "expected no . or .. parts");
const Command = z.string().trim().min(1, "expected a command");
const GuestPath = z
  .string()
  .regex(/^\/[^\s'"`$\\]+$/, "expected an absolute guest path without spaces or quotes");

const ParserKpi = z.strictObject({
  parser: z.enum(Object.keys(PARSERS) as [string, ...string[]], {
    error: (issue) =>
      `expected a built-in parser (${Object.keys(PARSERS).join(", ")}), got ${JSON.stringify(issue.input)}`,
  }),
  metric: z.string(),
  /** The guest file the command writes its report to (default: its stdout and stderr). */
  output: GuestPath.optional(),
});
const RegexKpi = z.strictObject({
  regex: z.string().refine(validRegex, "expected a regular expression with one capture group"),
  metric: Name,
  better: z.enum(["lower", "higher"]),
  output: GuestPath.optional(),
});
const WallKpi = z.strictObject({ wall_time: z.literal(true) });
const Kpi = z.union([ParserKpi, RegexKpi, WallKpi], {
  error:
    'expected { parser = "<name>", metric = "<figure>" }, { regex = "...", metric = "<name>", better = "lower" | "higher" } or { wall_time = true }',
});

const Background = z.strictObject({
  unit: Unit,
  run: Command,
  /** Run again each time it ends until the phase does (otherwise once, waited for at the end). */
  repeat: z.boolean().default(false),
});

const GuestFile = z.strictObject({
  /** Relative to the day file. */
  host: z.string().min(1),
  guest: GuestPath,
});

const Phase = z.strictObject({
  /** Default: the run's phase length (--phase-seconds, AUTOPILOT_PHASE_SECONDS). */
  seconds: z.number().int().min(1).max(3600).optional(),
  unit: Unit.optional(),
  /** The foreground command, run in rounds until the phase ends; none makes the phase idle. */
  run: Command.optional(),
  kpi: Kpi.optional(),
  /** More figures from the same KPI source, shown under the KPI in the table. */
  also: z.array(z.string()).default([]),
  background: z.array(Background).default([]),
  files: z.array(GuestFile).default([]),
});

const SummaryEntry = z.strictObject({
  phase: Name,
  /** Default: the phase's KPI. */
  metric: z.string().optional(),
  /** The learned day's median ratio to the default (default), or the default's band against itself. */
  figure: z.enum(["ratio", "band"]).default("ratio"),
});

const DayFileSchema = z.strictObject({
  description: z.string().optional(),
  schedule: z.strictObject({
    /** The phases in order: the short day (CI's) is these alone. */
    order: z.array(Name).min(1, "expected at least one phase"),
    /** Phases met again after the first pass, in an order drawn from the seed. */
    again: z.array(Name).default([]),
  }),
  phases: z.record(Name, Phase),
  /** The bench's last line: key = figure, in this order (ratios, then the day's own figures, then bands). */
  summary: z
    .record(z.string().regex(/^[a-z][a-z0-9_]*$/, "expected a key of a-z, 0-9 and _"), SummaryEntry)
    .default({}),
});

export type PhaseSpec = z.infer<typeof Phase>;
export type KpiSpec = z.infer<typeof Kpi>;
export type SummaryEntry = z.infer<typeof SummaryEntry>;
export interface DayFile extends z.infer<typeof DayFileSchema> {
  /** Where it was read from. */
  path: string;
}

export class DayFileError extends Error {
  override readonly name = "DayFileError";
}

function validRegex(source: string): boolean {
  try {
    new RegExp(source);
    return /\((?!\?)/.test(source);
  } catch {
    return false;
  }
}

/** The figure a KPI reads: its name and what it means. */
export function kpiMetric(kpi: KpiSpec): { name: string } & Metric {
  if ("wall_time" in kpi) return { name: "wall_s", label: "wall s", better: "lower" };
  if ("regex" in kpi) return { name: kpi.metric, label: kpi.metric, better: kpi.better };
  return { name: kpi.metric, ...PARSERS[kpi.parser]!.metrics[kpi.metric]! };
}

/** Every figure a phase's KPI source gives, by name (for `also` and the summary). */
export function kpiMetrics(kpi: KpiSpec): Record<string, Metric> {
  if ("parser" in kpi) return PARSERS[kpi.parser]!.metrics;
  const { name, ...metric } = kpiMetric(kpi);
  return { [name]: metric };
}

/** Where a key sits, for the message: the phase it belongs to and the rest of its path. */
function place(path: readonly PropertyKey[]): string {
  if (path[0] === "phases" && path.length >= 2) {
    const rest = formatPath(path.slice(2));
    return `phase "${String(path[1])}"${rest ? `: key ${rest}` : ""}`;
  }
  return path.length ? `key ${formatPath(path)}` : "the file";
}

function formatPath(path: readonly PropertyKey[]): string {
  return path.map((p, i) => (typeof p === "number" ? `[${p}]` : `${i ? "." : ""}${String(p)}`)).join("");
}

/**
 * Where an issue sits and what was expected, in the file's terms. A KPI's issue comes from the
 * one kind of KPI its keys belong to (zod tries them all); an unknown key is named as such.
 */
function explain(
  issue: z.core.$ZodIssue,
  at: readonly PropertyKey[] = [],
): { path: PropertyKey[]; what: string } {
  const path = [...at, ...issue.path];
  if (issue.code === "unrecognized_keys")
    return { path: [...path, issue.keys[0]!], what: `unknown key ${issue.keys.join(", ")}` };
  if (issue.code === "invalid_union") {
    const fitting = issue.errors.filter(
      (branch) => !branch.some((i) => i.code === "unrecognized_keys" && i.path.length === 0),
    );
    if (fitting.length === 1 && fitting[0]![0]) return explain(fitting[0]![0], path);
  }
  if (issue.code === "invalid_key" && issue.issues[0])
    return { path, what: `${issue.issues[0].message}, got ${JSON.stringify(String(path.at(-1)))}` };
  if (issue.code === "invalid_type" && / received undefined$/.test(issue.message))
    return { path, what: `missing, expected ${issue.expected}` };
  return { path, what: issue.message.replace(/^Invalid (input|option): /, "") };
}

/** The day in a TOML text, checked; `path` names it in errors and anchors its files. */
export function parseDayFile(text: string, path: string): DayFile {
  const fail = (where: string, what: string) => new DayFileError(`${path}: ${where}: ${what}`);
  let raw: unknown;
  try {
    raw = parseToml(text);
  } catch (error) {
    const { line, column, message } = tomlErrorAt(error);
    const what = message.replace(/^Invalid TOML document: /, "");
    throw fail(line === undefined ? "not TOML" : `not TOML at line ${line}, column ${column}`, what);
  }
  const parsed = DayFileSchema.safeParse(raw);
  if (!parsed.success) {
    const { path: at, what } = explain(parsed.error.issues[0]!);
    throw fail(place(at), what);
  }
  const day = parsed.data;
  const names = Object.keys(day.phases);
  const known = `one of the phases (${names.join(", ")})`;
  for (const key of ["order", "again"] as const)
    day.schedule[key].forEach((name, i) => {
      if (!day.phases[name]) throw fail(`key schedule.${key}[${i}]`, `expected ${known}, got "${name}"`);
    });
  for (const [name, phase] of Object.entries(day.phases)) {
    const at = (key: string) => place(["phases", name, key]);
    if (phase.run === undefined) {
      const given = (["unit", "kpi", "also", "background", "files"] as const).filter((key) =>
        Array.isArray(phase[key]) ? (phase[key] as unknown[]).length > 0 : phase[key] !== undefined,
      );
      if (given.length)
        throw fail(
          at("run"),
          `expected the command the phase runs in rounds (it has ${given.join(", ")}; a phase without run is idle and has none of them)`,
        );
      continue;
    }
    if (phase.unit === undefined) throw fail(at("unit"), "expected the cgroup path the command runs in");
    if (phase.kpi === undefined) throw fail(at("kpi"), "expected the KPI read from each round of run");
    const metrics = kpiMetrics(phase.kpi);
    const figures = `one of ${Object.keys(metrics).join(", ")}`;
    if ("parser" in phase.kpi && !metrics[phase.kpi.metric])
      throw fail(
        at("kpi.metric"),
        `expected ${figures} (parser ${phase.kpi.parser}), got "${phase.kpi.metric}"`,
      );
    phase.also.forEach((m, i) => {
      if (!metrics[m]) throw fail(`${at("also")}[${i}]`, `expected ${figures}, got "${m}"`);
    });
  }
  for (const [key, entry] of Object.entries(day.summary)) {
    const phase = day.phases[entry.phase];
    const where = `key summary.${key}.phase`;
    if (!phase) throw fail(where, `expected ${known}, got "${entry.phase}"`);
    if (!phase.kpi) throw fail(where, `expected a phase with a KPI, "${entry.phase}" has none`);
    const metrics = kpiMetrics(phase.kpi);
    if (entry.metric !== undefined && !metrics[entry.metric])
      throw fail(
        `key summary.${key}.metric`,
        `expected one of ${Object.keys(metrics).join(", ")}, got "${entry.metric}"`,
      );
  }
  return { ...day, path };
}

/** Reads and checks a day file, and that every file it copies into the guest exists. */
export function loadDayFile(path: string): DayFile {
  const absolute = resolve(path);
  let text: string;
  try {
    text = readFileSync(absolute, "utf8");
  } catch (error) {
    throw new DayFileError(`${path}: cannot read the day file: ${(error as Error).message}`);
  }
  const day = parseDayFile(text, path);
  for (const [name, phase] of Object.entries(day.phases))
    phase.files.forEach((file, i) => {
      const host = resolve(dirname(absolute), file.host);
      if (!existsSync(host))
        throw new DayFileError(
          `${path}: phase "${name}": key files[${i}].host: expected an existing file, ${host} is not there`,
        );
      file.host = host;
    });
  return day;
}
