import type { PolicySource } from "../../../src/policies/catalogue.ts";

// Generated policies the VM tests need and the catalogue must not ship: one that stops
// dispatching some time after it starts (the kernel's watchdog ejects it), and one the kernel's
// verifier refuses (a hash-map value dereferenced without a NULL check).

function generated(name: string, summary: string, source: string): PolicySource {
  return {
    manifest: { name, origin: "generated", summary, workloads: ["mixed"], tunables: {}, minKernel: "6.12" },
    source,
  };
}

/** A global FIFO that stops dispatching `afterMs` after it was enabled (0: never dispatches). */
export function stallingPolicy(afterMs: number): PolicySource {
  return generated(
    `stall-${afterMs}`,
    `A FIFO that stops dispatching ${afterMs} ms after it starts.`,
    `#include "schedctl.h"
char _license[] SEC("license") = "GPL";
#define SHARED_DSQ 0
u64 started_ns;

void SCX_OP(stall_enqueue, struct task_struct *p, u64 enq_flags)
{
	sc_insert(p, SHARED_DSQ, 5000000, enq_flags);
}

void SCX_OP(stall_dispatch, s32 cpu, struct task_struct *prev)
{
	/* After the deadline queued tasks are never moved to a CPU: the watchdog must eject us. */
	if (bpf_ktime_get_ns() - started_ns >= ${afterMs}ULL * 1000000ULL)
		return;
	sc_move_to_local(SHARED_DSQ);
}

s32 SCX_OP_SLEEPABLE(stall_init)
{
	started_ns = bpf_ktime_get_ns();
	return scx_bpf_create_dsq(SHARED_DSQ, -1);
}

SCX_OPS_DEFINE(stall_ops,
	       .enqueue = (void *)stall_enqueue,
	       .dispatch = (void *)stall_dispatch,
	       .init = (void *)stall_init,
	       .timeout_ms = 4000,
	       .name = "schedctl_stall");
`,
  );
}

export function unverifiablePolicy(): PolicySource {
  return generated(
    "unverifiable",
    "Dereferences a hash-map lookup without a NULL check.",
    `#include "schedctl.h"
char _license[] SEC("license") = "GPL";
#define SHARED_DSQ 0

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 64);
	__type(key, u32);
	__type(value, u64);
} counts SEC(".maps");

void SCX_OP(unv_enqueue, struct task_struct *p, u64 enq_flags)
{
	u32 key = p->pid & 63;
	u64 *count = bpf_map_lookup_elem(&counts, &key);

	*count += 1;
	sc_insert(p, SHARED_DSQ, 5000000, enq_flags);
}

void SCX_OP(unv_dispatch, s32 cpu, struct task_struct *prev)
{
	sc_move_to_local(SHARED_DSQ);
}

s32 SCX_OP_SLEEPABLE(unv_init)
{
	return scx_bpf_create_dsq(SHARED_DSQ, -1);
}

SCX_OPS_DEFINE(unv_ops,
	       .enqueue = (void *)unv_enqueue,
	       .dispatch = (void *)unv_dispatch,
	       .init = (void *)unv_init,
	       .timeout_ms = 5000,
	       .name = "schedctl_unverifiable");
`,
  );
}

/** Source that breaks the static rules: an ops name outside the schedctl_ prefix. */
export function misnamedPolicy(): PolicySource {
  const fifo = stallingPolicy(1_000_000);
  return {
    ...fifo,
    manifest: { ...fifo.manifest, name: "misnamed" },
    source: fifo.source.replace('"schedctl_stall"', '"stall"'),
  };
}

export function uncompilablePolicy(): PolicySource {
  const fifo = stallingPolicy(1_000_000);
  return {
    ...fifo,
    manifest: { ...fifo.manifest, name: "broken" },
    source: fifo.source.replace("return;", "return"),
  };
}
