import { execFile } from "node:child_process";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { promisify } from "node:util";
import type { PolicyRef } from "../../../src/policies/types.ts";
import type { BuiltCandidate } from "../../../src/verify/types.ts";

// Small self-contained sched_ext sources for the static rules: a minimal sched_ext_ops of our
// own (the static stage reads the layout from the object's BTF, so no vmlinux.h is needed).

const run = promisify(execFile);

export const PRELUDE = `
typedef unsigned int u32;
typedef unsigned long long u64;
struct task_struct;
#define SEC(n) __attribute__((section(n), used))
#define __ksym __attribute__((section(".ksyms")))
struct sched_ext_ops {
  void (*enqueue)(struct task_struct *p, u64 enq_flags);
  void (*dispatch)(int cpu, struct task_struct *prev);
  u64 flags;
  u32 timeout_ms;
  u32 exit_dump_len;
  u64 hotplug_seq;
  char name[128];
};
extern void scx_bpf_dsq_insert(struct task_struct *p, u64 dsq_id, u64 slice, u64 enq_flags) __ksym;
extern int scx_bpf_dsq_move_to_local(u64 dsq_id) __ksym;
static void *(* const bpf_map_lookup_elem)(void *map, const void *key) = (void *) 1;
`;

export interface FixtureParts {
  licence?: string;
  opsName?: string;
  timeoutMs?: number;
  enqueueBody?: string;
  extra?: string;
  section?: string;
}

export function fixtureSource(parts: FixtureParts = {}): string {
  const timeout = parts.timeoutMs === undefined ? 5000 : parts.timeoutMs;
  return `${PRELUDE}
char _license[] SEC("license") = "${parts.licence ?? "GPL"}";
${parts.extra ?? ""}
SEC("struct_ops/fx_enqueue")
void fx_enqueue(unsigned long long *ctx) {
  ${parts.enqueueBody ?? "scx_bpf_dsq_insert((void *)ctx[0], 0x8000000000000000ULL, 5000000, ctx[1]);"}
}
SEC("struct_ops/fx_dispatch")
void fx_dispatch(unsigned long long *ctx) { scx_bpf_dsq_move_to_local(0x8000000000000000ULL); }
SEC("${parts.section ?? ".struct_ops.link"}")
struct sched_ext_ops fx_ops = {
  .enqueue = (void *)fx_enqueue,
  .dispatch = (void *)fx_dispatch,
  ${timeout ? `.timeout_ms = ${timeout},` : ""}
  .name = "${parts.opsName ?? "schedctl_fx"}",
};
`;
}

export function refFor(name: string, hashSeed: string): PolicyRef {
  const hash = Buffer.from(hashSeed.padEnd(32, "0").slice(0, 32)).toString("hex").slice(0, 64);
  return { origin: "generated", name, tunables: {}, hash };
}

/** Compiles a fixture with the real clang, as the policies stage would. */
export async function buildFixture(dir: string, ref: PolicyRef, source: string): Promise<BuiltCandidate> {
  const src = join(dir, `${ref.hash}.bpf.c`);
  const obj = join(dir, `${ref.hash}.bpf.o`);
  writeFileSync(src, source);
  try {
    await run("clang", ["-target", "bpf", "-O2", "-g", "-Wno-missing-declarations", "-c", src, "-o", obj]);
  } catch (error) {
    return { kind: "uncompilable", ref, log: (error as { stderr?: string }).stderr ?? String(error) };
  }
  return { kind: "object", ref, source, objectPath: obj };
}
