import { daemonArgs } from "./daemon.ts";
import { type DayPhase, isIdle, type ScheduledRun } from "./day.ts";
import { DAEMON_PREFIX } from "./events.ts";

// The guest's shell script for a day: the units' cgroups, a watcher that reports every change of
// the kernel's sched_ext state, and for each scheduled run the daemon, the phases (background
// loads, the foreground command in rounds), and a dump of the daemon's store while the kernel
// still runs what it chose. Every report is a `SCHEDCTL-RESULT {json}` line stamped with the
// guest's uptime, parsed by events.ts; a round's carries the command's output for the host to
// read its KPI from.

/** A round's report carries at most this much of its output (the tail), base64 on one line. */
export const ROUND_OUTPUT_BYTES = 65536;
/** Where a round's stdout and stderr go when its KPI reads no file of its own. */
const ROUND_OUTPUT = "/tmp/round.out";
/** Seconds a one-shot background load may run past its phase before its unit is killed. */
const BACKGROUND_GRACE_SECONDS = 10;

export interface Ejection {
  run: number;
  phase: number;
  /** Seconds into the phase. */
  afterSeconds: number;
}

export interface GuestScriptOptions {
  day: readonly DayPhase[];
  /** Every unit the day's commands run in (dayUnits). */
  units: readonly string[];
  runs: readonly ScheduledRun[];
  /** The guest path of the dump script (guest-dump.js). */
  dumpScript: string;
  /** Seconds the daemon may take to report its first phase before the day starts anyway. */
  daemonStartSeconds: number;
  /** Eject the running scheduler (sysrq S) at this point of the day, or as soon after as one runs. */
  eject?: Ejection;
  /** The scripted model (scripted-model.js in the guest) to run for the day, on this port. */
  model?: { script: string; port: number };
}

export function guestScript(options: GuestScriptOptions): string {
  const runs = options.runs.map((run) => runScript(run, options)).join("\n");
  const model = options.model
    ? `node ${options.model.script} ${options.model.port} >/tmp/model.log 2>&1 & MODEL=$!
n=0; until grep -q 'scripted model' /tmp/model.log || [ $n -ge 120 ]; do sleep 0.5; n=$((n+1)); done
`
    : "";
  return `${cgroupSetup(options.units)}
${prelude(options.units)}
${model}${runs}
${options.model ? "kill $MODEL 2>/dev/null\n" : ""}kill $WATCH 2>/dev/null
say "{\\"load\\":\\"day\\",\\"event\\":\\"done\\",\\"t\\":$(up)}"
`;
}

/**
 * The units' cgroups, made first thing in a fresh guest: cgroupfs hands out inode numbers (the
 * cgroup ids policies are compiled with) in creation order, so a probe boot running the same
 * line learns the ids the day's guest will have (policies.ts).
 */
export function cgroupSetup(units: readonly string[]): string {
  return `CG=/sys/fs/cgroup
for unit in ${units.join(" ")}; do mkdir -p "$CG/$unit"; done`;
}

/** The cgroups with units below them, which hand the cpu controller down. */
function parents(units: readonly string[]): string[] {
  const out = new Set<string>();
  for (const unit of units) {
    const parts = unit.split("/");
    for (let i = 1; i < parts.length; i++) out.add(parts.slice(0, i).join("/"));
  }
  return [...out];
}

const prelude = (
  units: readonly string[],
) => `for slice in ${parents(units).join(" ")}; do echo +cpu >"$CG/$slice/cgroup.subtree_control" 2>/dev/null; done
echo 1 >/proc/sys/kernel/sysrq
# Node compiles each module once for all the runs' daemons: later starts are quicker.
export NODE_COMPILE_CACHE=/var/cache/node-compile
up() { cut -d' ' -f1 /proc/uptime; }
now() { cut -d. -f1 /proc/uptime; }
say() { echo "SCHEDCTL-RESULT $1"; }
inunit() { unit=$1; shift; sh -c 'echo $$ >"$0/cgroup.procs"; exec "$@"' "$CG/$unit" "$@"; }
# One round of the foreground command in its unit, reported with the run, the phase, its start,
# end and exit status, and the tail of its output (or of the file its KPI reads).
round() {
  r=$1; p=$2; unit=$3; out=$4; shift 4
  rm -f "$out" ${ROUND_OUTPUT}; start=$(up); inunit "$unit" "$@" >${ROUND_OUTPUT} 2>&1; status=$?; end=$(up)
  say "{\\"load\\":\\"round\\",\\"run\\":$r,\\"phase\\":$p,\\"unit\\":\\"$unit\\",\\"start\\":$start,\\"end\\":$end,\\"status\\":$status,\\"out\\":\\"$(tail -c ${ROUND_OUTPUT_BYTES} "$out" 2>/dev/null | base64 -w0)\\"}"
}
rounds() { until_s=$1; shift; while [ "$(now)" -lt "$until_s" ]; do round "$@"; done; }
# A background load run again each time it ends, until the phase does.
again() { until_s=$1; unit=$2; shift 2; while [ "$(now)" -lt "$until_s" ]; do inunit "$unit" "$@" >/dev/null 2>&1; done; }
# A one-shot background load is waited for, up to a grace past its phase; then its unit is killed.
settle() {
  pid=$1; unit=$2; n=0
  while kill -0 "$pid" 2>/dev/null && [ $n -lt ${BACKGROUND_GRACE_SECONDS * 2} ]; do sleep 0.5; n=$((n+1)); done
  kill -0 "$pid" 2>/dev/null && echo 1 >"$CG/$unit/cgroup.kill"
  wait "$pid"
}
# Reads with the shell's own "read": a fork costs much CPU under emulation.
watch_kernel() {
  last=
  while :; do
    state=; ops=
    { read -r state </sys/kernel/sched_ext/state; read -r ops </sys/kernel/sched_ext/root/ops; } 2>/dev/null
    if [ "$state/$ops" != "$last" ]; then
      say "{\\"load\\":\\"kernel\\",\\"t\\":$(up),\\"state\\":\\"$state\\",\\"ops\\":\\"$ops\\"}"
      last="$state/$ops"
    fi
    sleep 0.3
  done
}
watch_kernel & WATCH=$!
dmesg -n 1`;

function runScript(run: ScheduledRun, options: GuestScriptOptions): string {
  const state =
    run.store === "fresh" ? `/var/lib/schedctl-day/run${run.index}` : "/var/lib/schedctl-day/day1";
  const fresh = run.store === "fresh" || run.mode === "day1" ? `rm -rf ${state}; ` : "";
  const log = `/tmp/schedctld-${run.index}.log`;
  const phases = options.day.map((phase) => phaseScript(run, phase, options.eject)).join("\n");
  const waitTicks = options.daemonStartSeconds * 2;
  return `# run ${run.index}: ${run.mode}
${fresh}mkdir -p ${state}; rm -f /tmp/schedctld.fifo; mkfifo /tmp/schedctld.fifo
awk '{ getline u <"/proc/uptime"; close("/proc/uptime"); split(u, a, " "); print "${DAEMON_PREFIX}${run.index} " a[1] " " $0; print >> "${log}"; fflush() }' </tmp/schedctld.fifo & PRINTER=$!
node ${daemonArgs(run.mode, state).join(" ")} >/tmp/schedctld.fifo 2>&1 & DAEMON=$!
say "{\\"load\\":\\"day\\",\\"event\\":\\"run-start\\",\\"run\\":${run.index},\\"mode\\":\\"${run.mode}\\",\\"t\\":$(up)}"
n=0; until grep -q 'first phase' ${log} 2>/dev/null || [ $n -ge ${waitTicks} ]; do sleep 0.5; n=$((n+1)); done
say "{\\"load\\":\\"day\\",\\"event\\":\\"daemon-ready\\",\\"run\\":${run.index},\\"t\\":$(up),\\"waited\\":$n}"
${phases}
node ${options.dumpScript} ${state}/state.db ${run.index}
kill -TERM $DAEMON; wait $DAEMON; code=$?; wait $PRINTER
say "{\\"load\\":\\"day\\",\\"event\\":\\"run-end\\",\\"run\\":${run.index},\\"t\\":$(up),\\"daemonExit\\":$code}"
say "{\\"load\\":\\"kernel-after-stop\\",\\"run\\":${run.index},\\"state\\":\\"$(cat /sys/kernel/sched_ext/state)\\"}"`;
}

/** A day file's command for the guest's shell: `{seconds}` is the phase's length. */
const command = (text: string, phase: DayPhase) => text.replaceAll("{seconds}", String(phase.seconds));

function phaseScript(run: ScheduledRun, phase: DayPhase, eject: Ejection | undefined): string {
  const r = run.index;
  const p = phase.index;
  const mark = (event: string) =>
    `say "{\\"load\\":\\"day\\",\\"event\\":\\"${event}\\",\\"run\\":${r},\\"phase\\":${p},\\"name\\":\\"${phase.name}\\",\\"t\\":$(up)}"`;
  const spec = phase.spec;
  let body = `sleep ${phase.seconds}`;
  if (!isIdle(phase)) {
    const output = spec.kpi && "output" in spec.kpi && spec.kpi.output ? spec.kpi.output : ROUND_OUTPUT;
    const started = spec.background.map((b, i) =>
      b.repeat
        ? `again $END ${b.unit} ${command(b.run, phase)} & BG${i}=$!`
        : `inunit ${b.unit} ${command(b.run, phase)} >/dev/null 2>&1 & BG${i}=$!`,
    );
    const waited = spec.background.map((b, i) => (b.repeat ? `wait $BG${i}` : `settle $BG${i} ${b.unit}`));
    body = [
      ...started,
      `rounds $END ${r} ${p} ${spec.unit} ${output} ${command(spec.run!, phase)}`,
      ...waited,
    ].join("\n");
  }
  const ejection =
    eject && eject.run === r && eject.phase === p
      ? `(sleep ${eject.afterSeconds}; n=0; until grep -q enabled /sys/kernel/sched_ext/state || [ $n -ge 40 ]; do sleep 0.5; n=$((n+1)); done; say "{\\"load\\":\\"day\\",\\"event\\":\\"eject\\",\\"run\\":${r},\\"phase\\":${p},\\"t\\":$(up)}"; echo S >/proc/sysrq-trigger) &\n`
      : "";
  return `${phase.pauseSeconds ? `sleep ${phase.pauseSeconds}\n` : ""}${mark("phase-start")}
END=$(( $(now) + ${phase.seconds} ))
${ejection}${body}
${mark("phase-end")}`;
}
