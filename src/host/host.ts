import * as fs from "node:fs";
import { join, resolve } from "node:path";

/**
 * The one way to reach /proc, /sys and the cgroup filesystem. Every path a caller passes is an
 * absolute host path ("/proc/stat"); the Host maps it under its root, so tests drive the code
 * with fixture trees and the daemon (root "/") drives it for real.
 */
export interface Host {
  readonly root: string;
  /** The real filesystem path of a host path. */
  resolve(hostPath: string): string;
  /** The file's text; throws HostError (with the errno code) when it cannot be read. */
  readText(hostPath: string): string;
  /** The file's text, or undefined when the file (or its directory) does not exist. */
  tryReadText(hostPath: string): string | undefined;
  /** Directory entries, or undefined when the directory does not exist. */
  listDir(hostPath: string): DirEntry[] | undefined;
  exists(hostPath: string): boolean;
  /**
   * A reader that keeps the file open and re-reads it from offset 0 on each call. /proc and
   * cgroupfs files are seq_files: a read at offset 0 regenerates them, and a kept descriptor is
   * about 5x cheaper than an open per read.
   */
  openReader(hostPath: string): FileReader;
  writeText(hostPath: string, text: string): void;
  mkdirp(hostPath: string): void;
  /** Removes a file or an (empty or not) directory tree; missing is fine. */
  remove(hostPath: string): void;
}

export interface DirEntry {
  name: string;
  isDirectory: boolean;
}

export interface FileReader {
  readonly hostPath: string;
  /** Fresh content; throws HostError (ENOENT/ENODEV when the file went away). */
  read(): string;
  close(): void;
}

export class HostError extends Error {
  override readonly name = "HostError";
  readonly hostPath: string;
  readonly code: string;

  constructor(hostPath: string, code: string, message: string) {
    super(`${hostPath}: ${message}`);
    this.hostPath = hostPath;
    this.code = code;
  }
}

/** Errno codes that mean "this object is gone" (a vanished cgroup answers ENODEV). */
export function isGone(error: unknown): boolean {
  const code = (error as { code?: string }).code;
  return code === "ENOENT" || code === "ENODEV" || code === "ESRCH" || code === "ENOTDIR";
}

function wrap(hostPath: string, error: unknown): HostError {
  const e = error as NodeJS.ErrnoException;
  return new HostError(hostPath, e.code ?? "EIO", e.code ? `${e.code} (${e.syscall ?? "io"})` : String(e));
}

/**
 * One read buffer shared by every kept reader: reads are synchronous and the text is copied out
 * before read() returns, so sharing is safe, and a daemon keeping thousands of descriptors open
 * does not hold a buffer for each.
 */
let sharedBuffer = Buffer.allocUnsafe(64 * 1024);

export function createHost(root = "/"): Host {
  const base = resolve(root);
  const map = (hostPath: string) => (base === "/" ? hostPath : join(base, hostPath));
  return {
    root: base,
    resolve: map,
    readText(hostPath) {
      try {
        return fs.readFileSync(map(hostPath), "utf8");
      } catch (error) {
        throw wrap(hostPath, error);
      }
    },
    tryReadText(hostPath) {
      try {
        return fs.readFileSync(map(hostPath), "utf8");
      } catch (error) {
        if (isGone(error)) return undefined;
        throw wrap(hostPath, error);
      }
    },
    listDir(hostPath) {
      try {
        return fs
          .readdirSync(map(hostPath), { withFileTypes: true })
          .map((d) => ({ name: d.name, isDirectory: d.isDirectory() }));
      } catch (error) {
        if (isGone(error)) return undefined;
        throw wrap(hostPath, error);
      }
    },
    exists(hostPath) {
      return fs.existsSync(map(hostPath));
    },
    openReader(hostPath) {
      return new KeptFileReader(hostPath, map(hostPath));
    },
    writeText(hostPath, text) {
      try {
        fs.writeFileSync(map(hostPath), text);
      } catch (error) {
        throw wrap(hostPath, error);
      }
    },
    mkdirp(hostPath) {
      try {
        fs.mkdirSync(map(hostPath), { recursive: true });
      } catch (error) {
        throw wrap(hostPath, error);
      }
    },
    remove(hostPath) {
      try {
        fs.rmSync(map(hostPath), { recursive: true, force: true });
      } catch (error) {
        throw wrap(hostPath, error);
      }
    },
  };
}

class KeptFileReader implements FileReader {
  #fd: number | undefined;
  readonly hostPath: string;
  readonly #realPath: string;

  constructor(hostPath: string, realPath: string) {
    this.hostPath = hostPath;
    this.#realPath = realPath;
  }

  read(): string {
    try {
      this.#fd ??= fs.openSync(this.#realPath, "r");
      let length = fs.readSync(this.#fd, sharedBuffer, 0, sharedBuffer.length, 0);
      // A file larger than the buffer (a huge io.stat): grow and read again from the start.
      while (length === sharedBuffer.length) {
        sharedBuffer = Buffer.allocUnsafe(sharedBuffer.length * 2);
        length = fs.readSync(this.#fd, sharedBuffer, 0, sharedBuffer.length, 0);
      }
      return sharedBuffer.toString("utf8", 0, length);
    } catch (error) {
      this.close();
      throw wrap(this.hostPath, error);
    }
  }

  close(): void {
    if (this.#fd !== undefined) {
      try {
        fs.closeSync(this.#fd);
      } catch {
        // already closed by the kernel side going away; nothing to release
      }
      this.#fd = undefined;
    }
  }
}
