import { type FileReader, type Host, isGone } from "../host/host.ts";
import type { Logger } from "../log/logger.ts";

/**
 * One kernel file read every sample through a kept descriptor. A file that is missing is reported
 * as undefined; any other failure (unreadable, not parsable) is logged once per path and cause and
 * also reads as undefined, so one bad file costs one signal, never the sample.
 */
export class KeptSource<T> {
  readonly hostPath: string;
  #reader: FileReader;
  readonly #parse: (text: string) => T;
  readonly #log: Logger;
  #lastProblem: string | undefined;

  constructor(host: Host, hostPath: string, parse: (text: string) => T, log: Logger) {
    this.hostPath = hostPath;
    this.#reader = host.openReader(hostPath);
    this.#parse = parse;
    this.#log = log;
  }

  read(): T | undefined {
    let text: string;
    try {
      text = this.#reader.read();
    } catch (error) {
      if (!isGone(error))
        this.#problem(`cannot read (${(error as { code?: string }).code ?? String(error)})`);
      return undefined;
    }
    try {
      const value = this.#parse(text);
      this.#lastProblem = undefined;
      return value;
    } catch (error) {
      this.#problem(`cannot parse: ${(error as Error).message}`);
      return undefined;
    }
  }

  /** The reason the last read gave nothing, if it was not plain absence. */
  get problem(): string | undefined {
    return this.#lastProblem;
  }

  close(): void {
    this.#reader.close();
  }

  #problem(what: string): void {
    if (this.#lastProblem !== what) this.#log.warn({ path: this.hostPath }, `${this.hostPath}: ${what}`);
    this.#lastProblem = what;
  }
}
