import { z } from "zod";
import { RESULT_MARKER } from "../sandbox/types.ts";
import type { SandboxFigures } from "./types.ts";

// The sandbox half of verification: one guest script checks several candidates in one boot
// (boots cost seconds, and Node in the guest is slow, so this is plain sh + bpftool). For each
// candidate: a verify-only load (unless the host did it), then a registered run under the
// standard mixed load: CPU hogs (cpuhog, two per CPU) and a fork/exec loop, each counting its
// progress, plus a SCHED_OTHER request/response service (wakelat) for wake-up latency. Results come back as
// `SCHEDCTL-VERIFY <hash> <key> <value>` console lines.

export const VERIFY_MARKER = "SCHEDCTL-VERIFY";

export interface GuestItem {
  hash: string;
  /** Where the object (or external binary) is placed in the guest. */
  guestPath: string;
  kind: "object" | "process";
  /** External schedulers: the arguments after the binary. */
  args?: string[];
  opsName: string;
  kernelStage: boolean;
}

export interface GuestOutcome {
  kernel?: { ok: boolean; log: string };
  dynamic?: { ok: boolean; log: string; figures: SandboxFigures };
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
  return `${GUEST_FUNCTIONS.replaceAll("@SECS@", String(secs)).replaceAll("@HOGS@", String(HOGS))}\n${body.join("\n")}\necho "${VERIFY_MARKER} all done 1"\n`;
}

function shellQuote(s: string): string {
  return `'${s.replaceAll("'", `'\\''`)}'`;
}

const GUEST_FUNCTIONS = `
SX=/sys/kernel/sched_ext
mkdir -p /sys/fs/bpf/schedctl-verify
say() { echo "${VERIFY_MARKER} $1 $2 $3"; }
b64() { base64 -w0; echo; }
vkernel() {
  dir=/sys/fs/bpf/schedctl-verify/load-$1
  mkdir -p $dir
  if bpftool -d prog loadall "$2" $dir >/tmp/load.log 2>&1; then
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
vdynamic() {
  h=$1; ops=$2; loader=$3; kind=$4
  dmesg -c >/dev/null 2>&1
  if ! vwait_state enabled 100; then
    kill -9 $loader 2>/dev/null; rm -rf /sys/fs/bpf/schedctl-verify/$h
    say $h dynamic-log "$( (cat /tmp/reg.log; dmesg | grep sched_ext) | tail -n 40 | b64)"
    say $h dynamic not-enabled; return
  fi
  now_ops=$(cat $SX/root/ops)
  cpuhog --workers=@HOGS@ --seconds=@SECS@ >/tmp/hog.out 2>&1 &
  hog=$!
  wakelat --seconds=@SECS@ --workers=2 >/tmp/wl.out 2>&1 &
  wl=$!
  ( i=0; trap 'echo $i > /tmp/prog.fork; exit 0' TERM; while :; do /bin/true; i=$((i+1)); done ) &
  forker=$!
  sleep @SECS@
  state=$(cat $SX/state)
  end_ops=$(cat $SX/root/ops 2>/dev/null)
  kill -TERM $forker 2>/dev/null
  wait $forker 2>/dev/null
  # The loads stop on their own; a starved one is given a little longer, then killed.
  n=0; while kill -0 $hog $wl 2>/dev/null && [ $n -lt 100 ]; do sleep 0.1; n=$((n+1)); done
  kill -9 $hog $wl 2>/dev/null
  forks=$(cat /tmp/prog.fork 2>/dev/null || echo 0)
  rm -f /tmp/prog.fork
  # Reported before the detach: the kernel prints "disabled" on the console a moment after the
  # state changes, and a line it cuts in two loses what came after the cut.
  say $h figures "secs=@SECS@ state=$state ops=$end_ops started_ops=$now_ops forks=$forks"
  say $h loads "$(grep -h '^${RESULT_MARKER}' /tmp/hog.out /tmp/wl.out | sed 's/^${RESULT_MARKER}//' | b64)"
  if [ $kind = object ]; then rm -rf /sys/fs/bpf/schedctl-verify/$h; else kill -INT $loader 2>/dev/null; fi
  vwait_state disabled 50 || kill -9 $loader 2>/dev/null
  vwait_state disabled 50
  say $h dynamic-log "$(dmesg | grep -i sched_ext | tail -n 20 | b64)"
  say $h dynamic done
}
`;

/** Reads every candidate's outcome from the console (lines may be interleaved with kernel messages). */
export function parseVerifyConsole(console: string, items: GuestItem[]): Map<string, GuestOutcome> {
  const lines = new Map<string, Map<string, string>>();
  for (const raw of console.split(/\r?\n/)) {
    const at = raw.indexOf(VERIFY_MARKER);
    if (at < 0) continue;
    const [hash, key, ...rest] = raw.slice(at + VERIFY_MARKER.length + 1).split(" ");
    if (!hash || !key) continue;
    if (!lines.has(hash)) lines.set(hash, new Map());
    lines.get(hash)!.set(key, rest.join(" "));
  }
  const outcomes = new Map<string, GuestOutcome>();
  for (const item of items) {
    const got = lines.get(item.hash);
    if (!got) continue;
    const outcome: GuestOutcome = {};
    const kernel = got.get("kernel");
    if (kernel) outcome.kernel = { ok: kernel === "ok", log: unb64(got.get("kernel-log")) };
    const dynamic = got.get("dynamic");
    if (dynamic) outcome.dynamic = judgeDynamic(item, dynamic, got);
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

function judgeDynamic(item: GuestItem, status: string, got: Map<string, string>): GuestOutcome["dynamic"] {
  const kernelLog = unb64(got.get("dynamic-log"));
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
  const forks = Number(fields.get("forks") ?? 0);
  const progress = hog ? [...hog.units, forks] : [];
  const seconds = Number(fields.get("secs") ?? 0);
  const stillEnabled = fields.get("state") === "enabled" && fields.get("ops") === item.opsName;
  const ejectReason = /disabled \(([^)]*)\)/.exec(kernelLog)?.[1];
  const total = progress.reduce((a, b) => a + b, 0);
  const figures: SandboxFigures = {
    seconds,
    workers: progress.length,
    minProgress: progress.length ? Math.min(...progress) : 0,
    meanProgress: progress.length ? total / progress.length : 0,
    opsPerSec: hog && hog.seconds > 0 ? hog.total / hog.seconds : 0,
    latencyP50Us: wakelat?.p50_us ?? 0,
    latencyP99Us: wakelat?.p99_us ?? 0,
    requestsPerSec: wakelat?.rps ?? 0,
    stillEnabled,
    ...(ejectReason ? { ejectReason } : {}),
  };
  const problems: string[] = [];
  if (status === "not-enabled") {
    // A scheduler that stalls everything also stalls the guest's shell: it may only see the
    // state again after the kernel's watchdog has ejected it.
    problems.push(
      ejectReason
        ? `ejected by the kernel before the load started (${ejectReason})`
        : `the kernel never reported ${item.opsName} enabled`,
    );
  } else {
    if (!stillEnabled) {
      problems.push(
        `ejected or replaced during the run (state ${fields.get("state")}, ops "${fields.get("ops")}"${ejectReason ? `, kernel: ${ejectReason}` : ""})`,
      );
    }
    if (!hog) problems.push("the CPU load reported nothing (starved or killed)");
    else if (figures.minProgress <= 0)
      problems.push(`a load worker starved (progress ${progress.join(", ")})`);
    if (!wakelat || wakelat.rps <= 0)
      problems.push("no latency figures (the request/response load reported nothing)");
  }
  const log = [
    problems.length
      ? `dynamic run failed: ${problems.join("; ")}`
      : `dynamic run passed: ${JSON.stringify(figures)}`,
    kernelLog.trim(),
  ]
    .filter(Boolean)
    .join("\n");
  return { ok: problems.length === 0, log, figures };
}

function unb64(value: string | undefined): string {
  return value ? Buffer.from(value.trim(), "base64").toString("utf8") : "";
}
