import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Logger } from "../log/logger.ts";
import type { Sandbox, VmResult } from "../sandbox/types.ts";
import { createQemuSandbox, runRetryingCrashes } from "../sandbox/vm.ts";
import {
  type AutoModeStatus,
  autoModeInVm,
  type DaemonSettings,
  DEFAULT_DAEMON_SETTINGS,
  daemonConfigToml,
  GUEST_CONFIG,
  GUEST_JS_ROOT,
  GUEST_MODEL_PORT,
} from "./daemon.ts";
import {
  buildDay,
  type DayOptions,
  type DayPhase,
  dayFiles,
  daySeconds,
  dayUnits,
  type ScheduledRun,
} from "./day.ts";
import type { DayFile } from "./day-file.ts";
import { type DayEvent, parseConsole, parseConsoleLine } from "./events.ts";
import { type Ejection, guestScript } from "./guest.ts";
import { collectRuns, type RunRecord } from "./kpi.ts";
import { guestCgroupIds, prebuildForGuest } from "./policies.ts";
import { assertReadyForDay } from "./preflight.ts";
import { transpileForGuest } from "./transpile.ts";

// Runs a day in the sched_ext VM: checks what it needs, writes the guest's files, boots once
// (again when the emulator crashes the guest, counting the reruns), and reads back every run.

const PROJECT_ROOT = join(import.meta.dirname, "..", "..");
/** Node starts slowly under emulation, slower still on a busy host. */
const DAEMON_START_SECONDS = 150;

export interface DayRunOptions {
  cacheDir: string;
  /** The day file (loadDayFile), checked before anything boots. */
  file: DayFile;
  day: DayOptions;
  runs: ScheduledRun[];
  eject?: Ejection;
  daemon?: DaemonSettings;
  /** Run the day with the scripted model as the daemon's LLM (counts when schedctl asks). */
  llm?: boolean;
  /** Each day event as the console shows it (the live view). */
  onEvent?: (event: DayEvent) => void;
  /** Each raw console line (SCHEDCTL_VM_ECHO and debugging). */
  onLine?: (line: string) => void;
  logger?: Logger;
  /** Boots per attempt to get a guest that did not crash (default 3). */
  attempts?: number;
  signal?: AbortSignal;
  sandbox?: Sandbox;
}

export interface DayOutcome {
  file: DayFile;
  day: DayPhase[];
  runs: ScheduledRun[];
  records: RunRecord[];
  events: DayEvent[];
  vm: VmResult;
  /** Boots the emulator crashed and that were run again. */
  reruns: number;
  /** Whether schedctld's auto mode could decide and deploy in the VM (else the autopilot runs only observe). */
  autoMode: AutoModeStatus;
  /** The daemons had the scripted model as their LLM. */
  llm: boolean;
}

/** A generous bound on the boot: every run's daemon start, its phases and its wind-down. */
export function dayTimeoutMs(day: readonly DayPhase[], runs: number): number {
  return Math.round((runs * (daySeconds(day) + DAEMON_START_SECONDS + 45) + 120) * 1000 * 1.3);
}

export async function runDay(options: DayRunOptions): Promise<DayOutcome> {
  assertReadyForDay({ cacheDir: options.cacheDir });
  const day = buildDay(options.file, options.day);
  const units = dayUnits(options.file);
  const work = mkdtempSync(join(tmpdir(), "schedctl-day-"));
  try {
    const jsRoot = join(work, "jsdist");
    transpileForGuest(PROJECT_ROOT, jsRoot);
    const sandbox =
      options.sandbox ?? createQemuSandbox({ cacheDir: options.cacheDir, logger: options.logger });
    const ids = await guestCgroupIds(sandbox, options.cacheDir, units);
    const objects = await prebuildForGuest(options.cacheDir, join(work, "build"), ids, units);
    const config = join(work, "schedctl.toml");
    const settings = options.daemon ?? DEFAULT_DAEMON_SETTINGS;
    writeFileSync(
      config,
      daemonConfigToml(options.llm ? { ...settings, llmPort: GUEST_MODEL_PORT } : settings),
    );
    const script = guestScript({
      day,
      units,
      runs: options.runs,
      dumpScript: `${GUEST_JS_ROOT}/src/demo/guest-dump.js`,
      daemonStartSeconds: DAEMON_START_SECONDS,
      eject: options.eject,
      ...(options.llm && {
        model: { script: `${GUEST_JS_ROOT}/src/demo/scripted-model.js`, port: GUEST_MODEL_PORT },
      }),
    });
    const { result, reruns } = await runRetryingCrashes(
      sandbox,
      {
        script,
        files: [
          { hostPath: jsRoot, guestPath: GUEST_JS_ROOT },
          { hostPath: config, guestPath: GUEST_CONFIG },
          ...objects,
          ...dayFiles(options.file),
        ],
        timeoutMs: dayTimeoutMs(day, options.runs.length),
        signal: options.signal,
        onLine: (line) => {
          options.onLine?.(line);
          const event = parseConsoleLine(line);
          if (event) options.onEvent?.(event);
        },
      },
      options.attempts ?? 3,
      options.logger,
    );
    const events = parseConsole(result.console);
    return {
      file: options.file,
      day,
      runs: options.runs,
      records: collectRuns(events, day),
      events,
      vm: result,
      reruns,
      autoMode: autoModeInVm(PROJECT_ROOT),
      llm: options.llm === true,
    };
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

/** Why a finished boot cannot be read as a day, or undefined when it can. */
export function dayFailure(outcome: DayOutcome): string | undefined {
  const { vm } = outcome;
  const tail = vm.console.split("\n").slice(-30).join("\n");
  if (vm.timedOut) return `the VM run timed out after ${Math.round(vm.durationMs / 1000)} s\n${tail}`;
  if (vm.crashed) return `the guest crashed on every attempt (${vm.crashLine})\n${tail}`;
  if (vm.exitCode !== 0) return `the guest script ended with status ${vm.exitCode}\n${tail}`;
  const finished = outcome.records.filter((r) => r.end !== undefined).length;
  if (finished < outcome.runs.length)
    return `only ${finished} of ${outcome.runs.length} runs finished\n${tail}`;
  return undefined;
}
