import { mkdirSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { createHost, type FileReader, type Host, HostError } from "../../src/host/host.ts";

// A fake host under a temporary root: /proc files and a cgroup2 tree the tests write and change
// between samples, as the kernel would.

export const CGROUP2_MOUNTINFO =
  "22 1 0:21 / / rw - ext4 /dev/vda rw\n30 22 0:26 / /sys/fs/cgroup rw,nosuid - cgroup2 cgroup2 rw,nsdelegate\n";
export const V1_ONLY_MOUNTINFO =
  "22 1 0:21 / / rw - ext4 /dev/vda rw\n31 22 0:28 / /sys/fs/cgroup tmpfs rw - tmpfs tmpfs rw\n32 31 0:29 / /sys/fs/cgroup/cpu rw - cgroup cgroup rw,cpu\n";

export interface SystemCounters {
  busy: number[];
  idle: number[];
  ctxt: number;
  forks: number;
  running: number;
  blocked: number;
  psi?: { cpu: number; io: number; memory: number };
  schedstat?: { runNs: number; delayNs: number; slices: number }[];
}

export function write(root: string, path: string, text: string): void {
  const full = join(root, path);
  mkdirSync(dirname(full), { recursive: true });
  writeFileSync(full, text);
}

export function writeSystem(root: string, c: SystemCounters, mountinfo = CGROUP2_MOUNTINFO): void {
  const cpuLine = (name: string, busy: number, idle: number) => `${name} ${busy} 0 0 ${idle} 0 0 0 0 0 0`;
  const total = cpuLine(
    "cpu ",
    c.busy.reduce((a, b) => a + b, 0),
    c.idle.reduce((a, b) => a + b, 0),
  );
  const perCpu = c.busy.map((b, i) => cpuLine(`cpu${i}`, b, c.idle[i]!));
  write(
    root,
    "/proc/stat",
    `${[total, ...perCpu].join("\n")}\nintr 1 2\nctxt ${c.ctxt}\nbtime 1\nprocesses ${c.forks}\nprocs_running ${c.running}\nprocs_blocked ${c.blocked}\n`,
  );
  write(root, "/proc/loadavg", `0.50 0.40 0.30 ${c.running}/200 4242\n`);
  write(root, "/proc/self/mountinfo", mountinfo);
  if (c.psi) {
    for (const [resource, total] of Object.entries(c.psi)) {
      write(
        root,
        `/proc/pressure/${resource}`,
        `some avg10=1.00 avg60=0.50 avg300=0.10 total=${total}\nfull avg10=0.00 avg60=0.00 avg300=0.00 total=${Math.floor(total / 2)}\n`,
      );
    }
  }
  if (c.schedstat) {
    const lines = c.schedstat.map(
      (s, i) => `cpu${i} 0 0 100 50 80 40 ${s.runNs} ${s.delayNs} ${s.slices}\ndomain0 00000003 1 2 3`,
    );
    write(root, "/proc/schedstat", `version 15\ntimestamp 4294\n${lines.join("\n")}\n`);
  }
}

export interface CgroupCounters {
  usage: number;
  cpuSome?: number;
  cpuFull?: number;
  ioSome?: number;
  memory?: number;
  threads?: number;
  /** Writes cgroup.stat with this nr_descendants (as the kernel keeps it); none when undefined. */
  descendants?: number;
}

/** Writes one cgroup's files under /sys/fs/cgroup (path "/" is the root). */
export function writeCgroup(root: string, path: string, c: CgroupCounters): void {
  const dir = join("/sys/fs/cgroup", path);
  write(
    root,
    `${dir}/cpu.stat`,
    `usage_usec ${c.usage}\nuser_usec ${Math.floor(c.usage * 0.7)}\nsystem_usec ${Math.ceil(c.usage * 0.3)}\nnr_periods 0\nnr_throttled 0\nthrottled_usec 0\n`,
  );
  const psi = (total: number, full = 0) =>
    `some avg10=0.00 avg60=0.00 avg300=0.00 total=${total}\nfull avg10=0.00 avg60=0.00 avg300=0.00 total=${full}\n`;
  write(root, `${dir}/cpu.pressure`, psi(c.cpuSome ?? 0, c.cpuFull ?? 0));
  write(root, `${dir}/io.pressure`, psi(c.ioSome ?? 0));
  write(root, `${dir}/memory.pressure`, psi(0));
  if (c.memory !== undefined) write(root, `${dir}/memory.current`, `${c.memory}\n`);
  write(
    root,
    `${dir}/io.stat`,
    "8:0 rbytes=4096 wbytes=8192 rios=1 wios=2 dbytes=0 dios=0\n8:16 rbytes=1 wbytes=1 rios=1 wios=1 dbytes=0 dios=0\n",
  );
  if (c.descendants !== undefined)
    write(root, `${dir}/cgroup.stat`, `nr_descendants ${c.descendants}\nnr_dying_descendants 0\n`);
  write(
    root,
    `${dir}/cgroup.threads`,
    Array.from({ length: c.threads ?? 1 }, (_, i) => `${100 + i}\n`).join(""),
  );
}

export function writeProcess(root: string, pid: number, comm: string, ticks: number, start = 500): void {
  // Fields after "(comm)": state ppid pgrp session tty tpgid flags minflt cminflt majflt cmajflt utime stime ...
  const after = ["S", 1, pid, pid, 0, -1, 4194304, 10, 0, 0, 0, ticks, 0, 0, 0, 20, 0, 1, 0, start, 1000, 10];
  write(root, `/proc/${pid}/stat`, `${pid} (${comm}) ${after.join(" ")}\n`);
}

/** A Host over `root` that counts reads per path and can intercept them. */
export interface SpyHost extends Host {
  reads: Map<string, number>;
  /** Called before each read through a kept reader; may change the tree or throw. */
  beforeRead?: (hostPath: string) => void;
}

export function spyHost(root: string): SpyHost {
  const inner = createHost(root);
  const spy: SpyHost = {
    ...inner,
    reads: new Map(),
    openReader(hostPath: string): FileReader {
      const reader = inner.openReader(hostPath);
      return {
        hostPath,
        read() {
          spy.reads.set(hostPath, (spy.reads.get(hostPath) ?? 0) + 1);
          spy.beforeRead?.(hostPath);
          return reader.read();
        },
        close: () => reader.close(),
      };
    },
  };
  return spy;
}

export { HostError };
