import { findCgroup2Mount } from "../host/cgroup.ts";
import type { Clock } from "../host/clock.ts";
import type { Host } from "../host/host.ts";
import type { Logger } from "../log/logger.ts";
import { CgroupTree } from "./cgroups.ts";
import { ProcessScanner } from "./processes.ts";
import { type Lack, SystemCollector } from "./system.ts";
import type { Sample, SchedStat } from "./types.ts";

export interface SamplerOptions {
  cgroupRoots: readonly string[];
  cgroupMaxDepth: number;
  topProcesses: number;
}

/** Where samples come from: the live host, or a trace being replayed. */
export interface SampleSource {
  /** The next sample, or undefined when the source is exhausted (a trace's end). */
  next(): Sample | undefined;
  /** What this source cannot offer, with reasons (logged once by the daemon). */
  readonly lacks: readonly Lack[];
  close(): void;
}

/** Linux's USER_HZ: the unit of /proc/stat and /proc/PID/stat tick counters on every architecture. */
const USER_HZ = 100;

/** Reads the live host through `host`: one call, one Sample. */
export class HostSampler implements SampleSource {
  readonly #system: SystemCollector;
  readonly #cgroups: CgroupTree | undefined;
  readonly #processes: ProcessScanner;
  readonly #clock: Clock;
  readonly #lacks: Lack[] = [];
  #firstDone = false;

  constructor(host: Host, options: SamplerOptions, clock: Clock, log: Logger) {
    this.#clock = clock;
    this.#system = new SystemCollector(host, log);
    const mount = findCgroup2Mount(host);
    if (mount.found) {
      this.#cgroups = new CgroupTree(
        host,
        { mount: mount.path, roots: options.cgroupRoots, maxDepth: options.cgroupMaxDepth },
        log,
      );
    } else {
      this.#lacks.push({ signal: "cgroup2", reason: mount.reason });
    }
    this.#processes = new ProcessScanner(host, options.topProcesses, !this.#system.hasSchedstat);
  }

  get lacks(): Lack[] {
    return [...this.#system.lacks, ...this.#lacks];
  }

  /** How many cgroups the sampler currently tracks. */
  get cgroupCount(): number {
    return this.#cgroups?.size ?? 0;
  }

  next(): Sample {
    const at = this.#clock.now();
    const mono = this.#clock.monotonic();
    const system = this.#system.read();
    const cgroups = this.#cgroups?.read() ?? { changed: [], removed: [] };
    const processes = this.#processes.read();
    let schedstat: SchedStat | undefined;
    if (system.schedstat) {
      const perCpu = system.schedstat;
      schedstat = {
        source: "system",
        runDelayNs: perCpu.reduce((s, c) => s + c.runDelayNs, 0),
        runNs: perCpu.reduce((s, c) => s + c.runNs, 0),
        timeslices: perCpu.reduce((s, c) => s + c.timeslices, 0),
        perCpu,
      };
    } else if (processes.schedstat) {
      schedstat = { source: "tasks", ...processes.schedstat };
    }
    const lacks = this.#system.currentLacks();
    if (!this.#cgroups) lacks.push("cgroup2");
    const sample: Sample = {
      at,
      mono,
      cpus: Math.max(1, system.stat?.perCpu.length ?? 1),
      hz: USER_HZ,
      cgroups: cgroups.changed,
      full: !this.#firstDone,
      removed: cgroups.removed,
      processes: processes.top,
      lacks: [...new Set(lacks)],
    };
    this.#firstDone = true;
    if (system.stat) sample.stat = system.stat;
    if (system.loadavg) sample.loadavg = system.loadavg;
    if (system.psi) sample.psi = system.psi;
    if (schedstat) sample.schedstat = schedstat;
    return sample;
  }

  close(): void {
    this.#system.close();
    this.#cgroups?.close();
    this.#processes.close();
  }
}
