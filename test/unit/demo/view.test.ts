import { execFileSync } from "node:child_process";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { buildDay, buildSchedule } from "../../../src/demo/day.ts";
import { BUILTIN_DAY, loadDayFile } from "../../../src/demo/day-file.ts";
import { demo } from "../../../src/demo/demo.ts";
import { parseConsoleLine } from "../../../src/demo/events.ts";
import type { RunRecord } from "../../../src/demo/kpi.ts";
import { LiveView, storeAgreesWithKernel } from "../../../src/demo/live.ts";
import { assertReadyForDay, missingForDay, PreflightError } from "../../../src/demo/preflight.ts";
import { renderTimeline, timelineModel } from "../../../src/demo/timeline.ts";
import { which } from "../../../src/sandbox/exec.ts";
import { tempDir } from "../../helpers/tmp.ts";

function run(index: number, mode: RunRecord["mode"], policy: string, p99s: number[]): RunRecord {
  const base = 100 * index;
  return {
    index,
    mode,
    start: base,
    end: base + 60,
    daemon:
      mode === "baseline"
        ? []
        : [
            {
              kind: "daemon",
              run: index,
              t: base + 30,
              level: 40,
              msg: "Rolled back",
              event: "rollback",
              fields: {},
            },
          ],
    store: undefined,
    policies: [
      { from: base + 2, to: base + 15, policy: "default" },
      { from: base + 15, to: base + 42, policy },
    ],
    kernelAfterStop: "disabled",
    ejections: mode === "baseline" ? [] : [base + 28],
    phases: [
      {
        run: index,
        phase: 0,
        name: "idle",
        start: base + 2,
        end: base + 12,
        rounds: [],
        kpis: {},
        policies: [{ from: base + 2, to: base + 12, policy: "default" }],
        llmCalls: 0,
      },
      {
        run: index,
        phase: 1,
        name: "latency",
        start: base + 12,
        end: base + 42,
        rounds: p99s.map((p99, k) => ({
          run: index,
          phase: 1,
          unit: "system.slice/api.service",
          start: base + 12 + 5 * k,
          end: base + 17 + 5 * k,
          status: 0,
          output: "",
          figures: { p50_us: 100, p99_us: p99, rps: 300 },
        })),
        kpis: {},
        policies: [
          { from: base + 12, to: base + 15, policy: "default" },
          { from: base + 15, to: base + 42, policy },
        ],
        llmCalls: mode === "day1" ? 2 : 0,
      },
    ],
  };
}

describe("the timeline picture", () => {
  const model = timelineModel(
    run(0, "baseline", "default", [7000, 8000, 6000]),
    run(1, "learned", "schedctl_latency", [3000, 2500, 40000]),
    "kernel 7.3.4 under qemu TCG",
    { of: "latency", metric: "p99_us", label: "p99 us", better: "lower", phases: new Set([1]) },
    new Set([0]),
  );

  it("lays both runs on one time axis from their first phase", () => {
    expect(model.duration).toBe(40);
    expect(model.phases.map((p) => [p.name, p.from, p.to])).toEqual([
      ["idle", 0, 10],
      ["latency", 10, 40],
    ]);
    expect(model.lanes[1]!.spans.at(-1)).toEqual({ from: 13, to: 40, policy: "schedctl_latency" });
    expect(model.lanes[1]!.markers.map((m) => m.label).sort()).toEqual(["ejected", "rollback"]);
    expect(model.series[1]!.points).toEqual([
      { t: 15, value: 3 },
      { t: 20, value: 2.5 },
      { t: 25, value: 40 },
    ]);
  });

  it("renders SVG with the phases, the policies, both latency series and a legend", () => {
    const svg = renderTimeline({ ...model, title: "a <day> & more" });
    expect(svg.startsWith('<svg xmlns="http://www.w3.org/2000/svg"')).toBe(true);
    expect(svg).toContain("a &lt;day&gt; &amp; more");
    expect(svg).toContain(">latency</text>");
    expect(svg).toContain(">kernel default</text>");
    expect(svg.match(/<circle cx=/g)!.length).toBe(6 + 2);
    expect(svg).toContain("latency p99, autopilot");
    expect(svg).toContain(">latency p99 (log)</text>");
    expect(svg).toContain(">latency</text>");
    // Decades on the log axis span the values: 2.5 ms .. 40 ms -> 1 .. 100 ms.
    expect(svg).toContain(">1 ms</text>");
    expect(svg).toContain(">100 ms</text>");
  });

  it.skipIf(!which("rsvg-convert"))("is an image rsvg-convert can draw", () => {
    const dir = tempDir();
    writeFileSync(join(dir, "t.svg"), renderTimeline(model));
    execFileSync("rsvg-convert", ["-o", join(dir, "t.png"), join(dir, "t.svg")]);
    const png = execFileSync("head", ["-c", "8", join(dir, "t.png")]);
    expect(png.subarray(1, 4).toString()).toBe("PNG");
  });
});

describe("the live view", () => {
  const day = buildDay(loadDayFile(BUILTIN_DAY), { seed: 1, phaseSeconds: 20, short: true });
  const view = new LiveView(day, buildSchedule(1));
  const feed = (line: string) => view.push(parseConsoleLine(line)!);

  it("shows the run, the phase, the policy in place, the KPI and each decision as it happens", () => {
    expect(feed('SCHEDCTL-RESULT {"load":"day","event":"run-start","run":1,"mode":"day1","t":50}')).toEqual([
      "── run 2/3: autopilot, day 1 (empty store)",
    ]);
    expect(
      feed(
        'SCHEDCTL-RESULT {"load":"day","event":"phase-start","run":1,"phase":1,"name":"latency","t":60}',
      )[0],
    ).toMatch(/\[\s+60\.0s\] phase 2\/5: latency/);
    expect(
      feed(
        'SCHEDCTLD 1 63.2 {"level":30,"event":"phase","class":"latency","to":"latency-abc","msg":"phase change"}',
      )[0],
    ).toBe("[  63.2s] schedctld: phase change -> latency (latency-abc)");
    expect(
      feed(
        'SCHEDCTLD 1 64 {"level":30,"SCHEDCTL_EVENT":"decision","msg":"Chose policy latency (planner, confidence 0.80): wakes often"}',
      )[0],
    ).toMatch(/schedctld: Chose policy latency/);
    expect(feed('SCHEDCTLD 1 64.5 {"level":30,"event":"profile","msg":"profile"}')).toEqual([]);
    expect(
      feed('SCHEDCTL-RESULT {"load":"kernel","t":66,"state":"enabled","ops":"schedctl_latency"}')[0],
    ).toMatch(/kernel: now schedctl_latency/);
    const report = 'SCHEDCTL-RESULT {"load":"wakelat","p50_us":150,"p99_us":4200,"rps":310}\n';
    feed(
      `SCHEDCTL-RESULT {"load":"round","run":1,"phase":1,"unit":"u","start":66,"end":71,"status":0,"out":"${Buffer.from(report).toString("base64")}"}`,
    );
    const status = view.render();
    expect(status[0]).toMatch(/^\[#+-+\] run 2\/3 autopilot, day 1/);
    expect(status[1]).toMatch(/phase\s+2\/5 latency, 6\/20 s\s+\(schedctld sees: latency\)/);
    expect(status[2]).toBe("policy  schedctl_latency");
    expect(status[3]).toBe("KPI     latency: p99 us 4200, p50 us 150");
  });

  it("checks that the store and the kernel name the same scheduler", () => {
    const kernel = { state: "enabled", ops: "schedctl_latency" };
    const dump = { load: "store" as const, run: 1, kernel, phases: [], deployments: [] };
    expect(
      storeAgreesWithKernel({
        ...dump,
        controller: { phase: "active", policy: "latency", opsName: "schedctl_latency" },
      }),
    ).toBe(true);
    expect(
      storeAgreesWithKernel({
        ...dump,
        controller: { phase: "active", policy: "fifo", opsName: "schedctl_fifo" },
      }),
    ).toBe(false);
    expect(
      storeAgreesWithKernel({
        ...dump,
        kernel: { state: "disabled", ops: "" },
        controller: { phase: "idle", policy: null, opsName: null },
      }),
    ).toBe(true);
    expect(
      storeAgreesWithKernel({ ...dump, controller: { phase: "idle", policy: null, opsName: null } }),
    ).toBe(false);
  });
});

describe("what the day needs", () => {
  it("names qemu and the kernel, each with the command that gets it", () => {
    const cacheDir = tempDir();
    const missing = missingForDay({ cacheDir, path: "/nonexistent" });
    expect(missing.map((m) => m.what)).toEqual([
      "qemu-system-x86_64 is not on PATH (the day runs in a sched_ext VM under qemu)",
      `no sched_ext kernel is cached in ${cacheDir}/kernel`,
    ]);
    expect(missing[0]!.command).toMatch(/apt-get install qemu-system-x86/);
    expect(missing[1]!.command).toBe(
      `SCHEDCTL_CACHE_DIR=${cacheDir} scripts/run node src/sandbox/prepare.ts   (or: sudo scripts/setup.sh)`,
    );
    expect(() => assertReadyForDay({ cacheDir, path: "/nonexistent" })).toThrow(PreflightError);
    expect(() => assertReadyForDay({ cacheDir, path: "/nonexistent" })).toThrow(
      /get it with: sudo apt-get install qemu-system-x86/,
    );
  });

  it("accepts a complete cached kernel and a qemu on PATH, and ignores half-fetched ones", () => {
    const cacheDir = tempDir();
    const bin = join(cacheDir, "bin");
    mkdirSync(bin);
    writeFileSync(join(bin, "qemu-system-x86_64"), "#!/bin/sh\n", { mode: 0o755 });
    const kernel = join(cacheDir, "kernel", "7.3.4+deb13-cloud-amd64");
    mkdirSync(kernel, { recursive: true });
    for (const f of ["vmlinuz", "vmlinux", "vmlinux.h"]) writeFileSync(join(kernel, f), "x");
    expect(missingForDay({ cacheDir, path: bin }).map((m) => m.what)).toEqual([
      `no sched_ext kernel is cached in ${cacheDir}/kernel`,
    ]);
    writeFileSync(join(kernel, "config"), "CONFIG_SCHED_CLASS_EXT=y\n");
    expect(missingForDay({ cacheDir, path: bin })).toEqual([]);
  });
});

describe("schedctl demo", () => {
  const capture = () => {
    let text = "";
    const write = (s: string) => {
      text += s;
      return true;
    };
    const stream = { write } as unknown as NodeJS.WritableStream;
    return { stream, text: () => text };
  };

  it("stops before booting when the kernel is not cached, naming it and the command that gets it", async () => {
    const cacheDir = tempDir();
    const out = capture();
    const err = capture();
    const status = await demo(["--cache-dir", cacheDir], { out: out.stream, err: err.stream });
    expect(status).toBe(3);
    expect(err.text()).toContain(`no sched_ext kernel is cached in ${cacheDir}/kernel`);
    expect(err.text()).toContain("get it with: SCHEDCTL_CACHE_DIR=");
  });

  it("refuses a bad day file before anything else, even before looking for the kernel", async () => {
    const dir = tempDir();
    writeFileSync(
      join(dir, "day.toml"),
      '[schedule]\norder = ["svc"]\n[phases.svc]\nunit = "a.slice"\nrun = "x"\n',
    );
    const err = capture();
    const status = await demo(["--day", join(dir, "day.toml"), "--cache-dir", tempDir()], {
      out: capture().stream,
      err: err.stream,
    });
    expect(status).toBe(2);
    expect(err.text()).toBe(
      `${join(dir, "day.toml")}: phase "svc": key kpi: expected the KPI read from each round of run\n`,
    );
  });

  it("refuses bad options with its usage", async () => {
    const err = capture();
    expect(await demo(["--phase-seconds", "2"], { out: capture().stream, err: err.stream })).toBe(2);
    expect(err.text()).toMatch(/--phase-seconds must be 10\.\.600/);
    expect(await demo(["--bogus"], { out: capture().stream, err: err.stream })).toBe(2);
    expect(err.text()).toMatch(/usage: schedctl demo/);
  });
});
