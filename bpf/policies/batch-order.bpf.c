/* SPDX-License-Identifier: GPL-2.0 */
/*
 * batch-order: orders batch tasks by the CPU time they have used so far, shortest or longest
 * first (the batch case of the SchedCP paper: a few long jobs among many short ones).
 *
 * Shortest-first lets the many short jobs finish early (lower mean completion time); longest-
 * first starts the long job early so it does not become the tail. A task's queue key is its
 * enqueue time moved by at most `horizon_ms` of observed runtime, so ordering never starves a
 * task for more than about horizon_ms. It gives up fairness and wake-up latency.
 */
#include "schedctl.h"

char _license[] SEC("license") = "GPL";

#define SHARED_DSQ 0
#define ORDER_SHORTEST 0 /* the index of each option of the `order` enum tunable */
#define ORDER_LONGEST 1

const volatile u64 slice_ns = TUNABLE(slice_us) * 1000ULL;
const volatile u32 order = TUNABLE(order);
const volatile u64 horizon_ns = TUNABLE(horizon_ms) * 1000000ULL;

struct task_ctx {
	u64 runtime_ns; /* CPU time observed so far */
	u64 started_ns;
};

struct {
	__uint(type, BPF_MAP_TYPE_TASK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct task_ctx);
} task_ctxs SEC(".maps");

static struct task_ctx *task_ctx(struct task_struct *p)
{
	return bpf_task_storage_get(&task_ctxs, p, 0, BPF_LOCAL_STORAGE_GET_F_CREATE);
}

s32 SCX_OP(batch_select_cpu, struct task_struct *p, s32 prev_cpu, u64 wake_flags)
{
	bool is_idle = false;
	s32 cpu = scx_bpf_select_cpu_dfl(p, prev_cpu, wake_flags, &is_idle);

	if (is_idle)
		sc_insert(p, SCX_DSQ_LOCAL, slice_ns, 0);
	return cpu;
}

void SCX_OP(batch_enqueue, struct task_struct *p, u64 enq_flags)
{
	struct task_ctx *tctx = task_ctx(p);
	u64 bias = tctx ? sc_min(tctx->runtime_ns, horizon_ns) : 0;
	u64 key = bpf_ktime_get_ns();

	/* Shortest first: more runtime queues later. Longest first: more runtime queues earlier. */
	key = order == ORDER_LONGEST ? key + horizon_ns - bias : key + bias;
	sc_insert_vtime(p, SHARED_DSQ, slice_ns, key, enq_flags);
}

void SCX_OP(batch_dispatch, s32 cpu, struct task_struct *prev)
{
	sc_move_to_local(SHARED_DSQ);
}

void SCX_OP(batch_running, struct task_struct *p)
{
	struct task_ctx *tctx = task_ctx(p);

	if (tctx)
		tctx->started_ns = bpf_ktime_get_ns();
}

void SCX_OP(batch_stopping, struct task_struct *p, bool runnable)
{
	struct task_ctx *tctx = task_ctx(p);

	if (tctx && tctx->started_ns)
		tctx->runtime_ns += bpf_ktime_get_ns() - tctx->started_ns;
}

s32 SCX_OP_SLEEPABLE(batch_init)
{
	return scx_bpf_create_dsq(SHARED_DSQ, -1);
}

SCX_OPS_DEFINE(batch_ops,
	       .select_cpu = (void *)batch_select_cpu,
	       .enqueue = (void *)batch_enqueue,
	       .dispatch = (void *)batch_dispatch,
	       .running = (void *)batch_running,
	       .stopping = (void *)batch_stopping,
	       .init = (void *)batch_init,
	       .timeout_ms = 10000,
	       .name = "schedctl_batch_order");
