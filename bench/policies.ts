// The built-in policies against the kernel default, on third-party benchmarks, in one boot of
// the sched_ext sandbox VM. Under two CPU hogs (stress-ng): wake-up latency of SCHED_OTHER
// threads from cyclictest (no -p) and from two rt-app task sets (a service of short irregular
// bursts; requests of milliseconds). Then, alone: hackbench, perf bench sched messaging and
// pipe, and a batch of stress-ng jobs of mixed fixed work (mean completion time).
// Repetitions are interleaved (default, fifo, ..., default, fifo, ...) and each figure is a ratio
// to the default of the same repetition; the table shows the median ratio and the default's own
// spread. Emulated VM: ratios only.
//   npm run bench:policies      (BENCH_REPS=N repetitions; BENCH_POLICIES=latency,throughput for some only)
import { copyFileSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { gunzipSync } from "node:zlib";
import { z } from "zod";
import { builtinCatalogue } from "../src/policies/catalogue.ts";
import { PolicyCompiler } from "../src/policies/compile.ts";
import type { Tunables } from "../src/policies/types.ts";
import { defaultCacheDir, ensureSandboxKernel } from "../src/sandbox/kernel-image.ts";
import { defaultTcgThread } from "../src/sandbox/qemu.ts";
import { cyclictestArgs, cyclictestLatency, parseCyclictestJson } from "../src/sandbox/tools/cyclictest.ts";
import { hackbenchArgs, parseHackbench } from "../src/sandbox/tools/hackbench.ts";
import type { WakeupLatency } from "../src/sandbox/tools/latency.ts";
import { parsePerfBench, perfMessagingArgs, perfPipeArgs } from "../src/sandbox/tools/perf-bench.ts";
import { parseRtAppLogs, type RtAppTaskSet, rtAppConfig, rtAppFigures } from "../src/sandbox/tools/rt-app.ts";
import {
  BATCH_JOB_OPS,
  batchJobArgs,
  batchMeanCompletion,
  parseStressNgJob,
} from "../src/sandbox/tools/stress-ng-batch.ts";
import { RESULT_MARKER } from "../src/sandbox/types.ts";
import { createQemuSandbox } from "../src/sandbox/vm.ts";

const REPS = Number(process.env.BENCH_REPS ?? 3);
const LATENCY_SECONDS = 3;
const MAX_BOOTS = 4;
const RT_APP_SETS: RtAppTaskSet[] = ["service", "heavy"];
/** The latency benchmarks, each a wake-up latency distribution. */
const LATENCY = ["cyclictest", "rt-app service", "rt-app heavy"] as const;

/** What the guest sends for one (policy, rep): each tool's output, gzipped and base64. */
const GuestResult = z.object({
  policy: z.string(),
  rep: z.number().int().positive(),
  state: z.string(),
  outputs: z.record(z.string(), z.string()),
});

interface Figures {
  policy: string;
  rep: number;
  state: string;
  latency: Record<(typeof LATENCY)[number], WakeupLatency>;
  hackbenchS: number;
  messagingS: number;
  pipeUsPerOp: number;
  batchMeanS: number;
}

const cacheDir = defaultCacheDir();
const kernel = await ensureSandboxKernel({ cacheDir });
const mode = defaultTcgThread();
const compiler = new PolicyCompiler({
  cacheDir: join(cacheDir, "policies"),
  vmlinuxH: kernel.vmlinuxH,
  resolveCgroupId: () => 1n, // the guest's root cgroup: cgroup-boost boosts everything here
});
const work = mkdtempSync(join(tmpdir(), "schedctl-bench-"));
try {
  mkdirSync(join(work, "objects"));
  const policies: { name: string; opsName: string }[] = [];
  const only = process.env.BENCH_POLICIES?.split(",");
  for (const policy of builtinCatalogue().filter((p) => !only || only.includes(p.manifest.name))) {
    const tunables: Tunables = policy.manifest.name === "cgroup-boost" ? { cgroups: ["/"] } : {};
    const built = await compiler.compile(policy, tunables);
    copyFileSync(built.objectPath, join(work, "objects", `${policy.manifest.name}.bpf.o`));
    policies.push({ name: policy.manifest.name, opsName: built.opsName });
  }
  for (const set of RT_APP_SETS)
    writeFileSync(
      join(work, `rt-app-${set}.json`),
      rtAppConfig({ set, seconds: LATENCY_SECONDS, logDir: "/tmp/rt" }),
    );
  const order = ["default", ...policies.map((p) => p.name)];
  // A guest the emulator crashes (at a scheduler switch) loses only its unfinished measurements:
  // the next boot runs what is missing, in the same interleaved order.
  const figures: Figures[] = [];
  let reruns = -1;
  for (let boot = 1; boot <= MAX_BOOTS; boot++) {
    const todo = plan(order).filter((m) => !figures.some((f) => f.policy === m.policy && f.rep === m.rep));
    if (todo.length === 0) break;
    reruns++;
    writeFileSync(join(work, "bench.sh"), guestScript(todo, policies));
    const result = await createQemuSandbox({ cacheDir }).run({
      node: false,
      tools: true,
      timeoutMs: 3_600_000,
      script: "sh /bench/bench.sh",
      files: [{ guestPath: "/bench", hostPath: work }],
      onLine: (line) => {
        if (line.includes("BENCH-DONE"))
          process.stderr.write(`  ${line.slice(line.indexOf("BENCH-DONE"))}\n`);
      },
    });
    figures.push(...result.results.map((r) => figuresOf(GuestResult.parse(r))));
    if (!result.crashed && result.exitCode !== 0) {
      console.error(result.console.split("\n").slice(-40).join("\n"));
      throw new Error(`bench run failed (exit ${result.exitCode})`);
    }
  }
  if (figures.length !== order.length * REPS)
    throw new Error(`only ${figures.length} of ${order.length * REPS} measurements after ${MAX_BOOTS} boots`);
  // BENCH_FIGURES=FILE keeps every measurement's figures, to look into a result without a rerun.
  if (process.env.BENCH_FIGURES) writeFileSync(process.env.BENCH_FIGURES, JSON.stringify(figures, null, 1));
  report(order, figures, reruns);
} finally {
  rmSync(work, { recursive: true, force: true });
}

/** Every tool's output read by its own parser. */
function figuresOf(r: z.infer<typeof GuestResult>): Figures {
  const out = (name: string) => {
    const b64 = r.outputs[name];
    if (b64 === undefined) throw new Error(`${r.policy} rep ${r.rep}: no ${name} output`);
    return gunzipSync(Buffer.from(b64, "base64")).toString("utf8");
  };
  const rtApp = (set: RtAppTaskSet) => rtAppFigures(parseRtAppLogs(out(`rt-app-${set}`)));
  return {
    policy: r.policy,
    rep: r.rep,
    state: r.state,
    latency: {
      cyclictest: cyclictestLatency(parseCyclictestJson(out("cyclictest"))),
      "rt-app service": rtApp("service"),
      "rt-app heavy": rtApp("heavy"),
    },
    hackbenchS: parseHackbench(out("hackbench")),
    messagingS: parsePerfBench(out("messaging")).totalSeconds,
    pipeUsPerOp: parsePerfBench(out("pipe")).usecsPerOp ?? Number.NaN,
    batchMeanS: batchMeanCompletion(BATCH_JOB_OPS.map((_, i) => parseStressNgJob(out(`job${i}`)))),
  };
}

type Metric = (f: Figures) => number;
function geomean(xs: number[]): number {
  return Math.exp(xs.reduce((s, x) => s + Math.log(x), 0) / xs.length);
}

/** The geometric mean over every latency benchmark of the ratio to the same rep's default. */
function latencyRatio(key: "p50Us" | "p99Us"): (f: Figures, d: Figures) => number {
  return (f, d) =>
    geomean(LATENCY.map((b) => Math.max(1, f.latency[b][key]) / Math.max(1, d.latency[b][key])));
}

function report(order: string[], figures: Figures[], reruns: number): void {
  const get = (policy: string, rep: number) => figures.find((f) => f.policy === policy && f.rep === rep)!;
  const reps = Array.from({ length: REPS }, (_, i) => i + 1);
  const ratio = (policy: string, m: (f: Figures, d: Figures) => number) =>
    order.includes(policy) ? median(reps.map((rep) => m(get(policy, rep), get("default", rep)))) : Number.NaN;
  const simple = (metric: Metric) => (f: Figures, d: Figures) => metric(f) / metric(d);
  const columns: [string, (f: Figures, d: Figures) => number][] = [
    ["p50 wake-up", latencyRatio("p50Us")],
    ["p99 wake-up", latencyRatio("p99Us")],
    ...LATENCY.map((b): [string, (f: Figures, d: Figures) => number] => [
      `${b} p99`,
      simple((f) => Math.max(1, f.latency[b].p99Us)),
    ]),
    ["hackbench", simple((f) => f.hackbenchS)],
    ["messaging", simple((f) => f.messagingS)],
    ["pipe", simple((f) => f.pipeUsPerOp)],
    ["batch mean", simple((f) => f.batchMeanS)],
  ];
  // The default against itself: each rep's default as a ratio to the previous rep's.
  const band = columns.map(([, m]) => {
    const values = reps.slice(1).map((rep) => m(get("default", rep), get("default", rep - 1)));
    return values.length ? `${fmt(Math.min(...values))}-${fmt(Math.max(...values))}` : "-";
  });
  const width = 15;
  console.log(
    `\nbuilt-in policies vs the kernel default: median of ${REPS} interleaved repetitions, one boot (${reruns} reruns), kernel ${kernel.version}, mode=${mode}, ${new Date().toISOString().slice(0, 10)}`,
  );
  console.log(`${"policy".padEnd(14)}${columns.map(([name]) => name.padStart(width)).join("")}  state`);
  console.log(`${"default/prev".padEnd(14)}${band.map((b) => b.padStart(width)).join("")}`);
  for (const policy of order.slice(1)) {
    const states = [...new Set(reps.map((rep) => get(policy, rep).state))].join(",");
    console.log(
      `${policy.padEnd(14)}${columns.map(([, m]) => fmt(ratio(policy, m)).padStart(width)).join("")}  ${states}`,
    );
  }
  console.log(`kernel: ${kernel.version}`);
  console.log(
    `policies: latency_p50_ratio=${fmt(ratio("latency", latencyRatio("p50Us")))} latency_p99_ratio=${fmt(ratio("latency", latencyRatio("p99Us")))} hackbench_ratio=${fmt(
      ratio(
        "latency",
        simple((f) => f.hackbenchS),
      ),
    )} messaging_ratio=${fmt(
      ratio(
        "latency",
        simple((f) => f.messagingS),
      ),
    )} compile_ratio=na throughput_ratio=${fmt(
      ratio(
        "throughput",
        simple((f) => f.batchMeanS),
      ),
    )} mode=${mode}`,
  );
}

/** Every measurement, repetitions interleaved: default, fifo, ..., default, fifo, ... */
function plan(order: string[]): { policy: string; rep: number }[] {
  return Array.from({ length: REPS }, (_, i) => order.map((policy) => ({ policy, rep: i + 1 }))).flat();
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

function fmt(x: number): string {
  return Number.isNaN(x) ? "na" : x.toFixed(2);
}

/** The guest's sh: for each repetition, each policy in turn: attach, measure, detach. */
function guestScript(
  todo: { policy: string; rep: number }[],
  policies: { name: string; opsName: string }[],
): string {
  const ops = Object.fromEntries(policies.map((p) => [p.name, p.opsName]));
  const cyclictest = cyclictestArgs({
    threads: 2,
    intervalUs: 1000,
    seconds: LATENCY_SECONDS,
    json: "/tmp/ct.json",
  });
  const jobs = BATCH_JOB_OPS.map((n, i) => `stress-ng ${batchJobArgs(n).join(" ")} >/tmp/out/job${i} 2>&1 &`);
  return `
set -u
state() { cat /sys/kernel/sched_ext/state; }
wait_state() { i=0; while [ "$(state)" != "$1" ] && [ $i -lt 200 ]; do sleep 0.05; i=$((i+1)); done; }
attach() {
  mkdir -p /sys/fs/bpf/bench/$1
  bpftool struct_ops register /bench/objects/$1.bpf.o /sys/fs/bpf/bench/$1 >/tmp/reg.log 2>&1 &
  wait_state enabled
  [ "$(cat /sys/kernel/sched_ext/root/ops 2>/dev/null)" = "$2" ] || { echo "attach $1 failed"; cat /tmp/reg.log; dmesg | tail; exit 1; }
}
detach() { rm -rf /sys/fs/bpf/bench/$1; wait_state disabled; }
hogs() { stress-ng --cpu 2 --timeout $((${LATENCY_SECONDS} + 1))s -q & sleep 0.3; }
measure() {
  rm -rf /tmp/out /tmp/rt /tmp/ct.json; mkdir -p /tmp/out /tmp/rt
  hogs; cyclictest ${cyclictest.join(" ")} >/dev/null 2>&1; wait; cp /tmp/ct.json /tmp/out/cyclictest
${RT_APP_SETS.map((s) => `  hogs; rt-app /bench/rt-app-${s}.json >/dev/null 2>&1; wait; cat /tmp/rt/*.log >/tmp/out/rt-app-${s}; rm -f /tmp/rt/*`).join("\n")}
  hackbench ${hackbenchArgs({ groups: 2, loops: 15 }).join(" ")} >/tmp/out/hackbench 2>&1
  chroot /tools perf ${perfMessagingArgs({ groups: 1, loops: 10 }).join(" ")} >/tmp/out/messaging 2>&1
  chroot /tools perf ${perfPipeArgs({ loops: 5000 }).join(" ")} >/tmp/out/pipe 2>&1
${jobs.map((j) => `  ${j}`).join("\n")}
  wait
  st="$(state)"
  json="{\\"policy\\":\\"$1\\",\\"rep\\":$2,\\"state\\":\\"$st\\",\\"outputs\\":{"; sep=
  for f in /tmp/out/*; do json="$json$sep\\"$(basename $f)\\":\\"$(gzip -c $f | base64 -w0)\\""; sep=,; done
  echo "${RESULT_MARKER}$json}}"
  echo "BENCH-DONE $1 $2 $(cut -d' ' -f1 /proc/uptime)"
}
${todo
  .map(({ policy, rep }) =>
    policy === "default"
      ? `measure default ${rep}`
      : `attach ${policy} ${ops[policy]}\nmeasure ${policy} ${rep}\ndetach ${policy}`,
  )
  .join("\n")}
`;
}
