// bench:autopilot: a day of workloads in the sched_ext VM, schedctl against the kernel's
// default. The default (schedctld observing) and the learned day run 3 times each, interleaved,
// after day 1 on an empty store; every KPI is the median over those runs, with the default-
// against-itself band beside each ratio. Prints the per-phase table and ends with one line, the
// day file's [summary] figures around the autopilot's own; for the built-in day (our own
// generators):
//   autopilot: latency_p50_ratio=L latency_p99_ratio=A build_ratio=B batch_ratio=C
//              mixed_p99_ratio=D adapt_s=E regressions=K worst_ratio=W rollbacks=R noise_p99=N
//   npm run bench:autopilot [-- --day FILE]      (default days/builtin.toml)
// Options (environment): AUTOPILOT_PHASE_SECONDS (15), AUTOPILOT_REPETITIONS (3),
// AUTOPILOT_SEED (1), AUTOPILOT_OUT (where the timeline picture goes; default a temp dir),
// AUTOPILOT_LLM=1 (the daemons consult a scripted model as their LLM; the LLM calls per phase
// are printed after the table).
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { buildSchedule } from "../src/demo/day.ts";
import { BUILTIN_DAY } from "../src/demo/day-file.ts";
import { readDay, showDay } from "../src/demo/demo.ts";
import { defaultCacheDir } from "../src/sandbox/kernel-image.ts";

const { values } = parseArgs({ options: { day: { type: "string", default: BUILTIN_DAY } } });
const phaseSeconds = Number(process.env.AUTOPILOT_PHASE_SECONDS ?? 15);
const repetitions = Number(process.env.AUTOPILOT_REPETITIONS ?? 3);
const seed = Number(process.env.AUTOPILOT_SEED ?? 1);
const file = readDay(values.day, process.stderr);

process.exitCode = file
  ? await showDay({
      io: { out: process.stdout, err: process.stderr },
      live: false,
      cacheDir: defaultCacheDir(),
      file,
      day: { seed, phaseSeconds, pauseSeconds: 8 },
      runs: buildSchedule(repetitions),
      outDir: process.env.AUTOPILOT_OUT ?? join(tmpdir(), "schedctl-autopilot"),
      llm: process.env.AUTOPILOT_LLM === "1",
    })
  : 2;
