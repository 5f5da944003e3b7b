import { daemonArgs } from "./daemon.ts";
import { type DayPhase, type ScheduledRun, UNITS } from "./day.ts";
import { DAEMON_PREFIX } from "./events.ts";

// The guest's shell script for a day: the units' cgroups, a watcher that reports every change of
// the kernel's sched_ext state, and for each scheduled run the daemon, the phases in rounds, and
// a dump of the daemon's store while the kernel still runs what it chose. Every report is a
// `SCHEDCTL-RESULT {json}` line stamped with the guest's uptime, parsed by events.ts.

/** The load generators' arguments per phase (the guest's /usr/local/bin). */
export const LOADS = {
  /** The service: a messenger waking two SCHED_OTHER workers; one round lasts this long. */
  service: (seconds: number) => `wakelat --seconds=${seconds} --workers=2 --work-us=300`,
  /** Half-busy CPU hogs: under fully busy ones the default's p99 sits at wakelat's histogram ceiling. */
  hogs: (seconds: number) => `stress-ng --cpu 2 --cpu-load 50 --timeout ${seconds}s --quiet`,
  build: "buildsim --units=40 --jobs=4 --work-us=30000",
  batch: "batchsim --tasks=40 --short-ms=100 --long-ms=2000",
} as const;

/**
 * Seconds of one wake-up latency round: five in a 15 s phase, so that the phase's median round
 * is one under the scheduler that was chosen for it, not the first (before the phase is detected)
 * or the one a swap falls in (adapt_s reports how long that took).
 */
export const SERVICE_ROUND_SECONDS = 3;

export interface Ejection {
  run: number;
  phase: number;
  /** Seconds into the phase. */
  afterSeconds: number;
}

export interface GuestScriptOptions {
  day: readonly DayPhase[];
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
  return `${PRELUDE}
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
export const CGROUP_SETUP = `CG=/sys/fs/cgroup
for unit in ${Object.values(UNITS).join(" ")}; do mkdir -p "$CG/$unit"; done`;

const PRELUDE = `${CGROUP_SETUP}
for slice in system.slice user.slice batch.slice; do echo +cpu >"$CG/$slice/cgroup.subtree_control" 2>/dev/null; done
echo 1 >/proc/sys/kernel/sysrq
# Node compiles each module once for all the runs' daemons: later starts are quicker.
export NODE_COMPILE_CACHE=/var/cache/node-compile
up() { cut -d' ' -f1 /proc/uptime; }
now() { cut -d. -f1 /proc/uptime; }
say() { echo "SCHEDCTL-RESULT $1"; }
inunit() { unit=$1; shift; sh -c 'echo $$ >"$0/cgroup.procs"; exec "$@"' "$CG/$unit" "$@"; }
# One round of a load in a unit; its result line gains the run, the phase and its start and end.
round() {
  r=$1; p=$2; unit=$3; shift 3
  start=$(up); out=$(inunit "$unit" "$@" 2>/dev/null); end=$(up)
  echo "$out" | sed -n "s|^.*SCHEDCTL-RESULT {|SCHEDCTL-RESULT {\\"run\\":$r,\\"phase\\":$p,\\"unit\\":\\"$unit\\",\\"start\\":$start,\\"end\\":$end,|p"
}
rounds() { until_s=$1; shift; while [ "$(now)" -lt "$until_s" ]; do round "$@"; done; }
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

function phaseScript(run: ScheduledRun, phase: DayPhase, eject: Ejection | undefined): string {
  const r = run.index;
  const p = phase.index;
  const s = phase.seconds;
  const mark = (event: string) =>
    `say "{\\"load\\":\\"day\\",\\"event\\":\\"${event}\\",\\"run\\":${r},\\"phase\\":${p},\\"kind\\":\\"${phase.kind}\\",\\"t\\":$(up)}"`;
  const service = `rounds $END ${r} ${p} ${UNITS.service} ${LOADS.service(SERVICE_ROUND_SECONDS)}`;
  const body: Record<DayPhase["kind"], string> = {
    idle: `sleep ${s}`,
    latency: `inunit ${UNITS.hogs} ${LOADS.hogs(s)} >/dev/null 2>&1 & HOGS=$!
${service}
wait $HOGS`,
    build: `rounds $END ${r} ${p} ${UNITS.build} ${LOADS.build}`,
    batch: `rounds $END ${r} ${p} ${UNITS.batch} ${LOADS.batch}`,
    mixed: `rounds $END ${r} ${p} ${UNITS.build} ${LOADS.build} & BUILD=$!
${service}
wait $BUILD`,
  };
  const ejection =
    eject && eject.run === r && eject.phase === p
      ? `(sleep ${eject.afterSeconds}; n=0; until grep -q enabled /sys/kernel/sched_ext/state || [ $n -ge 40 ]; do sleep 0.5; n=$((n+1)); done; say "{\\"load\\":\\"day\\",\\"event\\":\\"eject\\",\\"run\\":${r},\\"phase\\":${p},\\"t\\":$(up)}"; echo S >/proc/sysrq-trigger) &\n`
      : "";
  return `${phase.pauseSeconds ? `sleep ${phase.pauseSeconds}\n` : ""}${mark("phase-start")}
END=$(( $(now) + ${s} ))
${ejection}${body[phase.kind]}
${mark("phase-end")}`;
}
