import { existsSync, mkdirSync, readdirSync, readFileSync, symlinkSync } from "node:fs";
import { join } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { createHost } from "../../src/host/host.ts";
import { createKernel } from "../../src/kernel/loader.ts";
import { builtinCatalogue, builtinPolicy } from "../../src/policies/catalogue.ts";
import { CompileError, PolicyCompiler } from "../../src/policies/compile.ts";
import { ToolMissingError } from "../../src/policies/tools.ts";
import { TunableError } from "../../src/policies/tunables.ts";
import type { Tunables } from "../../src/policies/types.ts";
import { hostVmlinuxHeader } from "../../src/policies/vmlinux.ts";
import { defaultCacheDir, ensureSandboxKernel } from "../../src/sandbox/kernel-image.ts";
import { fixturePolicy } from "../helpers/policies.ts";
import { tempDir, writeTree } from "../helpers/tmp.ts";

// Real clang against the sandbox kernel's vmlinux.h (fetched once and cached), and real bpftool.

let vmlinuxH: string;
let vmlinux: string;

beforeAll(async () => {
  ({ vmlinuxH, vmlinux } = await ensureSandboxKernel({ cacheDir: defaultCacheDir() }));
}, 600_000);

function compiler(cacheDir: string, extra: Partial<ConstructorParameters<typeof PolicyCompiler>[0]> = {}) {
  return new PolicyCompiler({ cacheDir, vmlinuxH, resolveCgroupId: () => 4242n, ...extra });
}

/** The ELF section names of a BPF object (enough to check what clang produced). */
function sectionNames(path: string): string[] {
  const elf = readFileSync(path);
  const shoff = Number(elf.readBigUInt64LE(0x28));
  const shentsize = elf.readUInt16LE(0x3a);
  const shnum = elf.readUInt16LE(0x3c);
  const strtab = shoff + elf.readUInt16LE(0x3e) * shentsize;
  const strOffset = Number(elf.readBigUInt64LE(strtab + 0x18));
  const names: string[] = [];
  for (let i = 0; i < shnum; i++) {
    const nameAt = strOffset + elf.readUInt32LE(shoff + i * shentsize);
    names.push(elf.toString("latin1", nameAt, elf.indexOf(0, nameAt)));
  }
  return names;
}

describe("compiling policies with clang", () => {
  it("compiles every built-in policy into one struct_ops object, cached by content hash", async () => {
    const cache = tempDir();
    const c = compiler(cache);
    for (const policy of builtinCatalogue()) {
      const tunables: Tunables = policy.manifest.name === "cgroup-boost" ? { cgroups: ["/svc"] } : {};
      const built = await c.compile(policy, tunables);
      expect(built.cached).toBe(false);
      expect(built.objectPath).toBe(join(cache, "objects", `${built.ref.hash}.bpf.o`));
      expect(built.opsName).toMatch(/^schedctl_/);
      const sections = sectionNames(built.objectPath);
      expect(sections, policy.manifest.name).toContain(".struct_ops.link");
      expect(sections.filter((s) => s.startsWith("struct_ops")).length).toBeGreaterThan(0);
      const again = await c.compile(policy, tunables);
      expect(again).toMatchObject({ cached: true, objectPath: built.objectPath, ref: built.ref });
    }
    expect(readdirSync(join(cache, "objects")).filter((f) => f.startsWith(".build"))).toEqual([]);
  }, 120_000);

  it("gives each variant its own hash: tunables, resolved cgroup ids and source all count", () => {
    const c = compiler(tempDir());
    const latency = builtinPolicy("latency");
    const base = c.variant(latency).ref.hash;
    expect(c.variant(latency, { slice_us: 3000 }).ref.hash).toBe(base); // the default, spelt out
    expect(c.variant(latency, { slice_us: 2000 }).ref.hash).not.toBe(base);
    expect(c.variant({ ...latency, source: `${latency.source}\n` }).ref.hash).not.toBe(base);
    const boost = builtinPolicy("cgroup-boost");
    const other = compiler(tempDir(), { resolveCgroupId: () => 7n });
    expect(c.variant(boost, { cgroups: ["/a"] }).defines).toContain("SCHEDCTL_TUNABLE_cgroups={4242}");
    expect(c.variant(boost, { cgroups: ["/a"] }).ref.hash).not.toBe(
      other.variant(boost, { cgroups: ["/a"] }).ref.hash,
    );
    expect(c.variant(builtinPolicy("batch-order"), { order: "longest" }).defines).toContain(
      "SCHEDCTL_TUNABLE_order=1",
    );
  });

  it('compiles a policy in the plain libbpf style (BPF_PROG, SEC("struct_ops/..."), no schedctl.h)', async () => {
    const built = await compiler(tempDir()).compile(fixturePolicy("plain-libbpf.bpf.c"));
    expect(built.opsName).toBe("schedctl_plain");
    const sections = sectionNames(built.objectPath);
    expect(sections).toContain(".struct_ops.link");
    expect(sections).toContain("struct_ops/plain_enqueue");
  });

  it("refuses a source that does not compile, with clang's diagnostics, and caches nothing", async () => {
    const cache = tempDir();
    const error = await compiler(cache)
      .compile(fixturePolicy("syntax-error.bpf.c"))
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(CompileError);
    const log = (error as CompileError).log;
    expect(log).toMatch(/^syntax-error\.bpf\.c:9:2: error: unknown type name 'u46'/);
    expect(log).toContain("u46 slice = 5000000");
    expect((error as Error).message).toMatch(/^policy syntax-error does not compile:\n/);
    expect(readdirSync(join(cache, "objects"))).toEqual([]);
  });

  it("refuses a tunable out of range before running clang", async () => {
    const cache = tempDir();
    await expect(compiler(cache).compile(builtinPolicy("throughput"), { slice_us: 999_999 })).rejects.toThrow(
      new TunableError("policy throughput: tunable slice_us=999999 is out of range [1000, 200000] us"),
    );
    expect(existsSync(join(cache, "objects"))).toBe(false);
  });

  it("says clang is missing and how to install it", async () => {
    const error = await compiler(tempDir(), { pathEnv: tempDir() })
      .compile(builtinPolicy("fifo"))
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ToolMissingError);
    expect((error as Error).message).toBe(
      "clang not found on PATH (needed to compile BPF policies); install it: apt-get install clang llvm",
    );
  });
});

describe("the kernel loader's tools", () => {
  it("says bpftool is missing, and attaches nothing", async () => {
    const root = tempDir();
    writeTree(root, {
      "sys/kernel/sched_ext/state": "disabled\n",
      "sys/kernel/sched_ext/enable_seq": "0\n",
      "sys/fs/bpf/.keep": "",
    });
    const kernel = createKernel({ host: createHost(root), pathEnv: tempDir() });
    await expect(kernel.verifyLoad("/nonexistent.bpf.o")).rejects.toThrow(
      "bpftool not found on PATH (needed to load sched_ext policies); install it: apt-get install -t bookworm-backports bpftool",
    );
    await expect(
      kernel.attach({ kind: "object", hash: "a".repeat(64), objectPath: "/x.bpf.o", opsName: "schedctl_x" }),
    ).rejects.toThrow(ToolMissingError);
    expect(kernel.pinnedLinks()).toEqual([]);
    expect(kernel.status()).toMatchObject({ state: "disabled", ops: undefined });
  });

  it("refuses to attach on a kernel without sched_ext", async () => {
    const kernel = createKernel({ host: createHost(tempDir()) });
    await expect(
      kernel.attach({ kind: "object", hash: "a".repeat(64), objectPath: "/x.bpf.o", opsName: "schedctl_x" }),
    ).rejects.toThrow("this kernel has no sched_ext (/sys/kernel/sched_ext missing)");
  });
});

describe("hostVmlinuxHeader", () => {
  it("generates vmlinux.h from a sched_ext host's BTF once, and nothing for a host without sched_ext", async () => {
    const root = tempDir();
    const cacheDir = tempDir();
    expect(await hostVmlinuxHeader({ host: createHost(root), cacheDir })).toBeUndefined();
    writeTree(root, { "sys/kernel/sched_ext/state": "disabled\n" });
    mkdirSync(join(root, "sys/kernel/btf"), { recursive: true });
    symlinkSync(vmlinux, join(root, "sys/kernel/btf/vmlinux")); // an ELF with BTF reads the same
    const header = await hostVmlinuxHeader({ host: createHost(root), cacheDir });
    expect(header).toMatch(new RegExp(`^${cacheDir}/vmlinux/[0-9a-f]{16}/vmlinux\\.h$`));
    expect(readFileSync(header!, "utf8")).toContain("struct sched_ext_ops {");
    expect(await hostVmlinuxHeader({ host: createHost(root), cacheDir })).toBe(header);
  }, 120_000);
});
