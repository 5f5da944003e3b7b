// Fetches and caches the sandbox kernel: the newest Debian cloud kernel (trixie-backports) built
// with sched_ext, plus what BPF programs need from it (vmlinux with BTF, vmlinux.h, its config).
// apt runs with a private sources file and lists directory under the cache: the host's own apt
// setup is never read or changed, and nothing is installed.
//
//   node src/sandbox/kernel-image.ts [--refresh]   prints the cached paths as JSON
import { type ChildProcessByStdio, spawn } from "node:child_process";
import {
  closeSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { homedir } from "node:os";
import { join } from "node:path";
import type { Readable, Writable } from "node:stream";
import type { Logger } from "../log/logger.ts";
import { requireTool, run } from "./exec.ts";

export interface SandboxKernel {
  /** The kernel release, as `uname -r` prints it inside the guest (e.g. 7.3.4+deb13-cloud-amd64). */
  version: string;
  vmlinuz: string;
  /** The uncompressed ELF kernel, carrying the BTF that libbpf and bpftool read. */
  vmlinux: string;
  vmlinuxH: string;
  config: string;
}

export interface KernelImageOptions {
  /** Default: defaultCacheDir(). The kernel goes under `<cacheDir>/kernel/<version>/`. */
  cacheDir?: string;
  logger?: Logger;
  /** Ask the mirror for a newer kernel even when one is cached. */
  refresh?: boolean;
  /** Default http://deb.debian.org/debian. */
  mirror?: string;
}

const SUITE = "trixie-backports";
const BINARY_PACKAGE = /^linux-binary-(\d[\w.+~]*-cloud-amd64)$/;
const FILES = ["vmlinuz", "vmlinux", "vmlinux.h", "config"] as const;
/** Only a few of the newest kernels are tried: an older one without sched_ext means none will have it. */
const MAX_CANDIDATES = 3;

/** $SCHEDCTL_CACHE_DIR, else ~/.cache/schedctl (tests, development); the daemon passes its own. */
export function defaultCacheDir(): string {
  return process.env.SCHEDCTL_CACHE_DIR || join(homedir(), ".cache", "schedctl");
}

/** The cached sched_ext kernel, fetched and derived first if the cache holds none. */
export async function ensureSandboxKernel(options: KernelImageOptions = {}): Promise<SandboxKernel> {
  const root = join(options.cacheDir ?? defaultCacheDir(), "kernel");
  const cached = newestCached(root);
  if (cached && !options.refresh) return cached;

  const tools = {
    zstd: requireTool("zstd", "zstd", "to decompress vmlinuz into vmlinux"),
    bpftool: requireTool("bpftool", "-t bookworm-backports bpftool", "to write vmlinux.h"),
  };
  const apt = new PrivateApt(join(root, "apt"), options.mirror);
  let versions: string[];
  try {
    versions = await apt.cloudKernelVersions();
  } catch (error) {
    if (cached) {
      options.logger?.warn({ err: String(error) }, "cannot reach the Debian mirror; using the cached kernel");
      return cached;
    }
    throw new Error(
      `cannot list Debian's ${SUITE} kernels (no network to ${apt.mirror}?): ${(error as Error).message}\n` +
        "The sandbox kernel is fetched once and cached; run `node src/sandbox/kernel-image.ts` " +
        "(or scripts/setup.sh) on a machine that reaches the Debian mirror.",
    );
  }
  if (cached && versions[0] && compareVersions(versions[0], cached.version) <= 0) return cached;

  const rejected: string[] = [];
  for (const version of versions.slice(0, MAX_CANDIDATES)) {
    const dir = join(root, version);
    if (isComplete(dir)) return paths(dir, version);
    options.logger?.info({ version }, "fetching the sandbox kernel");
    const work = join(root, `${version}.tmp-${process.pid}`);
    rmSync(work, { recursive: true, force: true });
    try {
      const config = await fetchKernel(apt, version, work);
      if (!/^CONFIG_SCHED_CLASS_EXT=y$/m.test(config)) {
        rejected.push(version);
        continue;
      }
      await deriveBtf(work, tools);
      publish(work, dir);
      options.logger?.info({ version, dir }, "sandbox kernel cached");
      return paths(dir, version);
    } finally {
      rmSync(work, { recursive: true, force: true });
    }
  }
  if (cached) return cached;
  throw new Error(
    `no Debian cloud kernel with CONFIG_SCHED_CLASS_EXT=y found in ${SUITE} ` +
      `(tried: ${rejected.join(", ") || "none listed"}); sched_ext needs Linux >= 6.12 built with it`,
  );
}

/** apt-get and apt-cache confined to a directory of their own, reading trixie-backports. */
export class PrivateApt {
  readonly mirror: string;
  private readonly dir: string;
  private readonly tools: { aptGet: string; aptCache: string; dpkgDeb: string };

  /** `dir` holds its sources, lists and download cache (`<cacheDir>/kernel/apt`). */
  constructor(dir: string, mirror = "http://deb.debian.org/debian") {
    this.dir = dir;
    this.mirror = mirror;
    this.tools = {
      aptGet: requireTool("apt-get", "apt", "to fetch the sandbox kernel"),
      aptCache: requireTool("apt-cache", "apt", "to fetch the sandbox kernel"),
      dpkgDeb: requireTool("dpkg-deb", "dpkg", "to unpack the sandbox kernel"),
    };
  }

  private options(): string[] {
    const o = (key: string, value: string) => ["-o", `${key}=${value}`];
    return [
      ...o("Dir::Etc::SourceList", join(this.dir, "sources.list")),
      ...o("Dir::Etc::SourceParts", "/dev/null"),
      ...o("Dir::State::Lists", join(this.dir, "lists")),
      ...o("Dir::State::status", "/dev/null"),
      ...o("Dir::Cache", join(this.dir, "cache")),
      ...o("APT::Architecture", "amd64"),
      ...o("APT::Architectures", "amd64"),
      ...o("APT::Sandbox::User", process.getuid?.() === 0 ? "root" : ""),
      ...o("Debug::NoLocking", "1"),
      ...o("Acquire::Retries", "1"),
      ...o("Acquire::http::Timeout", "30"),
      "-q",
    ];
  }

  /** Fetches the suite's index; returns apt's output. */
  async update(): Promise<string> {
    mkdirSync(join(this.dir, "lists", "partial"), { recursive: true });
    mkdirSync(join(this.dir, "cache", "archives", "partial"), { recursive: true });
    writeFileSync(join(this.dir, "sources.list"), `deb ${this.mirror} ${SUITE} main\n`);
    return run(this.tools.aptGet, [...this.options(), "update"]).catch((error: Error) => {
      throw new Error(`apt-get update failed: ${error.message}`);
    });
  }

  /** Every cloud kernel release the suite lists, newest first. */
  async cloudKernelVersions(): Promise<string[]> {
    const update = await this.update();
    const names = await run(this.tools.aptCache, [...this.options(), "pkgnames", "linux-binary-"]);
    const versions = names
      .split("\n")
      .map((name) => BINARY_PACKAGE.exec(name.trim())?.[1])
      .filter((v): v is string => v !== undefined)
      .sort((a, b) => compareVersions(b, a));
    if (versions.length === 0) {
      throw new Error(
        `the ${SUITE} index lists no linux-binary-*-cloud-amd64 package (apt said: ${update.trim()})`,
      );
    }
    return versions;
  }

  /** Downloads packages (updating the index first if it has none) and unpacks them into `tree`. */
  async unpack(packages: string[], tree: string): Promise<void> {
    if (!existsSync(join(this.dir, "sources.list"))) await this.update();
    const debs = mkdtempSync(join(this.dir, "debs-"));
    try {
      await run(this.tools.aptGet, [...this.options(), "download", ...packages], { cwd: debs });
      mkdirSync(tree, { recursive: true });
      for (const deb of readdirSync(debs)) await run(this.tools.dpkgDeb, ["-x", join(debs, deb), tree]);
    } finally {
      rmSync(debs, { recursive: true, force: true });
    }
  }
}

/** Downloads and unpacks the kernel image and its config into `into`; returns the config text. */
async function fetchKernel(apt: PrivateApt, version: string, into: string): Promise<string> {
  const tree = join(into, "tree");
  await apt.unpack([`linux-binary-${version}`, `linux-base-${version}`], tree);
  const modules = join(tree, "usr", "lib", "modules", version);
  renameSync(join(modules, "vmlinuz"), join(into, "vmlinuz"));
  renameSync(join(modules, "config"), join(into, "config"));
  rmSync(tree, { recursive: true, force: true });
  return readFileSync(join(into, "config"), "utf8");
}

/** vmlinuz -> vmlinux -> vmlinux.h, inside `dir`. */
async function deriveBtf(dir: string, tools: { zstd: string; bpftool: string }): Promise<void> {
  await extractVmlinux(join(dir, "vmlinuz"), join(dir, "vmlinux"), tools.zstd);
  const header = await run(tools.bpftool, ["btf", "dump", "file", join(dir, "vmlinux"), "format", "c"], {
    maxBuffer: 512 * 1024 * 1024,
  });
  writeFileSync(join(dir, "vmlinux.h"), header);
}

const ZSTD_MAGIC = Buffer.from([0x28, 0xb5, 0x2f, 0xfd]);

/**
 * A bzImage carries its payload compressed after a setup header; Debian compresses with zstd.
 * zstd given the file refuses the trailing bytes after the frame, so the frame is piped in.
 */
export async function extractVmlinux(vmlinuz: string, vmlinux: string, zstd: string): Promise<void> {
  const image = readFileSync(vmlinuz);
  const offset = image.indexOf(ZSTD_MAGIC);
  if (offset < 0) throw new Error(`${vmlinuz}: no zstd payload found (not a zstd-compressed bzImage)`);
  await new Promise<void>((resolve, reject) => {
    // -c, not -o: on the trailing-bytes complaint zstd deletes an -o output but keeps what it wrote to stdout.
    const out = openSync(vmlinux, "w");
    const child = spawn(zstd, ["-d", "-q", "-c"], { stdio: ["pipe", out, "pipe"] }) as ChildProcessByStdio<
      Writable,
      null,
      Readable
    >;
    closeSync(out);
    let stderr = "";
    child.stderr.on("data", (chunk: Buffer) => {
      stderr += chunk.toString();
    });
    child.on("error", reject);
    child.on("close", () => {
      // zstd complains about the bytes after the frame; what matters is a whole ELF came out.
      if (existsSync(vmlinux) && readFileSync(vmlinux).subarray(0, 4).toString("latin1") === "\x7fELF")
        resolve();
      else reject(new Error(`zstd could not decompress ${vmlinuz} from offset ${offset}: ${stderr.trim()}`));
    });
    child.stdin.on("error", () => {
      // zstd may stop reading at the end of the frame; the check above decides.
    });
    child.stdin.end(image.subarray(offset));
  });
}

/** Moves the derived files into the version's directory; a concurrent fetch of the same kernel is harmless. */
function publish(work: string, dir: string): void {
  mkdirSync(dir, { recursive: true });
  for (const name of FILES) renameSync(join(work, name), join(dir, name));
}

function isComplete(dir: string): boolean {
  return FILES.every((name) => existsSync(join(dir, name)));
}

function paths(dir: string, version: string): SandboxKernel {
  return {
    version,
    vmlinuz: join(dir, "vmlinuz"),
    vmlinux: join(dir, "vmlinux"),
    vmlinuxH: join(dir, "vmlinux.h"),
    config: join(dir, "config"),
  };
}

function newestCached(root: string): SandboxKernel | undefined {
  if (!existsSync(root)) return undefined;
  const version = readdirSync(root)
    .filter((name) => name.endsWith("-cloud-amd64") && isComplete(join(root, name)))
    .sort(compareVersions)
    .at(-1);
  return version ? paths(join(root, version), version) : undefined;
}

/** Orders kernel releases by their numeric fields: 7.3.4+deb13 > 7.2.12+deb13 > 6.19.14+deb13. */
export function compareVersions(a: string, b: string): number {
  const fields = (v: string) => (v.match(/\d+/g) ?? []).map(Number);
  const [x, y] = [fields(a), fields(b)];
  for (let i = 0; i < Math.max(x.length, y.length); i++) {
    const d = (x[i] ?? -1) - (y[i] ?? -1);
    if (d !== 0) return d;
  }
  return 0;
}

if (import.meta.main) {
  const kernel = await ensureSandboxKernel({ refresh: process.argv.includes("--refresh") });
  process.stdout.write(`${JSON.stringify(kernel, null, 2)}\n`);
}
