import type { FileReader, Host } from "../host/host.ts";
import { parsePidStat, parseTaskSchedstat } from "./parse.ts";
import type { ProcessSample, SchedCounters } from "./types.ts";

interface Tracked {
  stat: FileReader;
  schedstat: FileReader | undefined;
  start: number;
  cpuTicks: number;
  runDelayNs: number;
  runNs: number;
  timeslices: number;
  seen: number;
}

export interface ProcessReading {
  /** The busiest processes of the interval, busiest first. */
  top: ProcessSample[];
  /** Running sums of per-process schedstat deltas, when asked to approximate /proc/schedstat. */
  schedstat?: SchedCounters;
}

/**
 * Scans /proc for the processes that used CPU since the last scan. Descriptors of /proc/PID/stat
 * stay open while the process lives; a reused pid is told apart by its start time.
 */
export class ProcessScanner {
  readonly #host: Host;
  readonly #limit: number;
  readonly #withSchedstat: boolean;
  readonly #tracked = new Map<number, Tracked>();
  readonly #sums: SchedCounters = { runDelayNs: 0, runNs: 0, timeslices: 0 };
  #round = 0;

  /**
   * @param limit how many processes to report
   * @param withSchedstat also read /proc/PID/schedstat to approximate system run delay
   */
  constructor(host: Host, limit: number, withSchedstat: boolean) {
    this.#host = host;
    this.#limit = limit;
    this.#withSchedstat = withSchedstat;
  }

  read(): ProcessReading {
    const round = ++this.#round;
    const entries = this.#host.listDir("/proc") ?? [];
    const moved: { delta: number; comm: string; sample: ProcessSample }[] = [];
    for (const entry of entries) {
      const pid = pidOf(entry.name);
      if (pid === undefined) continue;
      let t = this.#tracked.get(pid);
      const isNew = !t;
      t ??= {
        stat: this.#host.openReader(`/proc/${pid}/stat`),
        schedstat: this.#withSchedstat ? this.#host.openReader(`/proc/${pid}/schedstat`) : undefined,
        start: -1,
        cpuTicks: 0,
        runDelayNs: 0,
        runNs: 0,
        timeslices: 0,
        seen: round,
      };
      let stat: ReturnType<typeof parsePidStat>;
      try {
        stat = parsePidStat(t.stat.read());
      } catch {
        // Gone between the listing and the read (or unreadable): nothing to rank.
        this.#forget(pid, t);
        continue;
      }
      if (isNew || stat.start !== t.start) {
        // A new process (or a reused pid): its history starts now, nothing moved yet.
        t.start = stat.start;
        t.cpuTicks = stat.cpuTicks;
        this.#tracked.set(pid, t);
        this.#readSchedstat(t, true);
        t.seen = round;
        continue;
      }
      t.seen = round;
      const delta = stat.cpuTicks - t.cpuTicks;
      t.cpuTicks = stat.cpuTicks;
      this.#readSchedstat(t, false);
      if (delta > 0 && this.#limit > 0) {
        moved.push({
          delta,
          comm: stat.comm,
          sample: { pid, comm: "", cpuTicks: stat.cpuTicks, intervalTicks: delta, start: stat.start },
        });
      }
    }
    for (const [pid, t] of this.#tracked) if (t.seen !== round) this.#forget(pid, t);
    moved.sort((a, b) => b.delta - a.delta);
    const top = moved.slice(0, this.#limit).map((m) => ({ ...m.sample, comm: m.comm }));
    return this.#withSchedstat ? { top, schedstat: { ...this.#sums } } : { top };
  }

  close(): void {
    for (const [pid, t] of this.#tracked) this.#forget(pid, t);
  }

  #readSchedstat(t: Tracked, fresh: boolean): void {
    if (!t.schedstat) return;
    let now: SchedCounters;
    try {
      now = parseTaskSchedstat(t.schedstat.read());
    } catch {
      // No per-task schedstat for this process (gone, or the kernel lacks it): stop asking.
      t.schedstat.close();
      t.schedstat = undefined;
      return;
    }
    if (!fresh) {
      this.#sums.runDelayNs += Math.max(0, now.runDelayNs - t.runDelayNs);
      this.#sums.runNs += Math.max(0, now.runNs - t.runNs);
      this.#sums.timeslices += Math.max(0, now.timeslices - t.timeslices);
    }
    t.runDelayNs = now.runDelayNs;
    t.runNs = now.runNs;
    t.timeslices = now.timeslices;
  }

  #forget(pid: number, t: Tracked): void {
    t.stat.close();
    t.schedstat?.close();
    this.#tracked.delete(pid);
  }
}

/** The pid a /proc entry names, or undefined for "self", "sys", ... (no regex: this runs per entry). */
function pidOf(name: string): number | undefined {
  if (name.length === 0) return undefined;
  for (let i = 0; i < name.length; i++) {
    const c = name.charCodeAt(i);
    if (c < 48 || c > 57) return undefined;
  }
  return Number(name);
}
