import { type FileReader, type Host, isGone } from "../host/host.ts";
import type { Logger } from "../log/logger.ts";
import { countLines, parseCpuStat, parseIoStat, parsePressureTotals } from "./parse.ts";
import type { CgroupSample } from "./types.ts";

export interface CgroupTreeOptions {
  /** Where cgroup2 is mounted (host path). */
  mount: string;
  /** Roots relative to the mount ("/", "/system.slice"). */
  roots: readonly string[];
  /** Levels below each root that are sampled (0: the root alone). */
  maxDepth: number;
}

export interface CgroupReading {
  /** Cgroups read this time whose counters moved, or every cgroup on the first reading. */
  changed: CgroupSample[];
  /** Cgroups that vanished since the last reading (with their known descendants). */
  removed: string[];
}

/** Signals every v2 cgroup has: cpu.stat and its pressure files. */
const PRESSURE = [
  ["cpu.pressure", "cpuSomeUs", "cpuFullUs"],
  ["memory.pressure", "memSomeUs", "memFullUs"],
  ["io.pressure", "ioSomeUs", "ioFullUs"],
] as const;

class Gone extends Error {}

const SLOW_EVERY = 5;

/** A file of one cgroup: absent until it first reads (its controller may be off). */
class CgroupFile {
  reader: FileReader | undefined;
  present: boolean | undefined;

  constructor(host: Host, hostPath: string) {
    this.reader = host.openReader(hostPath);
  }

  /** The text; undefined when the file does not exist here; throws Gone when the cgroup vanished. */
  read(): string | undefined {
    if (this.present === false || !this.reader) return undefined;
    try {
      const text = this.reader.read();
      this.present = true;
      return text;
    } catch (error) {
      if (!isGone(error)) throw error;
      // A file that read before and now is missing means the cgroup itself went away.
      if (this.present) throw new Gone();
      this.present = false;
      this.reader.close();
      this.reader = undefined;
      return undefined;
    }
  }

  close(): void {
    this.reader?.close();
  }
}

class Node {
  readonly path: string;
  readonly hostPath: string;
  readonly depth: number;
  readonly cpuStat: CgroupFile;
  readonly pressure: CgroupFile[];
  readonly memory: CgroupFile;
  readonly io: CgroupFile;
  readonly threads: CgroupFile;
  readonly stat: CgroupFile;
  statText: string | undefined;
  /** Set when cgroups may have appeared or vanished below since this cgroup last looked. */
  mustCheckTree = true;
  /** Readings left before the slow signals are read again (0: this time). */
  slowCountdown = 0;
  last: CgroupSample | undefined;
  children = new Map<string, Node>();

  constructor(host: Host, mount: string, path: string, depth: number) {
    this.path = path;
    this.depth = depth;
    this.hostPath = path === "/" ? mount : mount + path;
    const file = (name: string) => new CgroupFile(host, `${this.hostPath}/${name}`);
    this.cpuStat = file("cpu.stat");
    this.pressure = PRESSURE.map(([name]) => file(name));
    this.memory = file("memory.current");
    this.io = file("io.stat");
    this.threads = file("cgroup.threads");
    this.stat = file("cgroup.stat");
  }

  close(): void {
    for (const f of [this.cpuStat, ...this.pressure, this.memory, this.io, this.threads, this.stat])
      f.close();
    for (const child of this.children.values()) child.close();
  }
}

/**
 * Walks the cgroup2 subtrees under the configured roots. A cgroup whose CPU usage did not move
 * since the last reading is idle, and so is everything below it (a parent's usage includes its
 * descendants'): its subtree is not read at all. Descriptors stay open
 * between readings; a cgroup that vanishes (ENOENT/ENODEV, before or during its reads) is dropped
 * with its subtree and reported in `removed`.
 */
export class CgroupTree {
  readonly #host: Host;
  readonly #options: CgroupTreeOptions;
  readonly #log: Logger;
  readonly #roots = new Map<string, Node | undefined>();
  readonly #warned = new Set<string>();
  #first = true;

  constructor(host: Host, options: CgroupTreeOptions, log: Logger) {
    this.#host = host;
    this.#options = options;
    this.#log = log;
    for (const root of distinctRoots(options.roots)) this.#roots.set(root, undefined);
  }

  read(): CgroupReading {
    const out: CgroupReading = { changed: [], removed: [] };
    const full = this.#first;
    this.#first = false;
    for (const [path, node] of this.#roots) {
      if (node) {
        this.#visit(node, full, true, out);
        if (out.removed.includes(node.path)) this.#roots.set(path, undefined);
      } else if (this.#host.exists(this.#hostPath(path))) {
        const fresh = new Node(this.#host, this.#options.mount, path, 0);
        this.#roots.set(path, fresh);
        this.#visit(fresh, true, true, out);
        if (out.removed.includes(path)) this.#roots.set(path, undefined);
      } else {
        this.#warnOnce(
          path,
          `cgroup root ${path} does not exist under ${this.#options.mount}; it is skipped`,
        );
      }
    }
    return out;
  }

  /** How many cgroups are known (sampled at least once and not gone). */
  get size(): number {
    let n = 0;
    const count = (node: Node) => {
      n++;
      for (const c of node.children.values()) count(c);
    };
    for (const node of this.#roots.values()) if (node) count(node);
    return n;
  }

  close(): void {
    for (const node of this.#roots.values()) node?.close();
    this.#roots.clear();
  }

  /**
   * `treeMayChange`: the parent's cgroup.stat (descendant counts) moved, so cgroups may have been
   * created or removed below it. When it did not, nothing below needs listing again, and the
   * child's own cgroup.stat need not be read either.
   */
  #visit(node: Node, force: boolean, treeMayChange: boolean, out: CgroupReading): void {
    node.mustCheckTree ||= treeMayChange;
    let sample: CgroupSample | undefined;
    try {
      const cpuText = this.#guard(node, node.cpuStat);
      if (cpuText !== undefined) {
        // The idle test reads one file: a cgroup whose CPU usage did not move is skipped with
        // its subtree (a cgroup using no CPU at all still shows in its ancestors' pressure).
        if (!force && node.last && usageOf(cpuText) === node.last.usageUs) return;
        sample = this.#readNode(node, cpuText);
      }
    } catch (error) {
      if (!(error instanceof Gone)) throw error;
    }
    if (!sample) {
      this.#drop(node, out);
      return;
    }
    out.changed.push(sample);
    node.last = sample;
    if (node.depth >= this.#options.maxDepth) return;
    let below = false;
    if (force || (node.mustCheckTree && this.#treeChanged(node))) {
      if (!this.#relist(node, out)) return;
      below = true;
    }
    node.mustCheckTree = false;
    for (const [name, child] of node.children) {
      this.#visit(child, force || child.last === undefined, below, out);
      if (out.removed.at(-1) === child.path) node.children.delete(name);
    }
  }

  /**
   * Whether cgroups may have been created or removed below: its cgroup.stat changed, or there is
   * no cgroup.stat to tell. Listing a directory costs far more than a read.
   */
  #treeChanged(node: Node): boolean {
    let text: string | undefined;
    try {
      text = this.#guard(node, node.stat);
    } catch {
      return true;
    }
    if (text === undefined) return true;
    const changed = text !== node.statText;
    node.statText = text;
    return changed;
  }

  /** Brings the known children in line with the directory; false when the cgroup itself is gone. */
  #relist(node: Node, out: CgroupReading): boolean {
    const entries = this.#host.listDir(node.hostPath);
    if (!entries) {
      this.#drop(node, out);
      return false;
    }
    const seen = new Set<string>();
    for (const entry of entries) {
      if (!entry.isDirectory) continue;
      seen.add(entry.name);
      if (node.children.has(entry.name)) continue;
      const childPath = node.path === "/" ? `/${entry.name}` : `${node.path}/${entry.name}`;
      node.children.set(entry.name, new Node(this.#host, this.#options.mount, childPath, node.depth + 1));
    }
    for (const [name, child] of node.children) {
      if (seen.has(name)) continue;
      node.children.delete(name);
      this.#drop(child, out);
    }
    return true;
  }

  /** Reads every file of a cgroup whose cpu.stat was just read; Gone when it vanished meanwhile. */
  #readNode(node: Node, cpuText: string): CgroupSample {
    const sample: CgroupSample = { path: node.path, ...parseCpuStat(cpuText) };
    this.#readPressure(node, 0, sample);
    // Memory and io (pressure, usage, counters) and the thread count are read every SLOW_EVERY
    // readings of an active cgroup: profiles use only CPU each second, and these are 5 of 7 reads.
    if (node.slowCountdown-- > 0) return sample;
    node.slowCountdown = SLOW_EVERY - 1;
    this.#readPressure(node, 1, sample);
    this.#readPressure(node, 2, sample);
    const memory = this.#guard(node, node.memory);
    if (memory !== undefined) sample.memoryBytes = Number(memory);
    const io = this.#guard(node, node.io);
    if (io !== undefined) {
      const t = parseIoStat(io);
      sample.ioReadBytes = t.rbytes;
      sample.ioWriteBytes = t.wbytes;
      sample.ioReadOps = t.rios;
      sample.ioWriteOps = t.wios;
    }
    const threads = this.#guard(node, node.threads);
    if (threads !== undefined) sample.tasks = countLines(threads);
    return sample;
  }

  #readPressure(node: Node, k: number, sample: CgroupSample): void {
    const text = this.#guard(node, node.pressure[k]!);
    if (text === undefined) return;
    const totals = parsePressureTotals(text);
    const [, someKey, fullKey] = PRESSURE[k]!;
    sample[someKey] = totals.some;
    if (totals.full !== undefined) sample[fullKey] = totals.full;
  }

  /** Reads a file of a cgroup, turning errors other than "gone" into one warning and no value. */
  #guard(node: Node, file: CgroupFile): string | undefined {
    try {
      return file.read();
    } catch (error) {
      if (error instanceof Gone) throw error;
      this.#warnOnce(
        `${node.hostPath}:${(error as { code?: string }).code}`,
        `${(error as Error).message}; that signal is skipped for ${node.path}`,
      );
      file.present = false;
      return undefined;
    }
  }

  #drop(node: Node, out: CgroupReading): void {
    const walk = (n: Node) => {
      for (const c of n.children.values()) walk(c);
      out.removed.push(n.path);
    };
    walk(node);
    node.close();
  }

  #hostPath(path: string): string {
    return path === "/" ? this.#options.mount : this.#options.mount + path;
  }

  #warnOnce(key: string, message: string): void {
    if (this.#warned.has(key)) return;
    this.#warned.add(key);
    this.#log.warn({}, message);
  }
}

/** usage_usec, the first line of cpu.stat, without parsing the rest. */
function usageOf(cpuText: string): number {
  if (!cpuText.startsWith("usage_usec ")) return parseCpuStat(cpuText).usageUs;
  const end = cpuText.indexOf("\n");
  return Number(cpuText.slice(11, end < 0 ? cpuText.length : end));
}

/** Roots without those nested in another root ("/" covers everything). */
function distinctRoots(roots: readonly string[]): string[] {
  const clean = [...new Set(roots.map((r) => (r.length > 1 && r.endsWith("/") ? r.slice(0, -1) : r)))].sort();
  return clean.filter((r) => !clean.some((o) => o !== r && (o === "/" || r.startsWith(`${o}/`))));
}
