import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import Database from "better-sqlite3";
import { afterEach, describe, expect, it, vi } from "vitest";
import { defaultConfig } from "../../../src/config/schema.ts";
import { DaemonLoop, type LoopHandler } from "../../../src/daemon/loop.ts";
import { main } from "../../../src/daemon/main.ts";
import { pipelineOptions, samplerOptions } from "../../../src/daemon/options.ts";
import { ManualClock } from "../../../src/host/clock.ts";
import { createHost } from "../../../src/host/host.ts";
import { createMemoryLogger, type MemoryLogger } from "../../../src/log/logger.ts";
import { ObservePipeline } from "../../../src/observe/pipeline.ts";
import { HostSampler, type SampleSource } from "../../../src/observe/sampler.ts";
import { TraceSource } from "../../../src/observe/trace.ts";
import type { PhaseChange } from "../../../src/observe/types.ts";
import { openDb } from "../../../src/store/db.ts";
import { SqliteObservationStore } from "../../../src/store/samples.ts";
import { ALL_MIGRATIONS } from "../../../src/store/store.ts";
import { V1_ONLY_MOUNTINFO, writeSystem } from "../../helpers/proc-tree.ts";
import { synthesize } from "../../helpers/synthetic.ts";
import { tempDir } from "../../helpers/tmp.ts";

const config = defaultConfig();
const trace = synthesize(
  {
    cpus: 2,
    intervalMs: 1000,
    spikeRate: 0,
    phases: [
      { label: "idle", seconds: 40, util: 0.03 },
      { label: "build", seconds: 40, util: 0.95, running: 2, forks: 100, cgroups: { "/build.slice": 0.9 } },
    ],
  },
  3,
).samples;

function loopOver(handlers: LoopHandler[] = [], ringSize = 50) {
  const db = openDb(":memory:", ALL_MIGRATIONS);
  const store = new SqliteObservationStore(db, ringSize);
  const log = createMemoryLogger();
  const loop = new DaemonLoop({
    clock: new ManualClock(0),
    source: new TraceSource(trace),
    pipeline: new ObservePipeline(pipelineOptions(config)),
    store,
    log,
    intervalMs: 0,
    handlers,
  });
  return { loop, store, log, db };
}

/** A loop over a source (made with the loop's clock), ticked twice one interval apart. */
async function twoTicks(source: (clock: ManualClock) => SampleSource, log: MemoryLogger) {
  const clock = new ManualClock(0);
  const loop = new DaemonLoop({
    clock,
    source: source(clock),
    pipeline: new ObservePipeline(pipelineOptions(config)),
    store: undefined,
    log,
    intervalMs: 1000,
  });
  await loop.tick();
  clock.advance(1000);
  await loop.tick();
  return loop;
}

afterEach(() => vi.restoreAllMocks());

describe("DaemonLoop", () => {
  it("runs a trace to its end: stores samples in the ring and phases, logs them, feeds the handlers", async () => {
    const seen: PhaseChange[] = [];
    let profiles = 0;
    const { loop, store, log, db } = loopOver([
      { name: "recorder", onProfile: () => void profiles++, onPhaseChange: (c) => void seen.push(c) },
    ]);
    await loop.run();
    expect(loop.state.ticks).toBe(trace.length);
    expect(profiles).toBe(trace.length - 1);
    expect(seen.map((c) => c.to.class)).toEqual(["idle", "throughput"]);
    // A young phase's signature may settle as its mean does (a debug record says so); the phase goes on.
    const settled = log.records.filter((r) => r.fields.event === "phase-signature").map((r) => r.fields.to);
    expect(loop.state.phase).toMatchObject({
      class: "throughput",
      signature: settled.at(-1) ?? seen[1]!.to.signature,
      since: seen[1]!.at,
    });
    expect(store.sampleCount()).toBe(50);
    expect(store.recentPhaseChanges(10).map((c) => c.to.signature)).toEqual(
      seen.map((c) => c.to.signature).reverse(),
    );
    const phaseLogs = log.records.filter((r) => r.fields.event === "phase");
    expect(phaseLogs.map((r) => r.message)).toEqual([
      `first phase: ${seen[0]!.to.signature}`,
      `phase change: ${seen[0]!.to.signature} -> ${seen[1]!.to.signature}`,
    ]);
    expect((phaseLogs[1]!.fields.topCgroups as string[])[0]).toMatch(/^\/build.slice (89|90)%$/);
    expect(log.records.some((r) => r.fields.event === "profile" && r.level === "info")).toBe(true);
    db.close();
  });

  it("applies a posted job result at the start of the next tick, inside the loop", async () => {
    const order: string[] = [];
    const { loop, db } = loopOver([
      {
        name: "slow-stage",
        onPhaseChange: (_c, context) => {
          order.push(`change@${context.state.ticks}`);
          Promise.resolve().then(() =>
            context.post("slow-stage", () => void order.push(`result@${loop.state.ticks}`)),
          );
        },
      },
    ]);
    await loop.tick();
    await loop.tick();
    expect(order).toEqual(["change@2"]);
    await loop.tick();
    expect(order).toEqual(["change@2", "result@2"]);
    db.close();
  });

  it("goes on when a handler throws or the store fails, and says so once", async () => {
    const { loop, log, db } = loopOver([
      {
        name: "broken",
        onPhaseChange: () => {
          throw new Error("boom");
        },
      },
    ]);
    db.close(); // every write now fails
    await loop.run();
    expect(loop.state.ticks).toBe(trace.length);
    const errors = log.records.filter((r) => r.level === "error").map((r) => r.message);
    expect(errors.filter((m) => m.startsWith("cannot store the sample"))).toHaveLength(1);
    expect(errors.filter((m) => m === "broken failed: boom")).toHaveLength(2);
  });

  it("on a cgroup-v1-only host without PSI, samples what it can and logs exactly what it lacks", async () => {
    const root = tempDir();
    writeSystem(
      root,
      { busy: [1, 1], idle: [9, 9], ctxt: 5, forks: 5, running: 1, blocked: 0 },
      V1_ONLY_MOUNTINFO,
    );
    const log = createMemoryLogger();
    const loop = await twoTicks(
      (clock) => new HostSampler(createHost(root), samplerOptions(config), clock, log),
      log,
    );
    expect(loop.state.lacks.sort()).toEqual(["cgroup2", "psi", "schedstat"]);
    const warnings = log.records.filter((r) => r.level === "warn").map((r) => r.message);
    expect(warnings).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/^lacking cgroup2: only cgroup v1 is mounted/),
        expect.stringMatching(/^lacking psi: \/proc\/pressure is missing/),
        expect.stringMatching(
          /^lacking schedstat: \/proc\/schedstat is absent \(kernel without CONFIG_SCHEDSTATS/,
        ),
      ]),
    );
    expect(loop.state.profile?.lacks).toEqual(["cgroup2", "psi", "schedstat"]);
  });

  it("says whether schedstat is absent or present but unreadable, live (with the error code) and in replay", async () => {
    const schedstatWarnings = async (source: (clock: ManualClock) => SampleSource, log: MemoryLogger) => {
      await twoTicks(source, log);
      return log.records
        .filter((r) => r.level === "warn" && r.message.startsWith("lacking schedstat"))
        .map((r) => r.message);
    };
    const root = tempDir();
    writeSystem(root, { busy: [1, 1], idle: [9, 9], ctxt: 5, forks: 5, running: 1, blocked: 0 });
    mkdirSync(join(root, "proc/schedstat")); // present, but reading it fails (EISDIR)
    const liveLog = createMemoryLogger();
    const live = (clock: ManualClock) =>
      new HostSampler(createHost(root), samplerOptions(config), clock, liveLog);
    expect(await schedstatWarnings(live, liveLog)).toEqual([
      expect.stringMatching(/^lacking schedstat: \/proc\/schedstat is present but cannot read \(EISDIR\)/),
    ]);
    const recorded = trace.slice(0, 2);
    const absent = recorded.map((s) => ({
      ...s,
      lacks: ["schedstat"],
      schedstat: { source: "tasks" as const, runDelayNs: 0, runNs: 0, timeslices: 0 },
    }));
    const unreadable = recorded.map(({ schedstat: _, ...s }) => ({ ...s, lacks: ["schedstat"] }));
    expect(await schedstatWarnings(() => new TraceSource(absent), createMemoryLogger())).toEqual([
      expect.stringMatching(
        /^lacking schedstat: \/proc\/schedstat was absent on the recorded host \(kernel without CONFIG_SCHEDSTATS/,
      ),
    ]);
    expect(await schedstatWarnings(() => new TraceSource(unreadable), createMemoryLogger())).toEqual([
      expect.stringMatching(
        /^lacking schedstat: \/proc\/schedstat was present on the recorded host but could not be read/,
      ),
    ]);
  });
});

describe("schedctld main", () => {
  it("refuses an invalid config value naming the file, the key and what was expected", async () => {
    const dir = tempDir();
    writeFileSync(join(dir, "schedctl.toml"), "[detect]\nconfirm_samples = 0\n");
    const stderr = vi.spyOn(process.stderr, "write").mockImplementation(() => true);
    expect(await main(["--foreground", "--config", dir])).toBe(78);
    const said = stderr.mock.calls.map((c) => String(c[0])).join("");
    expect(said).toContain(`${join(dir, "schedctl.toml")}:2:1: detect.confirm_samples:`);
    expect(said).toMatch(/>=1/);
  });

  it("asks for --foreground and explains the options", async () => {
    const stderr = vi.spyOn(process.stderr, "write").mockImplementation(() => true);
    expect(await main(["--observe-only"])).toBe(2);
    expect(String(stderr.mock.calls[0]![0])).toMatch(
      /runs in the foreground only: pass --foreground\nusage: schedctld/,
    );
  });

  it("replays a trace with a corrupt line into the state database and stops at its end", async () => {
    const dir = tempDir();
    writeFileSync(join(dir, "schedctl.toml"), '[daemon]\nlog_level = "fatal"\n[observe]\nring_size = 20\n');
    const tracePath = join(dir, "t.jsonl");
    const lines = trace.map((s) => JSON.stringify(s));
    lines.splice(10, 0, "{corrupt");
    writeFileSync(tracePath, `${lines.join("\n")}\n`);
    const state = join(dir, "state");
    expect(
      await main([
        "--foreground",
        "--observe-only",
        "--config",
        dir,
        "--state-dir",
        state,
        "--replay",
        tracePath,
      ]),
    ).toBe(0);
    const db = new Database(join(state, "state.db"), { readonly: true });
    expect(db.prepare("SELECT count(*) AS n FROM samples").get()).toEqual({ n: 20 });
    expect(db.prepare("SELECT class FROM phase_changes ORDER BY id").all()).toEqual([
      { class: "idle" },
      { class: "throughput" },
    ]);
    db.close();
  });
});
