import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { gzipSync } from "node:zlib";
import { describe, expect, it } from "vitest";
import { parseTrace, readTrace, TraceError, TraceWriter } from "../../../src/observe/trace.ts";
import type { Sample } from "../../../src/observe/types.ts";
import { tempDir } from "../../helpers/tmp.ts";

function sample(mono: number): Sample {
  return {
    at: 1_700_000_000_000 + mono,
    mono,
    cpus: 2,
    hz: 100,
    stat: {
      cpu: { busy: mono, idle: 10 * mono, iowait: 0 },
      perCpu: [],
      ctxt: mono,
      forks: 1,
      running: 1,
      blocked: 0,
    },
    cgroups: [{ path: "/", usageUs: mono * 10, userUs: 0, systemUs: 0 }],
    full: mono === 1000,
    removed: [],
    processes: [{ pid: 1, comm: "init", cpuTicks: 5, intervalTicks: 1, start: 1 }],
    lacks: ["schedstat"],
  };
}

describe("traces", () => {
  it("round-trips samples through a file, plain or gzipped", () => {
    const dir = tempDir();
    const path = join(dir, "t.jsonl");
    const writer = new TraceWriter(path);
    const samples = [sample(1000), sample(2000), sample(3000)];
    for (const s of samples) writer.write(s);
    writer.close();
    expect(readTrace(path)).toEqual({ samples, problems: [] });
    writeFileSync(`${path}.gz`, gzipSync(readFileSync(path)));
    expect(readTrace(`${path}.gz`).samples).toEqual(samples);
  });

  it("skips a truncated last line and says the recording was cut off", () => {
    const text = `${JSON.stringify(sample(1000))}\n${JSON.stringify(sample(2000)).slice(0, 40)}`;
    const { samples, problems } = parseTrace(text);
    expect(samples).toHaveLength(1);
    expect(problems).toEqual([
      { line: 2, message: "truncated last line (the recording was cut off mid-write)" },
    ]);
  });

  it("names the line and the field of corrupt or invalid lines, and keeps the good ones", () => {
    const bad = { ...sample(3000), cpus: "two" };
    const text = [
      JSON.stringify(sample(1000)),
      "{not json",
      JSON.stringify(bad),
      JSON.stringify(sample(2000)),
      JSON.stringify(sample(1500)),
      "",
    ].join("\n");
    const { samples, problems } = parseTrace(text);
    expect(samples.map((s) => s.mono)).toEqual([1000, 2000]);
    expect(problems.map((p) => p.line)).toEqual([2, 3, 5]);
    expect(problems[0]!.message).toMatch(/^not valid JSON/);
    expect(problems[1]!.message).toMatch(/^not a sample: cpus: /);
    expect(problems[2]!.message).toBe("time goes backwards (mono 1500 <= 2000)");
  });

  it("refuses a file it cannot read with the path in the message", () => {
    expect(() => readTrace(join(tempDir(), "missing.jsonl"))).toThrow(TraceError);
    expect(() => readTrace("/nonexistent/t.jsonl")).toThrow(/\/nonexistent\/t.jsonl: cannot read the trace/);
  });
});
