import type { PolicySource } from "../../../src/policies/catalogue.ts";

// Generated policies the VM tests need and the catalogue must not ship: one that stops
// dispatching some time after it starts (the kernel's watchdog ejects it), one the kernel's
// verifier refuses (a hash-map value dereferenced without a NULL check), and two valid ones
// that are worse than the default: one starves some workers partly, one makes wake-ups wait.

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

/** Every other cpuhog thread parked in a queue drained once in 64 dispatches: starved, not stalled. */
export function partialStarvePolicy(): PolicySource {
  return generated(
    "park",
    "Parks every other CPU-bound worker and drains them rarely.",
    `#include "schedctl.h"
char _license[] SEC("license") = "GPL";
#define SHARED_DSQ 0
#define PARKED_DSQ 1
u64 dispatches;

static __always_inline bool parked(struct task_struct *p)
{
	return p->comm[0] == 'c' && p->comm[1] == 'p' && p->comm[2] == 'u' && p->comm[3] == 'h' &&
	       p->comm[4] == 'o' && p->comm[5] == 'g' && (p->pid & 1);
}

void SCX_OP(park_enqueue, struct task_struct *p, u64 enq_flags)
{
	sc_insert(p, parked(p) ? PARKED_DSQ : SHARED_DSQ, 5000000, enq_flags);
}

void SCX_OP(park_dispatch, s32 cpu, struct task_struct *prev)
{
	if ((dispatches++ & 63) == 0 && sc_move_to_local(PARKED_DSQ))
		return;
	sc_move_to_local(SHARED_DSQ);
}

s32 SCX_OP_SLEEPABLE(park_init)
{
	s32 err = scx_bpf_create_dsq(SHARED_DSQ, -1);

	return err ? err : scx_bpf_create_dsq(PARKED_DSQ, -1);
}

SCX_OPS_DEFINE(park_ops,
	       .enqueue = (void *)park_enqueue,
	       .dispatch = (void *)park_dispatch,
	       .init = (void *)park_init,
	       .timeout_ms = 5000,
	       .name = "schedctl_park");
`,
  );
}

/** One global FIFO of 50 ms slices without the idle-CPU shortcut: a wake-up waits behind every hog. */
export function slowWakePolicy(): PolicySource {
  return generated(
    "slow-wake",
    "Every wake-up joins the tail of one queue of long slices.",
    `#include "schedctl.h"
char _license[] SEC("license") = "GPL";
#define SHARED_DSQ 0

s32 SCX_OP(slow_select_cpu, struct task_struct *p, s32 prev_cpu, u64 wake_flags)
{
	return prev_cpu;
}

void SCX_OP(slow_enqueue, struct task_struct *p, u64 enq_flags)
{
	sc_insert(p, SHARED_DSQ, 50000000, enq_flags);
}

void SCX_OP(slow_dispatch, s32 cpu, struct task_struct *prev)
{
	sc_move_to_local(SHARED_DSQ);
}

s32 SCX_OP_SLEEPABLE(slow_init)
{
	return scx_bpf_create_dsq(SHARED_DSQ, -1);
}

SCX_OPS_DEFINE(slow_ops,
	       .select_cpu = (void *)slow_select_cpu,
	       .enqueue = (void *)slow_enqueue,
	       .dispatch = (void *)slow_dispatch,
	       .init = (void *)slow_init,
	       .timeout_ms = 5000,
	       .name = "schedctl_slow_wake");
`,
  );
}
