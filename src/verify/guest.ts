import { z } from "zod";
import type { PolicyWorkload } from "../policies/types.ts";
import { cyclictestArgs, cyclictestLatency, parseCyclictestJson } from "../sandbox/tools/cyclictest.ts";
import type { WakeupLatency } from "../sandbox/tools/latency.ts";
import { RESULT_MARKER } from "../sandbox/types.ts";
import { compareToDefault, type Judgement, judgeAgainstDefault, round3 } from "./against-default.ts";
import type { AgainstDefault, DefaultThresholds, SandboxFigures } from "./types.ts";

// The sandbox half of verification: one guest script checks several candidates in one boot
// (boots cost seconds, and Node in the guest is slow, so this is plain sh + bpftool). For each
// candidate: a verify-only load (unless the host did it), then a registered run under the
// standard mixed load: CPU hogs (cpuhog, two per CPU) and a fork/exec loop, each counting its
// progress, plus a SCHED_OTHER request/response service (wakelat) for wake-up latency. Results come back as
// `SCHEDCTL-VERIFY <hash> <key> <value>` console lines.

export const VERIFY_MARKER = "SCHEDCTL-VERIFY";
/** The console tags of the loads' runs under the kernel default, before and after the candidates. */
const BASELINE_TAGS = ["default", "default-after"] as const;

export interface GuestItem {
  hash: string;
  /** Where the object (or external binary) is placed in the guest. */
  guestPath: string;
  kind: "object" | "process";
  /** External schedulers: the arguments after the binary. */
  args?: string[];
  opsName: string;
  kernelStage: boolean;
  /** What the policy claims to be for: each claim is judged against the default's run. */
  workloads: readonly PolicyWorkload[];
}

export interface GuestOutcome {
  /** The kernel verifier's load in the guest, with its time. */
  kernel?: { ok: boolean; log: string; ms?: number };
  dynamic?: {
    ok: boolean;
    log: string;
    figures: SandboxFigures;
    baseline?: SandboxFigures;
    againstDefault?: AgainstDefault;
    admits?: PolicyWorkload[];
  };
}

const HOGS = 4;

export function buildVerifyScript(items: GuestItem[], seconds: number): string {
  const secs = Math.max(1, Math.round(seconds));
  const body = items.map((item) => {
    const args = (item.args ?? []).map(shellQuote).join(" ");
    const kernel = item.kernelStage
      ? `vkernel ${item.hash} ${shellQuote(item.guestPath)} || continue_dyn=0`
      : "continue_dyn=1";
    const start =
      item.kind === "object"
        ? `bpftool struct_ops register ${shellQuote(item.guestPath)} /sys/fs/bpf/schedctl-verify/${item.hash} >/tmp/reg.log 2>&1 &`
        : `${shellQuote(item.guestPath)} ${args} >/tmp/reg.log 2>&1 &`;
    return `continue_dyn=1\n${kernel}\nif [ $continue_dyn = 1 ]; then\n  ${start}\n  vdynamic ${item.hash} ${shellQuote(item.opsName)} $! ${item.kind}\nfi`;
  });
  const cyclictest = cyclictestArgs({ threads: 2, intervalUs: 1000, seconds: secs, json: "/tmp/ct.json" });
  const functions = GUEST_FUNCTIONS.replaceAll("@SECS@", String(secs))
    .replaceAll("@HOGS@", String(HOGS))
    .replaceAll("@CYCLICTEST@", cyclictest.join(" "));
  const [before, after] = BASELINE_TAGS;
  const baseline = (tag: string) => (items.length > 0 ? `vbaseline ${tag}\n` : "");
  return `${functions}\n${baseline(before)}${body.join("\n")}\n${baseline(after)}echo "${VERIFY_MARKER} all done 1"\n`;
}

function shellQuote(s: string): string {
  return `'${s.replaceAll("'", `'\\''`)}'`;
}

const GUEST_FUNCTIONS = `
SX=/sys/kernel/sched_ext
mkdir -p /sys/fs/bpf/schedctl-verify
say() { echo "${VERIFY_MARKER} $1 $2 $3"; }
b64() { base64 -w0; echo; }
# True while any of the processes runs (kill -0 with several fails as soon as one is gone).
alive() { for p in "$@"; do kill -0 $p 2>/dev/null && return 0; done; return 1; }
ms_since() { awk -v a=$1 -v b=$(cut -d' ' -f1 /proc/uptime) 'BEGIN { printf "%d", (b - a) * 1000 }'; }
vkernel() {
  dir=/sys/fs/bpf/schedctl-verify/load-$1
  mkdir -p $dir
  t0=$(cut -d' ' -f1 /proc/uptime)
  bpftool -d prog loadall "$2" $dir >/tmp/load.log 2>&1; rc=$?
  say $1 kernel-ms $(ms_since $t0)
  if [ $rc = 0 ]; then
    say $1 kernel ok; rm -rf $dir; return 0
  fi
  rm -rf $dir
  say $1 kernel-log "$(grep -v '^libbpf: elf:' /tmp/load.log | tail -n 80 | b64)"
  say $1 kernel fail
  return 1
}
vwait_state() {
  n=0
  while [ "$(cat $SX/state)" != "$1" ] && [ $n -lt $2 ]; do sleep 0.1; n=$((n+1)); done
  [ "$(cat $SX/state)" = "$1" ]
}
vloads() {
  tag=$1
  cpuhog --workers=@HOGS@ --seconds=@SECS@ >/tmp/hog.out 2>&1 &
  hog=$!
  wakelat --seconds=@SECS@ --workers=2 >/tmp/wl.out 2>&1 &
  wl=$!
  rm -f /tmp/ct.json
  cyclictest @CYCLICTEST@ >/dev/null 2>&1 &
  ct=$!
  ( i=0; trap 'echo $i > /tmp/prog.fork; exit 0' TERM; while :; do /bin/true; i=$((i+1)); done ) &
  forker=$!
  sleep @SECS@
  state=$(cat $SX/state)
  end_ops=$(cat $SX/root/ops 2>/dev/null)
  kill -TERM $forker 2>/dev/null
  wait $forker 2>/dev/null
  # The loads stop on their own; a starved one is given a little longer, then killed.
  n=0; while alive $hog $wl $ct && [ $n -lt 100 ]; do sleep 0.1; n=$((n+1)); done
  kill -9 $hog $wl $ct 2>/dev/null
  forks=$(cat /tmp/prog.fork 2>/dev/null || echo 0)
  rm -f /tmp/prog.fork
  say $tag loads "$(grep -h '^${RESULT_MARKER}' /tmp/hog.out /tmp/wl.out | sed 's/^${RESULT_MARKER}//' | b64)"
  say $tag cyclictest "$(cat /tmp/ct.json 2>/dev/null | b64)"
}
# The same loads under the kernel's default scheduler: what every candidate is judged against.
vbaseline() {
  [ "$(cat $SX/state)" = disabled ] || return
  vloads $1
  say $1 figures "secs=@SECS@ state=$state ops=$end_ops started_ops= forks=$forks"
  say $1 dynamic done
}
vdynamic() {
  h=$1; ops=$2; loader=$3; kind=$4
  dmesg -c >/dev/null 2>&1
  if ! vwait_state enabled 100; then
    kill -9 $loader 2>/dev/null; rm -rf /sys/fs/bpf/schedctl-verify/$h
    say $h dynamic-log "$( (cat /tmp/reg.log; dmesg | grep sched_ext) | tail -n 40 | b64)"
    say $h dynamic not-enabled; return
  fi
  now_ops=$(cat $SX/root/ops)
  vloads $h
  # Reported before the detach: the kernel prints "disabled" a moment after the state changes.
  say $h figures "secs=@SECS@ state=$state ops=$end_ops started_ops=$now_ops forks=$forks"
  if [ $kind = object ]; then rm -rf /sys/fs/bpf/schedctl-verify/$h; else kill -INT $loader 2>/dev/null; fi
  vwait_state disabled 50 || kill -9 $loader 2>/dev/null
  vwait_state disabled 50
  say $h dynamic-log "$(dmesg | grep -i sched_ext | tail -n 20 | b64)"
  say $h dynamic done
}
`;

/** Reads every candidate's outcome from the console (lines may be interleaved with kernel messages). */
export function parseVerifyConsole(
  console: string,
  items: GuestItem[],
  thresholds: DefaultThresholds,
): Map<string, GuestOutcome> {
  const lines = new Map<string, Map<string, string>>();
  for (const raw of console.split(/\r?\n/)) {
    const at = raw.indexOf(VERIFY_MARKER);
    if (at < 0) continue;
    const [hash, key, ...rest] = raw.slice(at + VERIFY_MARKER.length + 1).split(" ");
    if (!hash || !key) continue;
    if (!lines.has(hash)) lines.set(hash, new Map());
    lines.get(hash)!.set(key, rest.join(" "));
  }
  const baseline = baselineOf(lines);
  const outcomes = new Map<string, GuestOutcome>();
  for (const item of items) {
    const got = lines.get(item.hash);
    if (!got) continue;
    const outcome: GuestOutcome = {};
    const kernel = got.get("kernel");
    if (kernel) {
      const ms = Number(got.get("kernel-ms"));
      outcome.kernel = {
        ok: kernel === "ok",
        log: unb64(got.get("kernel-log")),
        ...(Number.isFinite(ms) ? { ms } : {}),
      };
    }
    const dynamic = got.get("dynamic");
    if (dynamic) outcome.dynamic = judgeDynamic(item, dynamic, got, baseline, thresholds);
    outcomes.set(item.hash, outcome);
  }
  return outcomes;
}

const HogResult = z.looseObject({
  load: z.literal("cpuhog"),
  units: z.array(z.number()),
  total: z.number(),
  seconds: z.number(),
});
const WakelatResult = z.looseObject({
  load: z.literal("wakelat"),
  p50_us: z.number(),
  p99_us: z.number(),
  rps: z.number(),
});

/**
 * The default's figures: its runs before and after the candidates, together (a boot's first
 * run is often its slowest; a single run of a few seconds is noisy).
 */
function baselineOf(
  lines: Map<string, Map<string, string>>,
): Pick<LoadsRun, "figures" | "missing"> | undefined {
  const runs = BASELINE_TAGS.flatMap((tag) => {
    const got = lines.get(tag);
    return got?.get("dynamic") === "done" ? [runFigures(got)] : [];
  });
  if (runs.length === 0) return undefined;
  const missing = runs.flatMap((r) => r.missing);
  const mean = (pick: (f: SandboxFigures) => number) =>
    runs.reduce((sum, r) => sum + pick(r.figures), 0) / runs.length;
  const first = runs[0]!.figures;
  const progress = first.progress.map((_, i) => Math.round(mean((f) => f.progress[i] ?? 0)));
  return {
    missing,
    figures: {
      ...first,
      progress,
      minProgress: Math.min(...progress),
      meanProgress: mean((f) => f.meanProgress),
      jainIndex: round3(mean((f) => f.jainIndex)),
      opsPerSec: mean((f) => f.opsPerSec),
      latencyP50Us: mean((f) => f.latencyP50Us),
      latencyP99Us: mean((f) => f.latencyP99Us),
      requestsPerSec: mean((f) => f.requestsPerSec),
      cyclictestP50Us: mean((f) => f.cyclictestP50Us),
      cyclictestP99Us: mean((f) => f.cyclictestP99Us),
      cyclictestMaxUs: Math.max(...runs.map((r) => r.figures.cyclictestMaxUs)),
    },
  };
}

/** What one run of the loads reported (under a candidate, or under the default). */
interface LoadsRun {
  figures: SandboxFigures;
  /** What was missing from it. */
  missing: string[];
  /** sched_ext's state and ops name when the loads ended. */
  end: { state: string | undefined; ops: string | undefined };
}

function runFigures(got: Map<string, string>): LoadsRun {
  const fields = new Map(
    (got.get("figures") ?? "").split(" ").map((kv) => {
      const eq = kv.indexOf("=");
      return [kv.slice(0, eq), kv.slice(eq + 1)] as const;
    }),
  );
  const loads = unb64(got.get("loads"))
    .split("\n")
    .flatMap((line) => {
      try {
        return [JSON.parse(line) as unknown];
      } catch {
        return [];
      }
    });
  const hog = loads.map((l) => HogResult.safeParse(l)).find((r) => r.success)?.data;
  const wakelat = loads.map((l) => WakelatResult.safeParse(l)).find((r) => r.success)?.data;
  const missing: string[] = [];
  if (!hog) missing.push("the CPU load reported nothing (starved or killed)");
  if (!wakelat || wakelat.rps <= 0)
    missing.push("no latency figures (the request/response load reported nothing)");
  let cyclictest: WakeupLatency = { samples: 0, p50Us: 0, p99Us: 0, maxUs: 0 };
  const report = unb64(got.get("cyclictest"));
  try {
    cyclictest = cyclictestLatency(parseCyclictestJson(report));
    if (cyclictest.samples === 0) missing.push("cyclictest measured no wake-up");
  } catch (error) {
    missing.push(report ? (error as Error).message : "cyclictest reported nothing (starved or killed)");
  }
  const progress = hog ? [...hog.units, Number(fields.get("forks") ?? 0)] : [];
  const total = progress.reduce((a, b) => a + b, 0);
  const squares = progress.reduce((a, b) => a + b * b, 0);
  const figures: SandboxFigures = {
    seconds: Number(fields.get("secs") ?? 0),
    workers: progress.length,
    progress,
    minProgress: progress.length ? Math.min(...progress) : 0,
    meanProgress: progress.length ? total / progress.length : 0,
    jainIndex: squares > 0 ? round3((total * total) / (progress.length * squares)) : 0,
    opsPerSec: hog && hog.seconds > 0 ? hog.total / hog.seconds : 0,
    latencyP50Us: wakelat?.p50_us ?? 0,
    latencyP99Us: wakelat?.p99_us ?? 0,
    requestsPerSec: wakelat?.rps ?? 0,
    cyclictestP50Us: cyclictest.p50Us,
    cyclictestP99Us: cyclictest.p99Us,
    cyclictestMaxUs: cyclictest.maxUs,
    stillEnabled: fields.get("state") === "enabled",
  };
  return { figures, missing, end: { state: fields.get("state"), ops: fields.get("ops") } };
}

function judgeDynamic(
  item: GuestItem,
  status: string,
  got: Map<string, string>,
  baseline: Pick<LoadsRun, "figures" | "missing"> | undefined,
  thresholds: DefaultThresholds,
): GuestOutcome["dynamic"] {
  const kernelLog = unb64(got.get("dynamic-log"));
  const run = runFigures(got);
  const ejectReason = /disabled \(([^)]*)\)/.exec(kernelLog)?.[1];
  const figures: SandboxFigures = {
    ...run.figures,
    stillEnabled: run.figures.stillEnabled && run.end.ops === item.opsName,
    ...(ejectReason ? { ejectReason } : {}),
  };
  const problems: string[] = [];
  let against: AgainstDefault | undefined;
  let judged: Judgement | undefined;
  if (status === "not-enabled") {
    // A scheduler that stalls everything also stalls the guest's shell: it may only see the
    // state again after the kernel's watchdog has ejected it.
    problems.push(
      ejectReason
        ? `ejected by the kernel before the load started (${ejectReason})`
        : `the kernel never reported ${item.opsName} enabled`,
    );
  } else {
    if (!figures.stillEnabled) {
      problems.push(
        `ejected or replaced during the run (state ${run.end.state}, ops "${run.end.ops}"${ejectReason ? `, kernel: ${ejectReason}` : ""})`,
      );
    }
    if (figures.workers > 0 && figures.minProgress <= 0)
      problems.push(`a load worker starved (progress ${figures.progress.join(", ")})`);
    problems.push(...run.missing);
    if (!baseline || baseline.missing.length > 0) {
      problems.push(
        `no run under the kernel default to compare with${baseline ? ` (${baseline.missing.join("; ")})` : ""}`,
      );
    } else if (run.missing.length === 0) {
      against = compareToDefault(figures, baseline.figures);
      judged = judgeAgainstDefault(against, item.workloads, thresholds);
      if (judged.admits.length === 0)
        problems.push(`refused for every workload it claims: ${judged.refused.join("; ")}`);
    }
  }
  const log = [
    problems.length
      ? `dynamic run failed: ${problems.join("; ")}`
      : `dynamic run passed for ${judged?.admits.join(", ")}${judged?.refused.length ? `; ${judged.refused.join("; ")}` : ""}`,
    `figures: ${JSON.stringify(figures)}`,
    ...(baseline ? [`kernel default, same boot: ${JSON.stringify(baseline.figures)}`] : []),
    ...(against ? [`against the default: ${JSON.stringify(against)}`] : []),
    kernelLog.trim(),
  ]
    .filter(Boolean)
    .join("\n");
  return {
    ok: problems.length === 0,
    log,
    figures,
    ...(baseline ? { baseline: baseline.figures } : {}),
    ...(against ? { againstDefault: against } : {}),
    ...(judged && problems.length === 0 ? { admits: judged.admits } : {}),
  };
}

function unb64(value: string | undefined): string {
  return value ? Buffer.from(value.trim(), "base64").toString("utf8") : "";
}
