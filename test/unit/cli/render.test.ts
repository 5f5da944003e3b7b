import { describe, expect, it } from "vitest";
import { ArgumentError, parseTunables } from "../../../src/cli/daemon-commands.ts";
import { renderHistory, renderPolicies, renderStatus } from "../../../src/cli/render.ts";
import { duration, plainLength, styleFor, table } from "../../../src/cli/style.ts";
import type { Status } from "../../../src/dbus/backend.ts";

const plain = styleFor({ isTTY: false });
const NOW = new Date(2026, 10, 25, 14, 30, 0).getTime();
const at = (h: number, m: number, s = 0) => new Date(2026, 10, 25, h, m, s).getTime();

const STATUS: Status = {
  version: "0.1.0",
  mode: "auto",
  schedExt: { state: "enabled", ops: "schedctl_batch" },
  activePolicy: {
    name: "batch",
    origin: "builtin",
    hash: "3f2a9c1d".padEnd(64, "0"),
    tunables: { slice_us: 20000 },
    since: at(14, 28),
    state: "probation",
  },
  phase: { class: "throughput", signature: "thr-4c1a", since: at(14, 27, 30) },
  profile: {
    at: at(14, 29, 59),
    windowMs: 1000,
    features: {
      cpu_util: 0.92,
      runnable_per_cpu: 3.5,
      run_delay_per_cpu_time: 0.4,
      ctxsw_per_sec_per_cpu: 1200,
      psi_cpu_some: 0.31,
      psi_io_some: 0.01,
      psi_memory_some: 0,
      top_cgroup_share: 0.8,
      blocked_per_cpu: 0,
      forks_per_sec: 140,
    },
    class: "throughput",
    signature: "thr-4c1a",
    topCgroups: [{ path: "/system.slice/build.service", cpuShare: 0.8, psiCpuSome: 0.3, tasks: 42 }],
    topProcesses: [{ pid: 4242, comm: "cc1", cpuShare: 0.2 }],
    lacks: [],
  },
  lastDecisions: [
    {
      at: at(14, 27, 58),
      policy: "batch",
      chooser: "planner",
      rationale: "many runnable tasks",
      confidence: 0.82,
      outcome: "deployed",
    },
  ],
  llm: {
    provider: "anthropic",
    state: "idle",
    callsLeftHour: 5,
    callsLeftDay: 39,
    tokensLeftDay: 190000,
    spentUsdToday: 0.04,
  },
  startedAt: at(13, 0),
  samples: 5400,
};

describe("the status screen", () => {
  it("shows the kernel's state, the policy, the phase, the load and the budget, aligned", () => {
    expect(renderStatus(STATUS, plain, NOW)).toBe(
      [
        "● schedctld - sched_ext autopilot, mode auto",
        "    Kernel: sched_ext enabled, ops schedctl_batch",
        "    Policy: batch (builtin, 3f2a9c1d, slice_us=20000) probation since 14:28:00 (2min ago)",
        "     Phase: throughput, signature thr-4c1a, since 14:27:30 (2min ago)",
        "      Load: cpu 92%, 3.50 runnable/cpu, 1200 ctxsw/s/cpu, 140 forks/s",
        "  Pressure: cpu 31%, io 1%, memory 0%",
        "   Busiest: /system.slice/build.service 80%, cc1[4242] 20%",
        "       LLM: anthropic, idle; 5 calls left this hour, 39 today, 190000 tokens; $0.04 spent today",
        "    Daemon: version 0.1.0, 5400 samples, up 1h 30min",
        "",
        "Last decisions:",
        "  14:27:58  batch  planner  0.82  deployed  many runnable tasks",
        "",
      ].join("\n"),
    );
  });

  it("says plainly when nothing of ours runs and the kernel lacks sched_ext", () => {
    const text = renderStatus(
      {
        ...STATUS,
        schedExt: { state: "unsupported", ops: null },
        activePolicy: null,
        phase: null,
        profile: null,
        lastDecisions: [],
        llm: { ...STATUS.llm, provider: "none", state: "disabled" },
      },
      plain,
      NOW,
    );
    expect(text).toContain("    Kernel: no sched_ext in this kernel\n");
    expect(text).toContain("    Policy: none: the kernel's default scheduler runs\n");
    expect(text).toContain("     Phase: not known yet\n");
    expect(text).toContain("       LLM: not configured\n");
    expect(text).not.toContain("Last decisions");
  });

  it("shows the fleet: connected with its last sync, offline with what waits, off with why", () => {
    const fleet = {
      state: "connected" as const,
      summary:
        "connected to db:5432/schedctl as web-01 (7.3.4, amd epyc): 3 outcome(s), 1 quarantine(s) from 2 other host(s), 2 verified object(s); 4 sent",
      lastSyncAt: NOW - 30_000,
      outcomes: 3,
      quarantines: 1,
      hosts: 2,
      objects: 2,
      sent: 4,
      pending: 0,
    };
    const line = (f: Status["fleet"]) =>
      renderStatus({ ...STATUS, fleet: f }, plain, NOW)
        .split("\n")
        .find((l) => l.includes("Fleet:"));
    expect(line(fleet)).toMatch(/^ {5}Fleet: connected to db:5432\/schedctl .*; last sync \S+ \(30s ago\)$/);
    expect(
      line({
        ...fleet,
        state: "offline",
        summary: "offline (db:5432/schedctl: ECONNREFUSED); 1 outcome(s) to send when it is back",
      }),
    ).toMatch(
      /Fleet: offline \(db:5432\/schedctl: ECONNREFUSED\); 1 outcome\(s\) to send when it is back; last sync/,
    );
    expect(
      line({ ...fleet, state: "off", summary: "off: no [fleet] url configured (this host learns alone)" }),
    ).toBe("     Fleet: off: no [fleet] url configured (this host learns alone)");
    expect(line(undefined)).toBeUndefined();
  });

  it("is coloured on a terminal only, and never with NO_COLOR", () => {
    expect(renderStatus(STATUS, styleFor({ isTTY: true }, {}), NOW)).toContain("\x1b[32m●\x1b[0m");
    expect(renderStatus(STATUS, styleFor({ isTTY: true }, { NO_COLOR: "1" }), NOW)).not.toContain("\x1b[");
    expect(renderStatus(STATUS, styleFor({ isTTY: false }, {}), NOW)).not.toContain("\x1b[");
  });
});

describe("lists", () => {
  it("aligns the policy table and marks the active one", () => {
    const text = renderPolicies(
      [
        {
          name: "simple",
          origin: "builtin",
          summary: "global FIFO",
          workloads: ["idle"],
          tunables: {},
          minKernel: "6.12",
          verdict: "pass",
          active: false,
        },
        {
          name: "gen_lat",
          origin: "generated",
          summary: "latency first",
          workloads: ["latency", "mixed"],
          tunables: {},
          minKernel: "6.12",
          verdict: "unverified",
          active: true,
        },
      ],
      plain,
    );
    expect(text).toBe(
      [
        "   NAME     ORIGIN     VERDICT     WORKLOADS      SUMMARY",
        "   simple   builtin    pass        idle           global FIFO",
        "●  gen_lat  generated  unverified  latency,mixed  latency first",
        "",
      ].join("\n"),
    );
    const narrow = renderPolicies(
      [
        {
          name: "simple",
          origin: "builtin",
          summary: "global FIFO, a long way of saying it",
          workloads: ["idle"],
          tunables: {},
          minKernel: "6.12",
          verdict: "pass",
          active: false,
        },
      ],
      plain,
      50,
    );
    expect(narrow.split("\n")[1]).toBe("   simple  builtin  pass     idle       global FI…");
  });

  it("prints history newest first as given, or says there is none", () => {
    expect(renderHistory([], plain)).toBe("no history yet\n");
    const text = renderHistory(
      [{ at: at(14, 28), kind: "deploy", summary: "batch attached", policy: "batch" }],
      plain,
    );
    expect(text).toBe("TIME                 KIND    SUMMARY\n2026-11-25 14:28:00  deploy  batch attached\n");
  });
});

describe("helpers", () => {
  it("reads TUNABLE=VALUE as JSON where it can, text otherwise", () => {
    expect(parseTunables(["slice_us=5000", "fifo=true", "mode=lat", 'cgroups=["/a","/b"]'])).toEqual({
      slice_us: 5000,
      fifo: true,
      mode: "lat",
      cgroups: ["/a", "/b"],
    });
    expect(() => parseTunables(["slice_us"])).toThrow(ArgumentError);
    expect(() => parseTunables(['x={"a":1}'])).toThrow(
      /a value is a number, true\/false, text or \["a","b"\]/,
    );
  });

  it("formats durations and measures coloured text by what shows", () => {
    expect([
      duration(45_000),
      duration(12 * 60_000),
      duration(185 * 60_000),
      duration(3 * 86_400_000),
    ]).toEqual(["45s", "12min", "3h 5min", "3 days"]);
    expect(plainLength("\x1b[32mpass\x1b[0m")).toBe(4);
    expect(
      table([
        ["\x1b[1mA\x1b[0m", "x"],
        ["bbb", "y"],
      ]),
    ).toBe("\x1b[1mA\x1b[0m    x\nbbb  y");
  });
});

describe("hostile names on screen", () => {
  it("prints cgroup paths, comm, rationales and history as visible escapes, never raw", () => {
    const evil = "/hostile3/\x1b[2J\x1b[31mRED";
    const status: Status = {
      ...STATUS,
      profile: STATUS.profile && {
        ...STATUS.profile,
        topCgroups: [{ path: evil, cpuShare: 0.8, psiCpuSome: 0.3, tasks: 1 }],
        topProcesses: [{ pid: 7, comm: "\x1b]8;;x\x07ls", cpuShare: 0.5 }],
      },
    };
    const screen = renderStatus(status, plain, NOW);
    expect(screen).toContain("Busiest: /hostile3/\\x1b[2J\\x1b[31mRED 80%, \\x1b]8;;x\\x07ls[7] 50%");
    expect(screen).not.toContain("\x1b");
    const history = renderHistory([{ at: NOW, kind: "rollback", summary: "a\nb\u202ec" }], plain);
    expect(history).toContain("a\\x0ab\\u202ec");
    expect(history.split("\n")).toHaveLength(3);
  });
});
