import { mkdirSync, rmSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { ManualClock } from "../../../src/host/clock.ts";
import { createHost, HostError } from "../../../src/host/host.ts";
import { createMemoryLogger } from "../../../src/log/logger.ts";
import { HostSampler } from "../../../src/observe/sampler.ts";
import { WindowBuilder } from "../../../src/observe/window.ts";
import {
  type CgroupCounters,
  type SystemCounters,
  spyHost,
  V1_ONLY_MOUNTINFO,
  write,
  writeCgroup,
  writeProcess,
  writeSystem,
} from "../../helpers/proc-tree.ts";
import { tempDir } from "../../helpers/tmp.ts";

const options = { cgroupRoots: ["/"], cgroupMaxDepth: 8, topProcesses: 5 };

function system(overrides: Partial<SystemCounters> = {}): SystemCounters {
  return {
    busy: [100, 100],
    idle: [900, 900],
    ctxt: 1000,
    forks: 50,
    running: 2,
    blocked: 0,
    psi: { cpu: 1000, io: 0, memory: 0 },
    schedstat: [
      { runNs: 1e9, delayNs: 1e8, slices: 10 },
      { runNs: 1e9, delayNs: 1e8, slices: 10 },
    ],
    ...overrides,
  };
}

/** A 3-level tree: / -> {a, b} -> a/{x, y} -> a/x/{leaf}; b is idle throughout. */
const TREE: Record<string, CgroupCounters> = {
  "/": { usage: 10_000 },
  "/a": { usage: 6000 },
  "/a/x": { usage: 5000 },
  "/a/x/leaf": { usage: 4000, memory: 1 << 20, threads: 3 },
  "/a/y": { usage: 1000 },
  "/b": { usage: 2000 },
  "/b/idle": { usage: 2000 },
};

function writeTreeCounters(root: string, tree: Record<string, CgroupCounters>): void {
  for (const [path, c] of Object.entries(tree)) writeCgroup(root, path, c);
}

describe("HostSampler on a fixture tree", () => {
  it("reads every cgroup of a 3-level tree first, then only the ones whose counters moved", () => {
    const root = tempDir();
    writeSystem(root, system());
    writeTreeCounters(root, TREE);
    const host = spyHost(root);
    const sampler = new HostSampler(host, options, new ManualClock(1000), createMemoryLogger());
    const first = sampler.next();
    expect(first.full).toBe(true);
    expect(first.cgroups.map((c) => c.path).sort()).toEqual(Object.keys(TREE).sort());
    const leaf = first.cgroups.find((c) => c.path === "/a/x/leaf")!;
    expect(leaf).toMatchObject({
      usageUs: 4000,
      memoryBytes: 1 << 20,
      tasks: 3,
      ioReadBytes: 4097,
      ioWriteOps: 3,
    });

    // Only the leaf's branch works; b's subtree stays idle and must not be read at all.
    for (const path of ["/", "/a", "/a/x", "/a/x/leaf"])
      writeCgroup(root, path, { ...TREE[path]!, usage: TREE[path]!.usage + 500 });
    const idleReadsBefore = host.reads.get("/sys/fs/cgroup/b/idle/cpu.stat");
    const second = sampler.next();
    expect(second.full).toBe(false);
    expect(second.cgroups.map((c) => c.path).sort()).toEqual(["/", "/a", "/a/x", "/a/x/leaf"]);
    expect(host.reads.get("/sys/fs/cgroup/b/idle/cpu.stat")).toBe(idleReadsBefore);
    // a/y was checked (its parent moved) but did not move, so it is not listed.
    expect(host.reads.get("/sys/fs/cgroup/a/y/cpu.stat")).toBe(2);
    sampler.close();
  });

  it("drops a cgroup that vanishes in the middle of its reads, and one removed between samples", () => {
    const root = tempDir();
    writeSystem(root, system());
    writeTreeCounters(root, TREE);
    const host = spyHost(root);
    const log = createMemoryLogger();
    const sampler = new HostSampler(host, options, new ManualClock(0), log);
    sampler.next();
    for (const path of ["/", "/a", "/a/x", "/a/x/leaf", "/a/y"])
      writeCgroup(root, path, { ...TREE[path]!, usage: TREE[path]!.usage + 100 });
    // The kernel answers ENODEV on a removed cgroup's open files: leaf goes away after its cpu.stat was read.
    host.beforeRead = (path) => {
      if (path === "/sys/fs/cgroup/a/x/leaf/cpu.pressure") {
        rmSync(join(root, "sys/fs/cgroup/a/x/leaf"), { recursive: true });
        throw new HostError(path, "ENODEV", "ENODEV (read)");
      }
    };
    const second = sampler.next();
    expect(second.removed).toEqual(["/a/x/leaf"]);
    expect(second.cgroups.map((c) => c.path)).not.toContain("/a/x/leaf");
    expect(second.cgroups.map((c) => c.path)).toContain("/a/y");
    host.beforeRead = undefined;

    rmSync(join(root, "sys/fs/cgroup/a/y"), { recursive: true });
    for (const path of ["/", "/a"])
      writeCgroup(root, path, { ...TREE[path]!, usage: TREE[path]!.usage + 200 });
    const third = sampler.next();
    expect(third.removed).toEqual(["/a/y"]);
    expect(log.records.filter((r) => r.level === "warn")).toEqual([]);
    expect(sampler.cgroupCount).toBe(5);
    sampler.close();
  });

  /**
   * TREE sampled, then one second later (200 of 400 ticks busy) with /c at `after`; /c exists
   * before the first sample only when `before` is given.
   */
  function secondWindow(before: CgroupCounters | undefined, after: CgroupCounters) {
    const root = tempDir();
    writeSystem(root, system());
    writeTreeCounters(root, TREE);
    if (before) writeCgroup(root, "/c", before);
    const clock = new ManualClock(0);
    const sampler = new HostSampler(createHost(root), options, clock, createMemoryLogger());
    const windows = new WindowBuilder({ topCgroups: 3, topProcesses: 3 });
    windows.push(sampler.next());
    writeSystem(root, system({ busy: [200, 200], idle: [1000, 1000] }));
    writeCgroup(root, "/", { usage: 12_000 });
    writeCgroup(root, "/c", after);
    clock.advance(1000);
    const sample = sampler.next();
    return { sample, window: windows.push(sample)!, sampler };
  }

  it("finds a cgroup created after the first sample and counts it from zero", () => {
    const { sample, window, sampler } = secondWindow(undefined, { usage: 1500 });
    expect(sample.cgroups.map((c) => c.path)).toEqual(["/", "/c"]);
    // 200 ticks busy of 400 in 1 s on 2 CPUs: 1 s of CPU time; /c used 1.5 ms of it.
    expect(window.features.cpu_util).toBeCloseTo(0.5);
    expect(window.topCgroups[0]).toMatchObject({ path: "/c" });
    expect(window.topCgroups[0]!.cpuShare).toBeCloseTo(0.0015);
    sampler.close();
  });

  it("gives each busy cgroup its CPU pressure: some (any task waited) and full (none of them ran)", () => {
    const { window, sampler } = secondWindow(
      { usage: 0, cpuSome: 0, cpuFull: 0 },
      { usage: 1500, cpuSome: 400_000, cpuFull: 100_000 },
    );
    const c = window.topCgroups.find((g) => g.path === "/c");
    expect(c?.psiCpuSome).toBeCloseTo(0.4);
    expect(c?.psiCpuFull).toBeCloseTo(0.1);
    sampler.close();
  });

  it("turns a counter that went backwards (a re-created cgroup) into a reset, never a negative rate", () => {
    const root = tempDir();
    writeSystem(root, system());
    writeTreeCounters(root, TREE);
    const clock = new ManualClock(0);
    const sampler = new HostSampler(createHost(root), options, clock, createMemoryLogger());
    const windows = new WindowBuilder({ topCgroups: 3, topProcesses: 3 });
    windows.push(sampler.next());
    writeSystem(root, system({ busy: [300, 300], idle: [1000, 1000], ctxt: 500, forks: 60 }));
    writeCgroup(root, "/", { usage: 400_000 });
    writeCgroup(root, "/a", { usage: 300_000 });
    writeCgroup(root, "/a/x", { usage: 300_000 });
    writeCgroup(root, "/a/x/leaf", { usage: 300 });
    clock.advance(1000);
    const window = windows.push(sampler.next())!;
    const leaf = window.topCgroups.find((c) => c.path === "/a/x/leaf");
    // 400 of 600 ticks busy on 2 CPUs in 1 s: 1.33 s of CPU time, of which the leaf used 300 us.
    expect(leaf?.cpuShare).toBeCloseTo(300 / ((2_000_000 * 400) / 600), 6);
    // ctxt went from 1000 to 500: a reset, so 500 switches in the window, not -500.
    expect(window.features.ctxsw_per_sec_per_cpu).toBe(250);
    expect(window.features.forks_per_sec).toBe(10);
    for (const value of Object.values(window.features)) expect(value).toBeGreaterThanOrEqual(0);
    sampler.close();
  });

  it("reports the busiest processes with their exact names (cleaned per medium on output)", () => {
    const root = tempDir();
    writeSystem(root, system());
    writeCgroup(root, "/", { usage: 1 });
    writeProcess(root, 10, "make", 100);
    writeProcess(root, 11, "evil) S 1 (x", 100);
    writeProcess(root, 12, "ctl\u0007\u001b[2Jxxxxxx", 100);
    write(root, "/proc/self/stat", "not a pid dir");
    const clock = new ManualClock(0);
    const sampler = new HostSampler(createHost(root), options, clock, createMemoryLogger());
    expect(sampler.next().processes).toEqual([]);
    writeProcess(root, 10, "make", 110);
    writeProcess(root, 11, "evil) S 1 (x", 150);
    writeProcess(root, 12, "ctl\u0007\u001b[2Jxxxxxx", 130);
    rmSync(join(root, "proc/10"), { recursive: true });
    const top = sampler.next().processes;
    expect(top.map((p) => [p.pid, p.comm, p.intervalTicks])).toEqual([
      [11, "evil) S 1 (x", 50],
      [12, "ctl\u0007\u001b[2Jxxxxxx", 30],
    ]);
    sampler.close();
  });
});

describe("a host that lacks signals", () => {
  it("goes on without PSI when /proc/pressure is missing and says why", () => {
    const root = tempDir();
    writeSystem(root, system({ psi: undefined }));
    writeCgroup(root, "/", { usage: 1 });
    const sampler = new HostSampler(createHost(root), options, new ManualClock(0), createMemoryLogger());
    expect(sampler.lacks).toContainEqual({ signal: "psi", reason: expect.stringMatching(/CONFIG_PSI/) });
    const sample = sampler.next();
    expect(sample.psi).toBeUndefined();
    expect(sample.lacks).toContain("psi");
    expect(sample.stat).toBeDefined();
    sampler.close();
  });

  it("notices PSI switched off at boot (psi=0: the files answer EOPNOTSUPP)", () => {
    const root = tempDir();
    writeSystem(root, system());
    writeCgroup(root, "/", { usage: 1 });
    const host = spyHost(root);
    host.beforeRead = (path) => {
      if (path.startsWith("/proc/pressure/")) throw new HostError(path, "EOPNOTSUPP", "EOPNOTSUPP (read)");
    };
    const sampler = new HostSampler(host, options, new ManualClock(0), createMemoryLogger());
    const sample = sampler.next();
    expect(sample.psi).toBeUndefined();
    expect(sample.lacks).toContain("psi");
    expect(sampler.lacks).toContainEqual({ signal: "psi", reason: expect.stringMatching(/psi=0/) });
    sampler.close();
  });

  it("works on a cgroup-v1-only host with system signals alone", () => {
    const root = tempDir();
    writeSystem(root, system(), V1_ONLY_MOUNTINFO);
    const sampler = new HostSampler(createHost(root), options, new ManualClock(0), createMemoryLogger());
    expect(sampler.lacks).toContainEqual({
      signal: "cgroup2",
      reason: expect.stringMatching(/only cgroup v1/),
    });
    const sample = sampler.next();
    expect(sample.cgroups).toEqual([]);
    expect(sample.lacks).toContain("cgroup2");
    expect(sample.stat?.ctxt).toBe(1000);
    sampler.close();
  });

  it("approximates run delay from per-process schedstat when /proc/schedstat is missing", () => {
    const root = tempDir();
    writeSystem(root, system({ schedstat: undefined }));
    writeCgroup(root, "/", { usage: 1 });
    writeProcess(root, 20, "worker", 10);
    write(root, "/proc/20/schedstat", "1000000 500000 4\n");
    const sampler = new HostSampler(createHost(root), options, new ManualClock(0), createMemoryLogger());
    expect(sampler.lacks.map((l) => l.signal)).toContain("schedstat");
    sampler.next();
    writeProcess(root, 20, "worker", 20);
    write(root, "/proc/20/schedstat", "3000000 1500000 9\n");
    const sample = sampler.next();
    expect(sample.schedstat).toEqual({
      source: "tasks",
      runNs: 2_000_000,
      runDelayNs: 1_000_000,
      timeslices: 5,
    });
    sampler.close();
  });

  it("skips an unreadable file with one warning naming it, and keeps the rest", () => {
    const root = tempDir();
    writeSystem(root, system());
    writeCgroup(root, "/", { usage: 1 });
    rmSync(join(root, "proc/loadavg"));
    mkdirSync(join(root, "proc/loadavg")); // reading a directory fails with EISDIR
    write(root, "/proc/pressure/io", "garbage\n");
    const log = createMemoryLogger();
    const sampler = new HostSampler(createHost(root), options, new ManualClock(0), log);
    sampler.next();
    const sample = sampler.next();
    expect(sample.loadavg).toBeUndefined();
    expect(sample.psi?.io).toBeUndefined();
    expect(sample.psi?.cpu).toBeDefined();
    expect(sample.lacks).toEqual(expect.arrayContaining(["loadavg", "psi.io"]));
    const warnings = log.records.filter((r) => r.level === "warn").map((r) => r.message);
    expect(warnings).toEqual([
      "/proc/loadavg: cannot read (EISDIR)",
      '/proc/pressure/io: cannot parse: no "some" line',
    ]);
    sampler.close();
  });
});
