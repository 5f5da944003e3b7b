import type { SandboxFigures } from "./types.ts";

// The sandbox half of verification: one guest script checks several candidates in one boot
// (boots cost seconds, and Node in the guest is slow, so this is plain sh + bpftool). For each
// candidate: a verify-only load (unless the host did it), then a registered run under the
// standard mixed load: two CPU hogs per CPU and a fork/exec loop (each counting its progress),
// plus cyclictest with SCHED_OTHER threads for wake-up latency. Results come back as
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
  pids=""
  k=0
  while [ $k -lt @HOGS@ ]; do
    k=$((k+1))
    ( i=0; trap 'echo $i > /tmp/prog.$k; exit 0' TERM; while :; do i=$((i+1)); done ) &
    pids="$pids $!"
  done
  ( i=0; trap 'echo $i > /tmp/prog.fork; exit 0' TERM; while :; do /bin/true; i=$((i+1)); done ) &
  pids="$pids $!"
  cyclictest -q -D @SECS@ -t 2 -i 1000 >/tmp/cyc.log 2>&1 &
  cyc=$!
  sleep @SECS@
  state=$(cat $SX/state)
  end_ops=$(cat $SX/root/ops 2>/dev/null)
  kill -TERM $pids 2>/dev/null
  wait $pids 2>/dev/null
  wait $cyc 2>/dev/null
  progress=""
  for f in /tmp/prog.*; do progress="$progress$(cat $f 2>/dev/null || echo 0),"; done
  rm -f /tmp/prog.*
  if [ $kind = object ]; then rm -rf /sys/fs/bpf/schedctl-verify/$h; else kill -INT $loader 2>/dev/null; fi
  vwait_state disabled 50 || kill -9 $loader 2>/dev/null
  vwait_state disabled 50
  say $h figures "secs=@SECS@ state=$state ops=$end_ops started_ops=$now_ops progress=$progress"
  say $h cyclictest "$(grep '^T:' /tmp/cyc.log | b64)"
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

function judgeDynamic(item: GuestItem, status: string, got: Map<string, string>): GuestOutcome["dynamic"] {
  const kernelLog = unb64(got.get("dynamic-log"));
  const fields = new Map(
    (got.get("figures") ?? "").split(" ").map((kv) => {
      const eq = kv.indexOf("=");
      return [kv.slice(0, eq), kv.slice(eq + 1)] as const;
    }),
  );
  const progress = (fields.get("progress") ?? "")
    .split(",")
    .filter((s) => s !== "")
    .map(Number);
  const seconds = Number(fields.get("secs") ?? 0);
  const latency = parseCyclictest(unb64(got.get("cyclictest")));
  const stillEnabled = fields.get("state") === "enabled" && fields.get("ops") === item.opsName;
  const ejectReason = /disabled \(([^)]*)\)/.exec(kernelLog)?.[1];
  const total = progress.reduce((a, b) => a + b, 0);
  const figures: SandboxFigures = {
    seconds,
    workers: progress.length,
    minProgress: progress.length ? Math.min(...progress) : 0,
    meanProgress: progress.length ? total / progress.length : 0,
    opsPerSec: seconds > 0 ? total / seconds : 0,
    latencyAvgUs: latency?.avgUs ?? 0,
    latencyMaxUs: latency?.maxUs ?? 0,
    stillEnabled,
    ...(ejectReason ? { ejectReason } : {}),
  };
  const problems: string[] = [];
  if (status === "not-enabled") problems.push(`the kernel never reported ${item.opsName} enabled`);
  else {
    if (!stillEnabled) {
      problems.push(
        `ejected or replaced during the run (state ${fields.get("state")}, ops "${fields.get("ops")}"${ejectReason ? `, kernel: ${ejectReason}` : ""})`,
      );
    }
    if (progress.length === 0) problems.push("no load worker reported progress");
    else if (figures.minProgress <= 0)
      problems.push(`a load worker starved (progress ${progress.join(", ")})`);
    if (!latency) problems.push("no latency figures (cyclictest reported nothing)");
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

function parseCyclictest(text: string): { avgUs: number; maxUs: number } | undefined {
  const threads = [...text.matchAll(/Avg:\s*(\d+)\s+Max:\s*(\d+)/g)].map((m) => ({
    avg: Number(m[1]),
    max: Number(m[2]),
  }));
  if (threads.length === 0) return undefined;
  return {
    avgUs: threads.reduce((a, t) => a + t.avg, 0) / threads.length,
    maxUs: Math.max(...threads.map((t) => t.max)),
  };
}

function unb64(value: string | undefined): string {
  return value ? Buffer.from(value.trim(), "base64").toString("utf8") : "";
}
