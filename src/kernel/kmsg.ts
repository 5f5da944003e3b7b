import { closeSync, constants, fstatSync, openSync, readSync } from "node:fs";
import type { Host } from "../host/host.ts";
import type { KernelEvent } from "./types.ts";

// The kernel log's sched_ext messages, read from /dev/kmsg (one record per read: "PRI,SEQ,
// USEC,FLAGS;TEXT", continuation lines start with a space). A fixture file with the same
// record lines works too, which is how the unit tests drive it.

/** The sched_ext event in one kmsg record (or plain dmesg line), or undefined. */
export function parseKmsgRecord(record: string, at: number): KernelEvent | undefined {
  const firstLine = record.split("\n", 1)[0] ?? "";
  const semicolon = firstLine.indexOf(";");
  const text = (/^\d+,\d+,\d+,[^;]*;/.test(firstLine) ? firstLine.slice(semicolon + 1) : firstLine)
    .replace(/^\[\s*\d+\.\d+\]\s*/, "")
    .trim();
  if (!text.startsWith("sched_ext:")) return undefined;
  const body = text.slice("sched_ext:".length).trim();
  const enabled = /^BPF scheduler "([^"]*)" enabled/.exec(body);
  if (enabled) return { at, kind: "enabled", ops: enabled[1], reason: "enabled", raw: text };
  const disabled = /^BPF scheduler "([^"]*)" disabled \((.*)\)\s*$/.exec(body);
  if (disabled) return { at, kind: "disabled", ops: disabled[1], reason: disabled[2]!, raw: text };
  // "NAME: watchdog failed to check in for 3.004s", "NAME: COMM[PID] failed to run for 34.9s"
  const detail = /^([\w.-]+): (.+)$/.exec(body);
  if (detail) return { at, kind: "error", ops: detail[1], reason: detail[2]!, raw: text };
  return { at, kind: "warning", ops: undefined, reason: body, raw: text };
}

export class KmsgReader {
  readonly #path: string;
  readonly #now: () => number;
  #fd: number | undefined;
  #isFile = false;
  #offset = 0;
  #partial = "";
  readonly #buffer = Buffer.allocUnsafe(16 * 1024);

  /** Opens the log and skips what is already in it: only later messages are reported. */
  constructor(host: Host, now: () => number = Date.now, hostPath = "/dev/kmsg") {
    this.#path = host.resolve(hostPath);
    this.#now = now;
    this.#open();
    this.#readRecords();
  }

  /** sched_ext events logged since the last call. */
  read(): KernelEvent[] {
    const at = this.#now();
    return this.#readRecords()
      .map((r) => parseKmsgRecord(r, at))
      .filter((e): e is KernelEvent => e !== undefined);
  }

  close(): void {
    if (this.#fd !== undefined) closeSync(this.#fd);
    this.#fd = undefined;
  }

  #open(): void {
    try {
      this.#fd = openSync(this.#path, constants.O_RDONLY | constants.O_NONBLOCK);
      this.#isFile = fstatSync(this.#fd).isFile();
    } catch {
      this.#fd = undefined; // no kernel log to read (unprivileged, or a fixture without one)
    }
  }

  #readRecords(): string[] {
    if (this.#fd === undefined) return [];
    const records: string[] = [];
    for (;;) {
      let n: number;
      try {
        n = readSync(this.#fd, this.#buffer, 0, this.#buffer.length, this.#isFile ? this.#offset : null);
      } catch (error) {
        const code = (error as NodeJS.ErrnoException).code;
        if (code === "EPIPE") continue; // records were overwritten before we read them: go on
        if (code === "EAGAIN") break;
        throw error;
      }
      if (n === 0) break;
      const chunk = this.#buffer.toString("utf8", 0, n);
      if (this.#isFile) {
        this.#offset += n;
        const text = this.#partial + chunk;
        const lines = text.split("\n");
        this.#partial = lines.pop() ?? "";
        records.push(...lines.filter((l) => l && !l.startsWith(" ")));
      } else {
        records.push(chunk);
      }
    }
    return records;
  }
}
