import { describe, expect, it } from "vitest";
import type { PhaseChange, Profile, Sample } from "../../../src/observe/types.ts";
import { openDb, StoreError } from "../../../src/store/db.ts";
import { SAMPLE_MIGRATIONS, SqliteObservationStore } from "../../../src/store/samples.ts";
import { ALL_MIGRATIONS } from "../../../src/store/store.ts";

function sample(mono: number): Sample {
  return {
    at: 1e12 + mono,
    mono,
    cpus: 1,
    hz: 100,
    cgroups: [],
    full: false,
    removed: [],
    processes: [],
    lacks: [],
  };
}

function profile(signature: string): Profile {
  return {
    at: 1e12,
    windowMs: 1000,
    features: {
      cpu_util: 0.5,
      runnable_per_cpu: 1,
      run_delay_per_cpu_time: 0,
      ctxsw_per_sec_per_cpu: 100,
      psi_cpu_some: 0,
      psi_io_some: 0,
      psi_memory_some: 0,
      top_cgroup_share: 0.9,
      blocked_per_cpu: 0,
      forks_per_sec: 1,
    },
    class: "throughput",
    signature,
    topCgroups: [{ path: "/build", cpuShare: 0.9, psiCpuSome: 0, tasks: 2 }],
    topProcesses: [{ pid: 4, comm: "cc1", cpuShare: 0.5 }],
    lacks: [],
  };
}

describe("SqliteObservationStore", () => {
  it("keeps samples in a bounded ring, oldest dropped first", () => {
    const db = openDb(":memory:", SAMPLE_MIGRATIONS);
    const store = new SqliteObservationStore(db, 10);
    for (let i = 1; i <= 25; i++) store.appendSample(sample(i * 1000));
    expect(store.sampleCount()).toBe(10);
    expect(store.recentSamples(3).map((s) => s.mono)).toEqual([23_000, 24_000, 25_000]);
    expect(store.recentSamples(100)[0]!.mono).toBe(16_000);
    db.close();
  });

  it("logs phase changes and finds earlier ones by signature", () => {
    const db = openDb(":memory:", ALL_MIGRATIONS);
    const store = new SqliteObservationStore(db, 100);
    const first: PhaseChange = { at: 1, to: profile("idle-1"), drift: 0, moved: [] };
    const second: PhaseChange = {
      at: 2,
      from: profile("idle-1"),
      to: profile("throughput-2"),
      drift: 12.5,
      moved: [{ feature: "cpu_util", from: 0.05, to: 0.9, score: 20 }],
    };
    store.recordPhaseChange(first);
    store.recordPhaseChange(second);
    store.recordPhaseChange({ ...second, at: 3 });
    expect(store.recentPhaseChanges(2).map((c) => c.at)).toEqual([3, 2]);
    expect(store.phaseChangesTo("throughput-2", 10)).toHaveLength(2);
    expect(store.phaseChangesTo("idle-1", 10)).toEqual([first]);
    db.close();
  });

  it("refuses a stored row that no longer parses, naming the table", () => {
    const db = openDb(":memory:", SAMPLE_MIGRATIONS);
    const store = new SqliteObservationStore(db, 10);
    db.prepare('INSERT INTO samples (at, record) VALUES (1, \'{"at": "soon"}\')').run();
    expect(() => store.recentSamples(1)).toThrow(StoreError);
    expect(() => store.recentSamples(1)).toThrow(/^samples: stored row does not parse/);
    db.close();
  });
});
