import { closeSync, openSync, readFileSync, writeSync } from "node:fs";
import { gunzipSync } from "node:zlib";
import { type Lack, NO_SCHEDSTATS } from "./system.ts";
import { Sample } from "./types.ts";

// A trace is JSON Lines: one raw Sample per line, exactly as the collectors produced it. Replaying
// a trace feeds the same Samples to the same pipeline as the live host does. Long synthetic
// traces are stored gzipped (NAME.jsonl.gz).

export class TraceError extends Error {
  override readonly name = "TraceError";
}

export interface TraceProblem {
  line: number;
  message: string;
}

export interface ParsedTrace {
  samples: Sample[];
  /** Lines that were skipped, each with the reason (a truncated last line, corrupt JSON, a bad field). */
  problems: TraceProblem[];
}

/** Parses trace text; `name` is used in messages. Bad lines are skipped and reported, never fatal. */
export function parseTrace(text: string): ParsedTrace {
  const samples: Sample[] = [];
  const problems: TraceProblem[] = [];
  const lines = text.split("\n");
  const lastIndex = text.endsWith("\n") ? lines.length - 2 : lines.length - 1;
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!;
    if (line.trim() === "") continue;
    let value: unknown;
    try {
      value = JSON.parse(line);
    } catch (error) {
      const truncated = i === lastIndex && !text.endsWith("\n");
      problems.push({
        line: i + 1,
        message: truncated
          ? "truncated last line (the recording was cut off mid-write)"
          : `not valid JSON: ${(error as Error).message}`,
      });
      continue;
    }
    const parsed = Sample.safeParse(value);
    if (!parsed.success) {
      const issue = parsed.error.issues[0]!;
      problems.push({
        line: i + 1,
        message: `not a sample: ${issue.path.join(".") || "(line)"}: ${issue.message}`,
      });
      continue;
    }
    const previous = samples.at(-1);
    if (previous && parsed.data.mono <= previous.mono) {
      problems.push({
        line: i + 1,
        message: `time goes backwards (mono ${parsed.data.mono} <= ${previous.mono})`,
      });
      continue;
    }
    samples.push(parsed.data);
  }
  return { samples, problems };
}

/** Reads a trace file; a name ending in .gz is gunzipped first. */
export function readTrace(path: string): ParsedTrace {
  let text: string;
  try {
    const bytes = readFileSync(path);
    text = (path.endsWith(".gz") ? gunzipSync(bytes) : bytes).toString("utf8");
  } catch (error) {
    throw new TraceError(`${path}: cannot read the trace: ${(error as Error).message}`);
  }
  return parseTrace(text);
}

/** A trace replayed as a sample source. */
export class TraceSource {
  readonly #samples: Sample[];
  #next = 0;

  constructor(samples: Sample[]) {
    this.#samples = samples;
  }

  next(): Sample | undefined {
    return this.#samples[this.#next++];
  }

  /**
   * What the recorded host lacked, as far as the last sample replayed tells: run delay counted
   * from per-process files means /proc/schedstat was absent there; none at all, that it was
   * present but could not be read (a trace keeps no error code).
   */
  get lacks(): Lack[] {
    const last = this.#samples[this.#next - 1];
    if (!last?.lacks.includes("schedstat")) return [];
    return [
      last.schedstat?.source === "tasks"
        ? {
            signal: "schedstat",
            reason: `/proc/schedstat was absent on the recorded host (${NO_SCHEDSTATS})`,
          }
        : {
            signal: "schedstat",
            reason:
              "/proc/schedstat was present on the recorded host but could not be read (the trace keeps no error code)",
          },
    ];
  }

  close(): void {}
}

/** Appends samples to a trace file, one synchronous write per line (a kill leaves at most one cut line). */
export class TraceWriter {
  readonly path: string;
  #fd: number | undefined;

  constructor(path: string) {
    this.path = path;
    try {
      this.#fd = openSync(path, "w");
    } catch (error) {
      throw new TraceError(`${path}: cannot write the trace: ${(error as Error).message}`);
    }
  }

  write(sample: Sample): void {
    if (this.#fd === undefined) throw new TraceError(`${this.path}: the trace is closed`);
    writeSync(this.#fd, `${JSON.stringify(sample)}\n`);
  }

  close(): void {
    if (this.#fd !== undefined) closeSync(this.#fd);
    this.#fd = undefined;
  }
}
