import type { Host } from "../host/host.ts";
import type { Logger } from "../log/logger.ts";
import { parseLoadavg, parsePressure, parseProcStat, parseSchedstat } from "./parse.ts";
import { KeptSource } from "./source.ts";
import type { LoadAvg, ProcStat, PsiResource, Sample, SchedCounters } from "./types.ts";

export const PSI_RESOURCES = ["cpu", "memory", "io"] as const;

/** A signal the host does not offer, with the reason in words an operator can act on. */
export interface Lack {
  signal: string;
  reason: string;
}

/** Why /proc/schedstat is absent, and what stands in for it. */
export const NO_SCHEDSTATS =
  "kernel without CONFIG_SCHEDSTATS: run delay is approximated from per-process /proc/PID/schedstat";

export type SystemReading = Pick<Sample, "stat" | "loadavg" | "psi"> & { schedstat?: SchedCounters[] };

/** System-wide files: /proc/stat, /proc/loadavg, /proc/pressure/*, /proc/schedstat. */
export class SystemCollector {
  readonly #stat: KeptSource<ProcStat>;
  readonly #loadavg: KeptSource<LoadAvg>;
  readonly #psi: { resource: (typeof PSI_RESOURCES)[number]; source: KeptSource<PsiResource> }[];
  readonly #schedstat: KeptSource<SchedCounters[]> | undefined;
  /** Signals the host does not offer at all (absent files), fixed at start. */
  readonly #absent: Lack[] = [];

  constructor(host: Host, log: Logger) {
    this.#stat = new KeptSource(host, "/proc/stat", parseProcStat, log);
    this.#loadavg = new KeptSource(host, "/proc/loadavg", parseLoadavg, log);
    this.#psi = [];
    if (host.exists("/proc/pressure")) {
      for (const resource of PSI_RESOURCES) {
        const path = `/proc/pressure/${resource}`;
        if (host.exists(path))
          this.#psi.push({ resource, source: new KeptSource(host, path, parsePressure, log) });
        else this.#absent.push({ signal: `psi.${resource}`, reason: `${path} is missing` });
      }
    } else {
      this.#absent.push({
        signal: "psi",
        reason: "/proc/pressure is missing: the kernel was built without CONFIG_PSI",
      });
    }
    if (host.exists("/proc/schedstat")) {
      this.#schedstat = new KeptSource(host, "/proc/schedstat", parseSchedstat, log);
    } else {
      this.#absent.push({
        signal: "schedstat",
        reason: `/proc/schedstat is absent (${NO_SCHEDSTATS})`,
      });
    }
  }

  /** Whether system-wide run-queue statistics exist (else the process scanner approximates them). */
  get hasSchedstat(): boolean {
    return this.#schedstat !== undefined;
  }

  read(): SystemReading {
    const out: SystemReading = {};
    const stat = this.#stat.read();
    if (stat) out.stat = stat;
    const loadavg = this.#loadavg.read();
    if (loadavg) out.loadavg = loadavg;
    const psi: NonNullable<Sample["psi"]> = {};
    let any = false;
    for (const { resource, source } of this.#psi) {
      const value = source.read();
      if (value) {
        psi[resource] = value;
        any = true;
      } else if (source.problem?.includes("EOPNOTSUPP")) {
        this.#disablePsi();
        break;
      }
    }
    if (any) out.psi = psi;
    const schedstat = this.#schedstat?.read();
    if (schedstat) out.schedstat = schedstat;
    return out;
  }

  /**
   * Lacks that hold right now, with reasons: the absent files, then the present ones whose last
   * read failed (unreadable or unparsable, with the error code).
   */
  get lacks(): Lack[] {
    const failed: [string, KeptSource<unknown> | undefined][] = [
      ["stat", this.#stat],
      ["loadavg", this.#loadavg],
      ...this.#psi.map(({ resource, source }): [string, KeptSource<unknown>] => [`psi.${resource}`, source]),
      ["schedstat", this.#schedstat],
    ];
    const out = [...this.#absent];
    for (const [signal, source] of failed)
      if (source?.problem)
        out.push({ signal, reason: `${source.hostPath} is present but ${source.problem}` });
    return out;
  }

  currentLacks(): string[] {
    return this.lacks.map((l) => l.signal);
  }

  close(): void {
    for (const s of [this.#stat, this.#loadavg, this.#schedstat, ...this.#psi.map((p) => p.source)])
      s?.close();
  }

  /** /proc/pressure exists but answers EOPNOTSUPP: PSI compiled in, switched off at boot. */
  #disablePsi(): void {
    for (const { source } of this.#psi) source.close();
    this.#psi.length = 0;
    this.#absent.push({ signal: "psi", reason: "PSI is disabled (the kernel was booted with psi=0)" });
  }
}
