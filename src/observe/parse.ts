import type { CpuTicks, LoadAvg, ProcStat, PsiLine, PsiResource, SchedCounters } from "./types.ts";

// Parsers for the kernel's text files. They run on every sample for every cgroup, so they scan
// characters instead of using regexes or split(), and they throw ParseError on text they do not
// understand (the caller says which file).

export class ParseError extends Error {
  override readonly name = "ParseError";
}

const SPACE = 32;
const NEWLINE = 10;
const TAB = 9;

/** The unsigned decimal starting at `from` (skipping blanks); NaN when there is none. */
function numberAt(text: string, from: number): { value: number; end: number } {
  let i = from;
  while (i < text.length && (text.charCodeAt(i) === SPACE || text.charCodeAt(i) === TAB)) i++;
  const start = i;
  while (i < text.length) {
    const c = text.charCodeAt(i);
    if ((c < 48 || c > 57) && c !== 46) break;
    i++;
  }
  return { value: i === start ? Number.NaN : Number(text.slice(start, i)), end: i };
}

/** Whitespace-separated fields of one line, as numbers (the first field, a name, excluded). */
function fieldsAfterName(line: string): number[] {
  const out: number[] = [];
  let i = line.indexOf(" ");
  while (i >= 0 && i < line.length) {
    const { value, end } = numberAt(line, i);
    if (Number.isNaN(value)) break;
    out.push(value);
    i = end;
  }
  return out;
}

function* lines(text: string): Generator<string> {
  let start = 0;
  while (start < text.length) {
    let end = text.indexOf("\n", start);
    if (end < 0) end = text.length;
    if (end > start) yield text.slice(start, end);
    start = end + 1;
  }
}

/** "key=value" inside a PSI line, e.g. valueOf("some avg10=0.00 ... total=12", "total="). */
function psiField(line: string, key: string): number {
  const at = line.indexOf(key);
  if (at < 0) throw new ParseError(`no ${key.slice(0, -1)} in "${line}"`);
  const { value } = numberAt(line, at + key.length);
  if (Number.isNaN(value)) throw new ParseError(`bad ${key.slice(0, -1)} in "${line}"`);
  return value;
}

function psiLine(line: string): PsiLine {
  return {
    avg10: psiField(line, "avg10="),
    avg60: psiField(line, "avg60="),
    total: psiField(line, "total="),
  };
}

/** /proc/pressure/* and cgroup *.pressure: a "some" line and (on newer kernels) a "full" line. */
export function parsePressure(text: string): PsiResource {
  let some: PsiLine | undefined;
  let full: PsiLine | undefined;
  for (const line of lines(text)) {
    if (line.startsWith("some ")) some = psiLine(line);
    else if (line.startsWith("full ")) full = psiLine(line);
  }
  if (!some) throw new ParseError('no "some" line');
  return full ? { some, full } : { some };
}

/** Only the cumulative totals of a pressure file (what per-cgroup sampling needs). */
export function parsePressureTotals(text: string): { some: number; full: number | undefined } {
  const someAt = text.indexOf("some ");
  if (someAt < 0) throw new ParseError('no "some" line');
  const someLineEnd = text.indexOf("\n", someAt);
  const some = psiField(text.slice(someAt, someLineEnd < 0 ? text.length : someLineEnd), "total=");
  const fullAt = text.indexOf("full ");
  if (fullAt < 0) return { some, full: undefined };
  const fullLineEnd = text.indexOf("\n", fullAt);
  return { some, full: psiField(text.slice(fullAt, fullLineEnd < 0 ? text.length : fullLineEnd), "total=") };
}

/** Flat "key value" files (cpu.stat, memory.stat): calls `take` for each pair. */
export function parseKeyValues(text: string, take: (key: string, value: number) => void): void {
  let start = 0;
  while (start < text.length) {
    let end = text.indexOf("\n", start);
    if (end < 0) end = text.length;
    const space = text.indexOf(" ", start);
    if (space > start && space < end) {
      const { value } = numberAt(text, space + 1);
      if (!Number.isNaN(value)) take(text.slice(start, space), value);
    }
    start = end + 1;
  }
}

export interface CpuStat {
  usageUs: number;
  userUs: number;
  systemUs: number;
  periods?: number;
  throttled?: number;
  throttledUs?: number;
}

export function parseCpuStat(text: string): CpuStat {
  const out: CpuStat = { usageUs: Number.NaN, userUs: 0, systemUs: 0 };
  parseKeyValues(text, (key, value) => {
    switch (key) {
      case "usage_usec":
        out.usageUs = value;
        break;
      case "user_usec":
        out.userUs = value;
        break;
      case "system_usec":
        out.systemUs = value;
        break;
      case "nr_periods":
        out.periods = value;
        break;
      case "nr_throttled":
        out.throttled = value;
        break;
      case "throttled_usec":
        out.throttledUs = value;
        break;
    }
  });
  if (Number.isNaN(out.usageUs)) throw new ParseError("no usage_usec");
  return out;
}

export interface IoTotals {
  rbytes: number;
  wbytes: number;
  rios: number;
  wios: number;
}

/** io.stat: one line per device, "8:0 rbytes=1 wbytes=2 rios=3 wios=4 dbytes=0 dios=0". */
export function parseIoStat(text: string): IoTotals {
  const out = { rbytes: 0, wbytes: 0, rios: 0, wios: 0 };
  let i = 0;
  while (i < text.length) {
    const eq = text.indexOf("=", i);
    if (eq < 0) break;
    let keyStart = eq;
    while (
      keyStart > 0 &&
      text.charCodeAt(keyStart - 1) !== SPACE &&
      text.charCodeAt(keyStart - 1) !== NEWLINE
    )
      keyStart--;
    const key = text.slice(keyStart, eq);
    const { value, end } = numberAt(text, eq + 1);
    if (!Number.isNaN(value) && (key === "rbytes" || key === "wbytes" || key === "rios" || key === "wios"))
      out[key] += value;
    i = Math.max(end, eq + 1);
  }
  return out;
}

/** Lines in a file (cgroup.threads: one tid per line). */
export function countLines(text: string): number {
  let n = 0;
  for (let i = 0; i < text.length; i++) if (text.charCodeAt(i) === NEWLINE) n++;
  if (text.length > 0 && text.charCodeAt(text.length - 1) !== NEWLINE) n++;
  return n;
}

function cpuTicks(fields: number[]): CpuTicks {
  // user nice system idle iowait irq softirq steal [guest guest_nice]; guest time is already in user.
  const idle = fields[3] ?? 0;
  const iowait = fields[4] ?? 0;
  let busy = 0;
  for (let k = 0; k < Math.min(fields.length, 8); k++) if (k !== 3 && k !== 4) busy += fields[k] ?? 0;
  return { busy, idle, iowait };
}

export function parseProcStat(text: string): ProcStat {
  let cpu: CpuTicks | undefined;
  const perCpu: CpuTicks[] = [];
  const out = { ctxt: Number.NaN, forks: Number.NaN, running: 0, blocked: 0 };
  for (const line of lines(text)) {
    if (line.startsWith("cpu")) {
      const fields = fieldsAfterName(line);
      if (fields.length < 4) throw new ParseError(`short cpu line "${line}"`);
      if (line.charCodeAt(3) === SPACE) cpu = cpuTicks(fields);
      else perCpu.push(cpuTicks(fields));
    } else if (line.startsWith("ctxt ")) out.ctxt = numberAt(line, 5).value;
    else if (line.startsWith("processes ")) out.forks = numberAt(line, 10).value;
    else if (line.startsWith("procs_running ")) out.running = numberAt(line, 14).value;
    else if (line.startsWith("procs_blocked ")) out.blocked = numberAt(line, 14).value;
  }
  if (!cpu) throw new ParseError("no cpu line");
  if (Number.isNaN(out.ctxt) || Number.isNaN(out.forks)) throw new ParseError("no ctxt or processes line");
  return { cpu, perCpu, ...out };
}

/** "0.35 0.27 0.15 3/105 7834". */
export function parseLoadavg(text: string): LoadAvg {
  const a = numberAt(text, 0);
  const b = numberAt(text, a.end);
  const c = numberAt(text, b.end);
  const runnable = numberAt(text, c.end);
  const threads =
    text.charCodeAt(runnable.end) === 47 ? numberAt(text, runnable.end + 1) : { value: Number.NaN };
  const values = [a.value, b.value, c.value, runnable.value, threads.value];
  if (values.some(Number.isNaN)) throw new ParseError(`unexpected loadavg "${text.trim()}"`);
  return {
    load1: a.value,
    load5: b.value,
    load15: c.value,
    runnable: runnable.value,
    threads: threads.value,
  };
}

/**
 * /proc/schedstat (version 15 and later): "cpuN" lines whose 7th, 8th and 9th numbers are the
 * time run (ns), the time waited on the run queue (ns) and the number of timeslices.
 */
export function parseSchedstat(text: string): SchedCounters[] {
  if (!text.startsWith("version ")) throw new ParseError("no version line");
  const version = numberAt(text, 8).value;
  if (!(version >= 15)) throw new ParseError(`unsupported schedstat version ${version}`);
  const out: SchedCounters[] = [];
  for (const line of lines(text)) {
    if (!line.startsWith("cpu")) continue;
    const f = fieldsAfterName(line);
    if (f.length < 9) throw new ParseError(`short cpu line "${line}"`);
    out.push({ runNs: f[6]!, runDelayNs: f[7]!, timeslices: f[8]! });
  }
  if (out.length === 0) throw new ParseError("no cpu lines");
  return out;
}

/** /proc/PID/schedstat: "runtime_ns run_delay_ns timeslices". */
export function parseTaskSchedstat(text: string): SchedCounters {
  const a = numberAt(text, 0);
  const b = numberAt(text, a.end);
  const c = numberAt(text, b.end);
  if (Number.isNaN(a.value) || Number.isNaN(b.value) || Number.isNaN(c.value))
    throw new ParseError(`unexpected task schedstat "${text.trim()}"`);
  return { runNs: a.value, runDelayNs: b.value, timeslices: c.value };
}

export interface PidStat {
  comm: string;
  cpuTicks: number;
  start: number;
}

/**
 * /proc/PID/stat: "pid (comm) state ppid ...". The comm may hold spaces and parentheses, so the
 * fields are counted from the last ")": utime and stime are fields 14 and 15, starttime 22.
 */
export function parsePidStat(text: string): PidStat {
  const open = text.indexOf("(");
  const close = text.lastIndexOf(")");
  if (open < 0 || close < open) throw new ParseError("no (comm)");
  // After ") " comes field 3 (state); utime is field 14, i.e. the 12th field after the state.
  let i = close + 2;
  let field = 3;
  let utime = Number.NaN;
  let stime = Number.NaN;
  let start = Number.NaN;
  while (i < text.length && field <= 22) {
    let end = text.indexOf(" ", i);
    if (end < 0) end = text.length;
    if (field === 14) utime = Number(text.slice(i, end));
    else if (field === 15) stime = Number(text.slice(i, end));
    else if (field === 22) start = Number(text.slice(i, end));
    field++;
    i = end + 1;
  }
  if (Number.isNaN(utime) || Number.isNaN(stime) || Number.isNaN(start))
    throw new ParseError("short stat line");
  return { comm: text.slice(open + 1, close), cpuTicks: utime + stime, start };
}
