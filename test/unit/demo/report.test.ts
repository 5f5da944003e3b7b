import { describe, expect, it } from "vitest";
import { buildDay } from "../../../src/demo/day.ts";
import { BUILTIN_DAY, loadDayFile } from "../../../src/demo/day-file.ts";
import { type DayEvent, parseConsole, parseConsoleLine } from "../../../src/demo/events.ts";
import { collectRuns, mainPolicy, median, policyTimeline } from "../../../src/demo/kpi.ts";
import {
  buildReport,
  finalLine,
  formatLlmCalls,
  formatTable,
  judge,
  noiseBand,
} from "../../../src/demo/report.ts";

// A day as the guest prints it: the built-in day's first two phases (idle, latency) per run,
// rounds with wakelat's report as their output, the kernel's scheduler changes and the daemon's
// log lines.
function consoleOf(
  runs: {
    mode: string;
    p50: number[];
    p99: number[];
    policyAt?: number;
    ops?: string;
    rollback?: boolean;
    llmCalls?: number;
  }[],
): string {
  const lines: string[] = [];
  const r = (v: object) => lines.push(`SCHEDCTL-RESULT ${JSON.stringify(v)}`);
  let t = 10;
  r({ load: "kernel", t, state: "disabled", ops: "" });
  runs.forEach((run, i) => {
    r({ load: "day", event: "run-start", run: i, mode: run.mode, t: t++ });
    r({ load: "day", event: "phase-start", run: i, phase: 0, name: "idle", t: t });
    t += 5;
    r({ load: "day", event: "phase-end", run: i, phase: 0, name: "idle", t });
    const start = t;
    r({ load: "day", event: "phase-start", run: i, phase: 1, name: "latency", t });
    if (run.policyAt !== undefined) {
      lines.push(
        `SCHEDCTLD ${i} ${start + run.policyAt - 0.5} {"level":30,"SCHEDCTL_EVENT":"deploy","msg":"Deployed policy latency (probation)"}`,
      );
      r({ load: "kernel", t: start + run.policyAt, state: "enabled", ops: run.ops ?? "schedctl_latency" });
    }
    for (let c = 0; c < (run.llmCalls ?? 0); c++)
      lines.push(
        `SCHEDCTLD ${i} ${start + 1 + c * 0.1} {"level":30,"SCHEDCTL_EVENT":"llm-consultation","msg":"Consulted openai/scripted-rules: goal ok"}`,
      );
    if (run.rollback)
      lines.push(`SCHEDCTLD ${i} ${start + 9} {"level":40,"SCHEDCTL_EVENT":"rollback","msg":"Rolled back"}`);
    run.p99.forEach((p99, k) => {
      const report = { load: "wakelat", p50_us: run.p50[k], p99_us: p99, rps: 400 };
      r({
        load: "round",
        run: i,
        phase: 1,
        unit: "system.slice/api.service",
        start: t,
        end: t + 5,
        status: 0,
        out: Buffer.from(`SCHEDCTL-RESULT ${JSON.stringify(report)}\n`).toString("base64"),
      });
      t += 5;
    });
    r({ load: "day", event: "phase-end", run: i, phase: 1, name: "latency", t });
    if (run.policyAt !== undefined) r({ load: "kernel", t: t + 0.1, state: "disabled", ops: "" });
    r({ load: "store", run: i, kernel: { state: "disabled", ops: "" }, phases: [], deployments: [] });
    r({ load: "day", event: "run-end", run: i, t: t + 1 });
    t += 2;
  });
  return ["boot noise", "[  1.0] some kernel line", ...lines].join("\n");
}

describe("events", () => {
  it("parses marks, rounds, kernel changes and daemon lines, and skips what does not fit", () => {
    expect(parseConsoleLine("random")).toBeUndefined();
    expect(parseConsoleLine('SCHEDCTL-RESULT {"load":"day","event":"nonsense","t":1}')).toBeUndefined();
    expect(parseConsoleLine("SCHEDCTL-RESULT {broken")).toBeUndefined();
    // A load's own report outside a round is not a round.
    expect(
      parseConsoleLine('SCHEDCTL-RESULT {"load":"wakelat","p50_us":1,"p99_us":2,"rps":3}'),
    ).toBeUndefined();
    expect(
      parseConsoleLine(
        `SCHEDCTL-RESULT {"load":"round","run":0,"phase":1,"unit":"u","start":1,"end":2,"status":0,"out":"${Buffer.from("hi\n").toString("base64")}"}`,
      ),
    ).toMatchObject({ kind: "round", round: { output: "hi\n", status: 0 } });
    const daemon = parseConsoleLine(
      'SCHEDCTLD 3 12.5 {"level":30,"event":"phase","class":"latency","msg":"phase change: a -> b"}',
    );
    expect(daemon).toMatchObject({
      kind: "daemon",
      run: 3,
      t: 12.5,
      event: "phase",
      msg: "phase change: a -> b",
    });
    const journal = parseConsoleLine(
      'SCHEDCTLD 0 1 {"level":40,"SCHEDCTL_EVENT":"rollback","msg":"Rolled back"}',
    );
    expect(journal).toMatchObject({ event: "rollback", level: 40 });
    // A kernel message spliced into the middle of a line still leaves the marker readable.
    expect(
      parseConsoleLine(
        '[ 3.2] x SCHEDCTL-RESULT {"load":"kernel","t":3,"state":"enabled","ops":"schedctl_fifo"}',
      ),
    ).toMatchObject({
      kind: "kernel",
    });
  });
});

describe("KPIs and the report", () => {
  const text = consoleOf([
    { mode: "baseline", p50: [1000, 1100, 900], p99: [6000, 8000, 7000] },
    { mode: "day1", p50: [500, 200, 200], p99: [6000, 4000, 4000], policyAt: 4, rollback: true, llmCalls: 2 },
    { mode: "learned", p50: [100, 100, 120], p99: [3000, 3500, 3000], policyAt: 2 },
    { mode: "baseline", p50: [1000, 1000, 1000], p99: [9000, 9000, 9000] },
    { mode: "learned", p50: [110, 100, 100], p99: [3000, 3000, 3200], policyAt: 3 },
    { mode: "baseline", p50: [1200, 1200, 1200], p99: [5000, 5000, 5000] },
    { mode: "learned", p50: [100, 90, 100], p99: [20000, 20000, 20000], policyAt: 2 },
  ]);
  const events: DayEvent[] = parseConsole(text);
  const file = loadDayFile(BUILTIN_DAY);
  const day = buildDay(file, { seed: 1, phaseSeconds: 15, short: true });
  const runs = collectRuns(events, day);

  it("collects each run's phases, medians over rounds, the policies in place and the time to adapt", () => {
    expect(runs.map((r) => r.mode)).toEqual([
      "baseline",
      "day1",
      "learned",
      "baseline",
      "learned",
      "baseline",
      "learned",
    ]);
    const latency = runs[2]!.phases[1]!;
    expect(latency.kpis).toMatchObject({ p50_us: 100, p99_us: 3000, rps: 400 });
    expect(latency.adaptS).toBeCloseTo(2);
    expect(mainPolicy(latency)).toBe("schedctl_latency");
    expect(mainPolicy(runs[0]!.phases[1]!)).toBe("default");
    expect(runs[0]!.phases[1]!.adaptS).toBeUndefined();
    expect(runs[1]!.store?.kernel.state).toBe("disabled");
  });

  it("compares medians with the default, with the default-against-itself band beside each ratio", () => {
    const report = buildReport(runs, day, file);
    const row = report.rows[0]!;
    // baseline p99 medians: 7000, 9000, 5000 -> 7000; learned: 3000, 3000, 20000 -> 3000.
    expect(row.name).toBe("latency");
    expect(row.kpi).toMatchObject({ metric: "p99_us", baseline: 7000, learned: 3000, day1: 4000 });
    expect(row.kpi.learnedRatio).toBeCloseTo(3000 / 7000);
    expect(row.kpi.band).toBeCloseTo(2000 / 7000);
    expect(row.verdict).toBe("better");
    expect(row.also[0]).toMatchObject({ metric: "p50_us" });
    expect(row.also[0]!.learnedRatio).toBeCloseTo(100 / 1000);
    expect(report.summary).toMatchObject({ regressions: 0, rollbacks: 1, adaptS: 2 });
    expect(report.summary.figures.find((f) => f.key === "noise_p99")!.value).toBeCloseTo(2000 / 7000);
    expect(finalLine(report, { mode: "multi", kernel: "7.3.4+deb13-cloud-amd64" })).toBe(
      "autopilot: latency_p50_ratio=0.10 latency_p99_ratio=0.43 build_ratio=na batch_ratio=na mixed_p99_ratio=na adapt_s=2.0 regressions=0 worst_ratio=0.43 rollbacks=1 noise_p99=0.29 mode=multi kernel=7.3.4+deb13-cloud-amd64",
    );
    const table = formatTable(report);
    expect(table).toMatch(/default x3, day 1 x1, learned day x3/);
    expect(table).toMatch(
      /latency\s+p99 us\s+7000\s+4000\s+0\.57\s+3000\s+0\.43\s+±29%\s+better\s+schedctl_latency/,
    );
  });

  it("counts the LLM calls of each phase: on day 1 at the first sight of it, none on the learned days", () => {
    expect(runs[1]!.phases.map((p) => p.llmCalls)).toEqual([0, 2]);
    expect(runs[2]!.phases.map((p) => p.llmCalls)).toEqual([0, 0]);
    const text = formatLlmCalls(runs);
    expect(text).toMatch(/^1\s+latency\s+first sight\s+2 \| 0$/m);
    expect(text.split("\n").at(-1)).toBe("llm: day1_calls=2 learned_calls=0 first_sight_calls=2");
  });

  it("calls a ratio inside the band a tie and one beyond it a regression", () => {
    expect(judge(1.2, 0.3)).toBe("tie");
    expect(judge(0.75, 0.3)).toBe("tie");
    expect(judge(1.31, 0.3)).toBe("worse");
    expect(judge(0.6, 0.3)).toBe("better");
    expect(judge(undefined, 0.3)).toBe("n/a");
    expect(noiseBand([10])).toBeUndefined();
    expect(noiseBand([8, 10, 13])).toBeCloseTo(0.3);
    expect(median([3, 1, 2, 10])).toBe(2.5);
  });

  it("joins consecutive kernel reports of one scheduler into one span", () => {
    const spans = policyTimeline(
      [
        { load: "kernel", t: 0, state: "disabled", ops: "" },
        { load: "kernel", t: 2, state: "enabled", ops: "schedctl_a" },
        { load: "kernel", t: 3, state: "enabled", ops: "schedctl_a" },
        { load: "kernel", t: 5, state: "disabling", ops: "schedctl_a" },
      ],
      9,
    );
    expect(spans).toEqual([
      { from: 0, to: 2, policy: "default" },
      { from: 2, to: 5, policy: "schedctl_a" },
      { from: 5, to: 9, policy: "default" },
    ]);
  });
});
