import { mkdirSync, mkdtempSync, rmSync, symlinkSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as delay } from "node:timers/promises";
import { Config, type ConfigInput } from "../../src/config/schema.ts";
import type { LoopState, TickContext } from "../../src/daemon/loop.ts";
import { DaemonManager } from "../../src/daemon/manager.ts";
import { createNotifier } from "../../src/daemon/notify.ts";
import { type Stages, wireStages } from "../../src/daemon/wiring.ts";
import type { ManagerEvent } from "../../src/dbus/backend.ts";
import { ManualClock } from "../../src/host/clock.ts";
import { createHost } from "../../src/host/host.ts";
import type { JournalEvent } from "../../src/journal/events.ts";
import { createMemoryLogger } from "../../src/log/logger.ts";
import { DaemonMetrics } from "../../src/metrics/registry.ts";
import type { Profile } from "../../src/observe/types.ts";
import { defaultCacheDir, ensureSandboxKernel } from "../../src/sandbox/kernel-image.ts";
import type { Db } from "../../src/store/db.ts";
import { openStateDb } from "../../src/store/store.ts";
import { serviceUnderHogs } from "./decide-fixtures.ts";
import { FixtureKernel } from "./fixture-kernel.ts";
import { writeCgroup, writeSystem } from "./proc-tree.ts";

// Decide -> Verify -> Deploy as schedctld wires them (wireStages), on a fixture host whose
// sched_ext sysfs is written by a fixture kernel, with its own SQLite store; driven as the loop
// drives it: one profile per tick, posted job results applied at the start of the next. Used by
// the autopilot and fleet integration tests and by bench:fleet.

export interface Rig {
  stages: Stages;
  kernel: FixtureKernel;
  clock: ManualClock;
  journal: JournalEvent[];
  events: ManagerEvent[];
  db: Db;
  host: ReturnType<typeof createHost>;
  config: Config;
  /** The registry the stages count into, as schedctld's. */
  metrics: DaemonMetrics;
  tick(profile: Profile): Promise<void>;
  until(what: string, done: () => boolean, profile?: Profile | (() => Profile)): Promise<void>;
  context: TickContext;
  /** Stops the autopilot (and the fleet link), closes the store, removes the files. */
  close(): Promise<void>;
}

export interface RigOptions {
  mode?: "auto" | "manual";
  llmEndpoint?: string;
  fleet?: ConfigInput["fleet"];
}

export async function openRig(options: RigOptions = {}): Promise<Rig> {
  const dir = mkdtempSync(join(tmpdir(), "schedctl-rig-"));
  const root = join(dir, "host");
  writeSystem(root, { busy: [500, 400], idle: [1500, 1600], ctxt: 9000, forks: 300, running: 2, blocked: 0 });
  writeCgroup(root, "/", { usage: 1_000_000 });
  writeCgroup(root, "/system.slice/api.service", { usage: 100_000, threads: 3 });
  writeCgroup(root, "/batch.slice/hogs.service", { usage: 800_000, threads: 4 });
  const host = createHost(root);
  const kernel = new FixtureKernel(root, host);
  // The compiler's vmlinux.h: the sched_ext kernel's (a real host derives it from its own BTF).
  const cacheDir = join(dir, "cache");
  mkdirSync(join(cacheDir, "include", "host"), { recursive: true });
  const sandboxKernel = await ensureSandboxKernel({ cacheDir: defaultCacheDir() });
  symlinkSync(sandboxKernel.vmlinuxH, join(cacheDir, "include", "host", "vmlinux.h"));
  const config = Config.parse({
    daemon: { mode: options.mode ?? "auto" },
    ...(options.fleet && { fleet: options.fleet }),
    verify: { cache_dir: cacheDir, dynamic: "probation-only" },
    deploy: { probation_seconds: 5, watchdog_ms: 20 },
    ...(options.llmEndpoint && {
      llm: { provider: "openai", endpoint: options.llmEndpoint, model: "scripted", drift_threshold: 0.01 },
      decide: { confidence_threshold: 1 },
    }),
  });
  const db = openStateDb(join(dir, "state.db"));
  const clock = new ManualClock(Date.UTC(2026, 10, 25, 12));
  const journal: JournalEvent[] = [];
  const events: ManagerEvent[] = [];
  const metrics = new DaemonMetrics();
  const stages = wireStages({
    config,
    db,
    host,
    clock,
    log: createMemoryLogger(),
    journal: { record: (e) => void journal.push(e), close: () => undefined },
    stateDir: dir,
    mode: options.mode ?? "auto",
    emit: (e) => void events.push(e),
    kernel,
    metrics,
  });
  const posted: (() => void | Promise<void>)[] = [];
  const context: TickContext = {
    state: {} as LoopState,
    post: (_source, apply) => void posted.push(apply),
    signal: new AbortController().signal,
    change: undefined,
  };
  const tick = async (profile: Profile) => {
    clock.advance(1000);
    for (const apply of posted.splice(0)) await apply();
    stages.autopilot.onProfile({ ...profile, at: clock.now() });
  };
  const until = async (
    what: string,
    done: () => boolean,
    profile: Profile | (() => Profile) = serviceUnderHogs(),
  ) => {
    const deadline = Date.now() + 90_000; // clang compiles real policies meanwhile
    while (!done()) {
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
      await tick(typeof profile === "function" ? profile() : profile);
      await delay(25);
    }
  };
  const close = async () => {
    await stages.autopilot.onStop();
    await stages.fleet?.stop();
    db.close();
    rmSync(dir, { recursive: true, force: true });
  };
  return { stages, kernel, clock, journal, events, db, host, config, metrics, tick, until, context, close };
}

export function managerOver(r: Rig): DaemonManager {
  const log = createMemoryLogger();
  return new DaemonManager({
    host: r.host,
    clock: r.clock,
    log,
    journal: { record: () => undefined, close: () => undefined },
    notifier: createNotifier({ logger: log }),
    store: undefined,
    state: () => ({
      ticks: 1,
      skippedTicks: 0,
      lastSampleMs: undefined,
      lastSampleAt: r.clock.now(),
      profile: serviceUnderHogs(),
      phase: { signature: "sig-latency", class: "latency", since: r.clock.now() },
      phaseChanges: 1,
      lacks: [],
    }),
    config: r.config,
    loadConfig: () => r.config,
    version: "test",
    stages: r.stages,
  });
}
