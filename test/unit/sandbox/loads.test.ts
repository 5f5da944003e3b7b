import { execFileSync, spawnSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ensureLoads, type LoadBinaries } from "../../../src/sandbox/loads.ts";
import { RESULT_MARKER } from "../../../src/sandbox/types.ts";

// The load generators run on any Linux; here on the host, briefly, to check what they report.
describe("load generators", () => {
  let loads: LoadBinaries;
  // One cache for the whole file (tempDir() would empty it after each test).
  const cache = mkdtempSync(join(tmpdir(), "schedctl-loads-"));
  beforeAll(async () => {
    loads = await ensureLoads(cache);
  }, 60_000);
  afterAll(() => rmSync(cache, { recursive: true, force: true }));

  const report = (name: string, args: string[]): Record<string, number | string | number[]> => {
    const out = execFileSync(loads[name]!, args, { encoding: "utf8" }).trim().split("\n");
    expect(out).toHaveLength(1);
    expect(out[0]!.startsWith(RESULT_MARKER)).toBe(true);
    return JSON.parse(out[0]!.slice(RESULT_MARKER.length));
  };

  it("are compiled once per source version", async () => {
    expect(Object.keys(loads).sort()).toEqual(["batchsim", "buildsim", "cpuhog", "wakelat"]);
    expect(await ensureLoads(cache)).toEqual(loads);
  });

  it("wakelat reports ordered latency percentiles and a request rate", () => {
    const r = report("wakelat", ["--seconds=1", "--workers=2", "--work-us=100", "--sleep-us=500"]);
    expect(r).toMatchObject({ load: "wakelat", workers: 2, work_us: 100 });
    expect(r.requests).toBeGreaterThan(0);
    expect(r.p50_us as number).toBeLessThanOrEqual(r.p90_us as number);
    expect(r.p90_us as number).toBeLessThanOrEqual(r.p99_us as number);
    expect(r.p99_us as number).toBeLessThanOrEqual(r.p999_us as number);
    expect(r.p999_us as number).toBeLessThanOrEqual(r.max_us as number);
  });

  it("buildsim runs every unit and reports the makespan", () => {
    const r = report("buildsim", ["--units=6", "--jobs=2", "--work-us=2000"]);
    expect(r).toMatchObject({ load: "buildsim", units: 6, jobs: 2, failed: 0 });
    // six units of at least 1 ms of CPU each, two at a time
    expect(r.makespan_ms as number).toBeGreaterThanOrEqual(3);
  });

  it("batchsim reports the mean completion time of 39 short tasks and a long one", () => {
    const r = report("batchsim", ["--short-ms=2", "--long-ms=20"]);
    expect(r).toMatchObject({ load: "batchsim", tasks: 40 });
    expect(r.mean_completion_ms as number).toBeLessThanOrEqual(r.makespan_ms as number);
    expect(r.long_completion_ms as number).toBeGreaterThanOrEqual(20);
  });

  it("cpuhog counts each worker's progress", () => {
    const r = report("cpuhog", ["--workers=2", "--seconds=1"]);
    expect(r.units).toHaveLength(2);
    expect(r.min as number).toBeGreaterThan(0);
    expect(r.total).toBe((r.units as number[]).reduce((a, b) => a + b, 0));
  });

  it("refuse a malformed argument with a message", () => {
    const out = spawnSync(loads.wakelat!, ["--workers=many"], { encoding: "utf8" });
    expect(out.status).toBe(2);
    expect(out.stderr).toContain("bad value for --workers: many");
  });
});
