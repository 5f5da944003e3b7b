import { appendFileSync, mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { createLogger } from "../log/logger.ts";
import { defaultCacheDir, ensureSandboxKernel } from "../sandbox/kernel-image.ts";
import { defaultTcgThread } from "../sandbox/qemu.ts";
import { forTerminal, forTerminalBlock } from "../text/untrusted.ts";
import { buildDay, buildSchedule, type DayOptions, isIdle, type ScheduledRun } from "./day.ts";
import { BUILTIN_DAY, type DayFile, DayFileError, loadDayFile } from "./day-file.ts";
import type { DayEvent } from "./events.ts";
import { LiveView } from "./live.ts";
import { PreflightError } from "./preflight.ts";
import { presentDay, subtitleOf } from "./present.ts";
import { dayFailure, runDay } from "./run.ts";

// `schedctl demo` / `npm run demo`: the day in the sched_ext VM, shown live, then the table and
// the timeline picture. Shorter than the bench: one default run, day 1 and one learned day.

export const DEMO_USAGE =
  "schedctl demo [--day FILE] [--phase-seconds N] [--repetitions N] [--seed N] [--out DIR] [--eject] [--llm] [--cache-dir DIR]";

export interface DemoIo {
  out: NodeJS.WritableStream & { isTTY?: boolean };
  err: NodeJS.WritableStream;
}

export async function demo(
  argv: string[],
  io: DemoIo = { out: process.stdout, err: process.stderr },
): Promise<number> {
  let values: Record<string, string | boolean | undefined>;
  try {
    ({ values } = parseArgs({
      args: argv,
      options: {
        day: { type: "string", default: BUILTIN_DAY },
        "phase-seconds": { type: "string", default: "15" },
        repetitions: { type: "string", default: "1" },
        seed: { type: "string", default: "1" },
        out: { type: "string", default: "schedctl-demo" },
        eject: { type: "boolean", default: false },
        llm: { type: "boolean", default: false },
        "cache-dir": { type: "string" },
      },
      strict: true,
    }));
  } catch (error) {
    io.err.write(`schedctl demo: ${(error as Error).message}\nusage: ${DEMO_USAGE}\n`);
    return 2;
  }
  const phaseSeconds = Number(values["phase-seconds"]);
  const repetitions = Number(values.repetitions);
  const seed = Number(values.seed);
  if (
    !(phaseSeconds >= 10 && phaseSeconds <= 600) ||
    !Number.isInteger(repetitions) ||
    repetitions < 1 ||
    !Number.isInteger(seed)
  ) {
    io.err.write(
      "schedctl demo: --phase-seconds must be 10..600, --repetitions a whole number >= 1, --seed a whole number\n",
    );
    return 2;
  }
  const file = readDay(values.day as string, io.err);
  if (!file) return 2;
  const day: DayOptions = { seed, phaseSeconds, pauseSeconds: 5 };
  const runs = buildSchedule(repetitions);
  const result = await showDay({
    io,
    cacheDir: (values["cache-dir"] as string | undefined) ?? defaultCacheDir(),
    file,
    day,
    runs,
    eject: values.eject ? ejectionFor(runs, file, day) : undefined,
    llm: values.llm === true,
    outDir: values.out as string,
  });
  return result;
}

/** The day file, or undefined after saying on `err` what is wrong with it (before any boot). */
export function readDay(path: string, err: NodeJS.WritableStream): DayFile | undefined {
  try {
    return loadDayFile(path);
  } catch (error) {
    if (!(error instanceof DayFileError)) throw error;
    err.write(`${forTerminal(error.message)}\n`);
    return undefined;
  }
}

/**
 * The ejection the demo injects: in the learned day's last phase of work of the file's first
 * pass (the built-in day's mixed phase), a third of the way in.
 */
function ejectionFor(runs: ScheduledRun[], file: DayFile, day: DayOptions) {
  const learned = runs.find((r) => r.mode === "learned") ?? runs.at(-1)!;
  const work = buildDay(file, { ...day, short: true }).filter((p) => !isIdle(p));
  const phase = work.at(-1) ?? buildDay(file, day)[0]!;
  return { run: learned.index, phase: phase.index, afterSeconds: Math.round(phase.seconds / 3) };
}

export interface ShowDayOptions {
  io: DemoIo;
  cacheDir: string;
  file: DayFile;
  day: DayOptions;
  runs: ScheduledRun[];
  eject?: { run: number; phase: number; afterSeconds: number };
  outDir: string | undefined;
  /** Redraw the status block on a terminal (default); false prints only the log lines (the bench). */
  live?: boolean;
  /** The daemons consult a scripted model as their LLM (scripted-model.ts); the table counts the calls. */
  llm?: boolean;
}

/** Runs the day with the live view, then prints the table and the final line; returns the exit status. */
export async function showDay(options: ShowDayOptions): Promise<number> {
  const { io } = options;
  const view = new LiveView(buildDay(options.file, options.day), options.runs);
  const tty = options.live !== false && io.out.isTTY === true && !process.env.NO_COLOR;
  let drawn = 0;
  const draw = (lines: string[]) => {
    if (!tty) {
      for (const l of lines) io.out.write(`${forTerminal(l)}\n`);
      return;
    }
    // Erase the status block, print the new log lines, draw the block again under them.
    if (drawn) io.out.write(`\x1b[${drawn}A\x1b[J`);
    for (const l of lines) io.out.write(`${forTerminal(l)}\n`);
    const status = view.render();
    io.out.write(`\x1b[1m${status.map((l) => forTerminal(l)).join("\n")}\x1b[0m\n`);
    drawn = status.length;
  };
  const onEvent = (event: DayEvent) => {
    const lines = view.push(event);
    if (lines.length || (tty && event.kind === "round")) draw(lines);
  };
  const ticker = tty ? setInterval(() => draw([]), 1000) : undefined;
  const started = Date.now();
  // The whole console, kept beside the picture (created with the first line, so a preflight
  // failure leaves nothing behind): a boot the emulator crashes late still leaves its finished
  // runs to read.
  let consoleLog: string | undefined;
  const keep = (line: string) => {
    if (!options.outDir) return;
    if (!consoleLog) {
      mkdirSync(options.outDir, { recursive: true });
      consoleLog = join(options.outDir, "console.log");
      writeFileSync(consoleLog, "");
    }
    appendFileSync(consoleLog, `${line}\n`);
  };
  io.out.write("booting the sched_ext VM (kernel under qemu TCG); the day's phases follow\n");
  let outcome: Awaited<ReturnType<typeof runDay>>;
  try {
    outcome = await runDay({
      cacheDir: options.cacheDir,
      file: options.file,
      day: options.day,
      runs: options.runs,
      eject: options.eject,
      llm: options.llm,
      onEvent,
      onLine: (line) => {
        if (process.env.SCHEDCTL_VM_ECHO) io.err.write(`vm| ${forTerminal(line)}\n`);
        keep(line);
      },
      // A boot the emulator crashed is run again from the start: say so (as JSON on stderr).
      logger: createLogger({ level: "warn" }),
    });
  } catch (error) {
    if (ticker) clearInterval(ticker);
    if (error instanceof PreflightError) {
      io.err.write(`${error.message}\n`);
      return 3;
    }
    throw error;
  }
  if (ticker) clearInterval(ticker);
  if (drawn) io.out.write(`\x1b[${drawn}A\x1b[J`);
  const failure = dayFailure(outcome);
  if (failure) {
    io.err.write(`the day did not complete: ${forTerminal(failure)}\n`);
    return 1;
  }
  const kernel = await ensureSandboxKernel({ cacheDir: options.cacheDir });
  const presented = presentDay(outcome, options.outDir, subtitleOf(outcome), {
    mode: defaultTcgThread(),
    kernel: kernel.version,
  });
  const minutes = ((Date.now() - started) / 60000).toFixed(1);
  io.out.write(
    `\n${forTerminalBlock(presented.table)}\n\n${outcome.autoMode.ready ? "" : `note: the autopilot runs could only observe: ${forTerminal(outcome.autoMode.reason)}\n`}` +
      `one boot, ${minutes} min, ${outcome.reruns} rerun(s) after emulator crashes\n`,
  );
  if (presented.svg)
    io.out.write(`timeline picture: ${presented.svg}${presented.png ? ` and ${presented.png}` : ""}\n`);
  io.out.write(`${presented.line}\n`);
  return 0;
}

if (import.meta.main) process.exitCode = await demo(process.argv.slice(2));
