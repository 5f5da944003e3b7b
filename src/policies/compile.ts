import { createHash } from "node:crypto";
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  renameSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { basename, dirname, join } from "node:path";
import { BPF_INCLUDE_DIR, opsNameOf, type PolicySource } from "./catalogue.ts";
import { requireTool, runTool } from "./tools.ts";
import { canonicalTunables, resolveTunables, TunableError } from "./tunables.ts";
import type { PolicyRef, Tunables, TunableValue } from "./types.ts";

/*
 * Compiling a policy variant into a BPF object, cached by content hash.
 *
 *   const compiler = new PolicyCompiler({ cacheDir, vmlinuxH });
 *   const built = await compiler.compile(builtinPolicy("latency"), { slice_us: 2000 });
 *   built.ref.hash      // sha256 of source + schedctl.h + tunables (+ resolved cgroup ids)
 *   built.objectPath    // <cacheDir>/objects/<hash>.bpf.o, ready for Kernel.verifyLoad/attach
 *
 * Tunables reach the program as -DSCHEDCTL_TUNABLE_<name>=VALUE defines that initialise
 * read-only globals (see bpf/include/schedctl.h): ints as numbers, bools as 0/1, enums as the
 * index of the option, cgroup lists as `{id,...}` plus `<name>_count`, the ids resolved from
 * the paths through resolveCgroupId. Errors: TunableError (bad value), CompileError (clang's
 * diagnostics in .log), ToolMissingError (no clang).
 */

export class CompileError extends Error {
  override readonly name = "CompileError";
  /** The compiler's diagnostics (an excerpt), with paths shown as the policy's file name. */
  readonly log: string;
  constructor(policy: string, log: string) {
    super(`policy ${policy} does not compile:\n${log}`);
    this.log = log;
  }
}

export interface CompilerOptions {
  /** Objects go to <cacheDir>/objects/. */
  cacheDir: string;
  /**
   * vmlinux.h of the kernel the objects are for (CO-RE relocates them to the running one), or
   * where to get it on first use (a host without sched_ext fetches the sandbox kernel's).
   */
  vmlinuxH: string | (() => Promise<VmlinuxHeader>);
  /** cgroup v2 path (relative to the cgroup2 mount) -> cgroup id (the directory's inode). */
  resolveCgroupId?: (path: string) => bigint;
  /** clang executable (default: found on PATH). */
  clang?: string;
  /** Where to look for clang (default: PATH). */
  pathEnv?: string;
  includeDir?: string;
  timeoutMs?: number;
}

export interface VmlinuxHeader {
  path: string;
  /** Whose BTF it was generated from, when that is worth saying (not the host's own kernel). */
  from?: string;
}

export interface CompiledPolicy {
  ref: PolicyRef;
  objectPath: string;
  /** The ops name the object registers (`.name` of its ops table). */
  opsName: string;
  source: string;
  /** True when the object came from the cache. */
  cached: boolean;
  /** The kernel whose vmlinux.h it was compiled against, when not the host's own. */
  compiledAgainst?: string;
}

const CLANG_FLAGS = [
  "-target",
  "bpf",
  "-O2",
  "-g",
  "-D__TARGET_ARCH_x86",
  "-Wall",
  "-Werror=implicit-function-declaration",
  "-Wno-missing-declarations",
];

export class PolicyCompiler {
  readonly #options: CompilerOptions;
  readonly #header: string;
  readonly #includeDir: string;
  #vmlinuxDirFound: Promise<{ dir: string; from?: string }> | undefined;

  constructor(options: CompilerOptions) {
    this.#options = options;
    this.#includeDir = options.includeDir ?? BPF_INCLUDE_DIR;
    this.#header = readFileSync(join(this.#includeDir, "schedctl.h"), "utf8");
  }

  /** The -D defines and content hash of one variant, without compiling it. */
  variant(policy: PolicySource, given: Tunables = {}): { ref: PolicyRef; defines: string[] } {
    const { manifest } = policy;
    const tunables = resolveTunables(manifest, given);
    const defines: string[] = [];
    for (const [name, value] of Object.entries(tunables)) {
      const spec = manifest.tunables[name]!;
      if (spec.type === "cgroups") {
        const ids = (value as string[]).map((path) => this.#cgroupId(manifest.name, name, path));
        defines.push(`SCHEDCTL_TUNABLE_${name}={${ids.length ? ids.join(",") : "0"}}`);
        defines.push(`SCHEDCTL_TUNABLE_${name}_count=${ids.length}`);
      } else if (spec.type === "enum") {
        defines.push(`SCHEDCTL_TUNABLE_${name}=${spec.options.indexOf(value as string)}`);
      } else {
        defines.push(`SCHEDCTL_TUNABLE_${name}=${defineValue(value)}`);
      }
    }
    const hash = createHash("sha256")
      .update("schedctl-policy-v1\0")
      .update(manifest.name)
      .update("\0")
      .update(policy.source)
      .update("\0")
      .update(this.#header)
      .update("\0")
      .update(canonicalTunables(tunables))
      .update("\0")
      .update(defines.join("\n"))
      .digest("hex");
    return { ref: { origin: manifest.origin, name: manifest.name, tunables, hash }, defines };
  }

  async compile(policy: PolicySource, given: Tunables = {}): Promise<CompiledPolicy> {
    const { ref, defines } = this.variant(policy, given);
    const name = policy.manifest.name;
    const opsName = opsNameOf(policy.source);
    if (!opsName) throw new CompileError(name, `${name}.bpf.c: no ops table with a .name = "..." found`);
    const objectsDir = join(this.#options.cacheDir, "objects");
    const objectPath = join(objectsDir, `${ref.hash}.bpf.o`);
    if (existsSync(objectPath)) return { ref, objectPath, opsName, source: policy.source, cached: true };

    const clang =
      this.#options.clang ??
      requireTool("clang", "to compile BPF policies", "clang llvm", this.#options.pathEnv);
    const vmlinux = await this.#vmlinuxDir();
    mkdirSync(objectsDir, { recursive: true });
    const work = mkdtempSync(join(objectsDir, ".build-"));
    try {
      const sourceFile = join(work, `${name}.bpf.c`);
      writeFileSync(sourceFile, policy.source);
      const out = join(work, "out.o");
      const args = [
        ...CLANG_FLAGS,
        `-I${this.#includeDir}`,
        `-I${vmlinux.dir}`,
        ...defines.map((d) => `-D${d}`),
        "-c",
        sourceFile,
        "-o",
        out,
      ];
      const run = await runTool(clang, args, { timeoutMs: this.#options.timeoutMs ?? 120_000, cwd: work });
      if (run.code !== 0 || !existsSync(out)) {
        const diagnostics = run.timedOut ? "clang timed out" : run.stderr.replaceAll(`${work}/`, "");
        throw new CompileError(name, excerptDiagnostics(diagnostics));
      }
      renameSync(out, objectPath);
    } finally {
      rmSync(work, { recursive: true, force: true });
    }
    return {
      ref,
      objectPath,
      opsName,
      source: policy.source,
      cached: false,
      ...(vmlinux.from ? { compiledAgainst: vmlinux.from } : {}),
    };
  }

  #cgroupId(policy: string, tunable: string, path: string): string {
    if (!this.#options.resolveCgroupId) {
      throw new TunableError(
        `policy ${policy}: tunable ${tunable}: cannot resolve cgroup ${path} (no cgroup resolver)`,
      );
    }
    try {
      return this.#options.resolveCgroupId(path).toString();
    } catch (error) {
      throw new TunableError(
        `policy ${policy}: tunable ${tunable}: cgroup ${path}: ${(error as Error).message}`,
      );
    }
  }

  /** clang finds vmlinux.h by that name: link it in under the cache when the file is named otherwise. */
  #vmlinuxDir(): Promise<{ dir: string; from?: string }> {
    if (!this.#vmlinuxDirFound) {
      const found = this.#findVmlinuxDir();
      this.#vmlinuxDirFound = found;
      // A failed lookup (the mirror unreachable) is tried again by the next compile.
      found.catch(() => {
        if (this.#vmlinuxDirFound === found) this.#vmlinuxDirFound = undefined;
      });
    }
    return this.#vmlinuxDirFound;
  }

  async #findVmlinuxDir(): Promise<{ dir: string; from?: string }> {
    const { vmlinuxH: given, cacheDir } = this.#options;
    const header: VmlinuxHeader = typeof given === "string" ? { path: given } : await given();
    const { path, from } = header;
    if (!existsSync(path)) throw new Error(`vmlinux.h not found at ${path}`);
    const at = (dir: string) => (from ? { dir, from } : { dir });
    if (basename(path) === "vmlinux.h") return at(dirname(path));
    const dir = join(cacheDir, "include", createHash("sha256").update(path).digest("hex").slice(0, 16));
    mkdirSync(dir, { recursive: true });
    if (!existsSync(join(dir, "vmlinux.h"))) symlinkSync(path, join(dir, "vmlinux.h"));
    return at(dir);
  }
}

function defineValue(value: TunableValue): string {
  if (typeof value === "boolean") return value ? "1" : "0";
  return String(value);
}

/** The errors with a little context, warnings dropped when there are errors, bounded in size. */
export function excerptDiagnostics(stderr: string, maxLines = 40): string {
  const lines = stderr.trimEnd().split("\n");
  const firstError = lines.findIndex((l) => /\b(error|fatal error):/.test(l));
  const from = Math.max(firstError, 0);
  const picked = lines.slice(from, from + maxLines);
  if (lines.length > from + maxLines) picked.push(`[... ${lines.length - from - maxLines} more lines]`);
  return picked.join("\n");
}
