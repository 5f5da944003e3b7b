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

export type SystemReading = Pick<Sample, "stat" | "loadavg" | "psi"> & { schedstat?: SchedCounters[] };

/** System-wide files: /proc/stat, /proc/loadavg, /proc/pressure/*, /proc/schedstat. */
export class SystemCollector {
  readonly #stat: KeptSource<ProcStat>;
  readonly #loadavg: KeptSource<LoadAvg>;
  readonly #psi: { resource: (typeof PSI_RESOURCES)[number]; source: KeptSource<PsiResource> }[];
  readonly #schedstat: KeptSource<SchedCounters[]> | undefined;
  readonly lacks: Lack[] = [];

  constructor(host: Host, log: Logger) {
    this.#stat = new KeptSource(host, "/proc/stat", parseProcStat, log);
    this.#loadavg = new KeptSource(host, "/proc/loadavg", parseLoadavg, log);
    this.#psi = [];
    if (host.exists("/proc/pressure")) {
      for (const resource of PSI_RESOURCES) {
        const path = `/proc/pressure/${resource}`;
        if (host.exists(path))
          this.#psi.push({ resource, source: new KeptSource(host, path, parsePressure, log) });
        else this.lacks.push({ signal: `psi.${resource}`, reason: `${path} is missing` });
      }
    } else {
      this.lacks.push({
        signal: "psi",
        reason: "/proc/pressure is missing: the kernel was built without CONFIG_PSI",
      });
    }
    if (host.exists("/proc/schedstat")) {
      this.#schedstat = new KeptSource(host, "/proc/schedstat", parseSchedstat, log);
    } else {
      this.lacks.push({
        signal: "schedstat",
        reason:
          "/proc/schedstat is missing (kernel without CONFIG_SCHEDSTATS): run delay is approximated from per-process /proc/PID/schedstat",
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

  /** Lacks that hold right now: the fixed ones plus files that failed on the last read. */
  currentLacks(): string[] {
    const out = this.lacks.map((l) => l.signal);
    if (this.#stat.problem) out.push("stat");
    if (this.#loadavg.problem) out.push("loadavg");
    for (const { resource, source } of this.#psi) if (source.problem) out.push(`psi.${resource}`);
    if (this.#schedstat?.problem) out.push("schedstat");
    return out;
  }

  close(): void {
    for (const s of [this.#stat, this.#loadavg, this.#schedstat, ...this.#psi.map((p) => p.source)])
      s?.close();
  }

  /** /proc/pressure exists but answers EOPNOTSUPP: PSI compiled in, switched off at boot. */
  #disablePsi(): void {
    for (const { source } of this.#psi) source.close();
    this.#psi.length = 0;
    this.lacks.push({ signal: "psi", reason: "PSI is disabled (the kernel was booted with psi=0)" });
  }
}
