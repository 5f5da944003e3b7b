import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { ManualClock } from "../../../src/host/clock.ts";
import { createHost } from "../../../src/host/host.ts";
import { createMemoryLogger } from "../../../src/log/logger.ts";
import { ObservePipeline, type PipelineStep } from "../../../src/observe/pipeline.ts";
import { HostSampler } from "../../../src/observe/sampler.ts";
import { blur } from "../../../src/observe/signature.ts";
import { readTrace, TraceWriter } from "../../../src/observe/trace.ts";
import type { Sample } from "../../../src/observe/types.ts";
import { writeCgroup, writeProcess, writeSystem } from "../../helpers/proc-tree.ts";
import { type SyntheticSpec, synthesize } from "../../helpers/synthetic.ts";
import { tempDir } from "../../helpers/tmp.ts";

const options = {
  window: { topCgroups: 5, topProcesses: 5 },
  detect: { threshold: 4, tolerance: 0.5, minDwell: 5, confirm: 2 },
};

const build = { "/system.slice/build.service": 0.9 };
const spec: SyntheticSpec = {
  cpus: 4,
  intervalMs: 1000,
  spikeRate: 0,
  phases: [
    { label: "idle", seconds: 60, util: 0.03, utilNoise: 0.3 },
    {
      label: "build",
      seconds: 60,
      util: 0.92,
      utilNoise: 0.05,
      running: 2.5,
      forks: 120,
      cgroups: build,
      comm: "cc1",
    },
    {
      label: "service",
      seconds: 60,
      util: 0.35,
      running: 0.5,
      ctxswPerCpu: 6000,
      cgroups: { "/system.slice/api.service": 0.8 },
    },
    { label: "io", seconds: 60, util: 0.15, psiIo: 0.4, blocked: 0.5 },
    {
      label: "build",
      seconds: 60,
      util: 0.92,
      utilNoise: 0.05,
      running: 2.5,
      forks: 120,
      cgroups: build,
      comm: "cc1",
    },
  ],
};

function replay(samples: Sample[]): PipelineStep[] {
  const pipeline = new ObservePipeline(options);
  return samples.flatMap((s) => {
    const step = pipeline.push(s);
    return step ? [step] : [];
  });
}

describe("ObservePipeline", () => {
  it("labels phases, and a recurring phase gets the same signature", () => {
    const { samples } = synthesize(spec, 5);
    const steps = replay(samples);
    const changes = steps.flatMap((s) => (s.change ? [s.change] : []));
    expect(changes.map((c) => c.to.class)).toEqual(["idle", "throughput", "latency", "io", "throughput"]);
    const [, firstBuild, , , secondBuild] = changes;
    expect(secondBuild!.to.signature).toBe(firstBuild!.to.signature);
    expect(new Set(changes.map((c) => c.to.signature)).size).toBe(4);
    // Within a phase the signature holds still while the phase's mean settles.
    const buildProfiles = steps.slice(65, 115).map((s) => s.profile.signature);
    expect(new Set(buildProfiles)).toEqual(new Set([firstBuild!.to.signature]));
    expect(firstBuild!.to.topCgroups[0]!.path).toBe("/system.slice/build.service");
    expect(firstBuild!.to.topProcesses[0]!.comm).toBe("cc1");
  });

  it("ends a phase when another cgroup takes the lead even if the totals stay alike", () => {
    const { samples } = synthesize(
      {
        cpus: 4,
        intervalMs: 1000,
        spikeRate: 0,
        phases: [
          { label: "a", seconds: 40, util: 0.8, cgroups: { "/jobs/a.scope": 0.9 } },
          { label: "b", seconds: 40, util: 0.8, cgroups: { "/jobs/b.scope": 0.9 } },
        ],
      },
      9,
    );
    const changes = replay(samples).flatMap((s) => (s.change?.from ? [s.change] : []));
    expect(changes).toHaveLength(1);
    expect(changes[0]!.at).toBeGreaterThanOrEqual(samples[40]!.at);
    expect(changes[0]!.at).toBeLessThanOrEqual(samples[43]!.at);
    expect(changes[0]!.from!.topCgroups[0]!.path).toBe("/jobs/a.scope");
    expect(changes[0]!.to.topCgroups[0]!.path).toBe("/jobs/b.scope");
    expect(changes[0]!.to.signature).not.toBe(changes[0]!.from!.signature);
  });

  it("blurs run-specific parts of cgroup names for the signature", () => {
    expect(blur("/user.slice/user-1000.slice/session-42.scope")).toBe(
      "/user.slice/user-#.slice/session-#.scope",
    );
    expect(blur("/system.slice/docker-4f2a9c0d1e3b5a7c9d.scope")).toBe("/system.slice/docker-*.scope");
  });

  it("gives the same profiles from a recorded trace as from the live host", () => {
    const root = tempDir();
    const clock = new ManualClock(1_700_000_000_000);
    const live: Sample[] = [];
    let sampler: HostSampler | undefined;
    for (let t = 0; t < 30; t++) {
      const busy = t < 15 ? 5 * t : 75 + 90 * (t - 15);
      writeSystem(root, {
        busy: [busy, busy],
        idle: [1000 + 100 * t - busy, 1000 + 100 * t - busy],
        ctxt: 100 * t,
        forks: t,
        running: t < 15 ? 1 : 3,
        blocked: 0,
        psi: { cpu: 1000 * t, io: 0, memory: 0 },
      });
      writeCgroup(root, "/", { usage: busy * 20_000 });
      writeCgroup(root, "/work", { usage: t < 15 ? 0 : busy * 18_000 });
      writeProcess(root, 77, "crunch", busy);
      sampler ??= new HostSampler(
        createHost(root),
        { cgroupRoots: ["/"], cgroupMaxDepth: 4, topProcesses: 3 },
        clock,
        createMemoryLogger(),
      );
      live.push(sampler.next());
      clock.advance(1000);
    }
    sampler?.close();
    expect(live[0]!.lacks).toEqual(["schedstat"]);
    const path = join(root, "trace.jsonl");
    const writer = new TraceWriter(path);
    for (const s of live) writer.write(s);
    writer.close();
    const { samples, problems } = readTrace(path);
    expect(problems).toEqual([]);
    const fromLive = replay(live);
    const fromTrace = replay(samples);
    expect(fromTrace).toEqual(fromLive);
    const changes = fromTrace.filter((s) => s.change?.from);
    expect(changes).toHaveLength(1);
    expect(changes[0]!.profile.topCgroups[0]!.path).toBe("/work");
  });
});
