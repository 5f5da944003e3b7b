/* SPDX-License-Identifier: GPL-2.0 */
/*
 * batch-order: runs batch tasks one after another, ordered by the CPU time they have used since
 * they last slept, shortest or longest first (the batch case of the SchedCP paper: a few long
 * jobs among many short ones).
 *
 * Job lengths are not known in advance, so shortest-first orders by what each task has used: a
 * task that has not run yet goes before one that has, and tasks alike go in the order they first
 * queued. A slice is long (`slice_us`), so a short job usually finishes in one go instead of
 * sharing the CPUs with every other job until they all finish late together; a long job, once it
 * has used a slice, queues behind the jobs that have not run yet. A coordinator that sleeps
 * between short bursts (make, a job runner) stays at the front, so the next job starts at once.
 * Longest-first does the opposite, to start a long job early when the makespan matters more.
 *
 * A task's queue key is when it queued, moved later (shortest-first) or earlier (longest-first)
 * by 16 times the CPU time it has used since it last slept, at most `horizon_ms`: no task waits
 * behind newer ones for more than about horizon_ms, and tasks that never sleep take turns (each
 * queues again behind the others when its slice ends). It gives up fairness and wake-up latency:
 * nothing is preempted.
 */
#include "schedctl.h"

char _license[] SEC("license") = "GPL";

#define SHARED_DSQ 0
#define ORDER_SHORTEST 0 /* the index of each option of the `order` enum tunable */
#define ORDER_LONGEST 1
#define BURST_WEIGHT 16 /* 100 ms of CPU time moves a task 1.6 s back in the queue */

const volatile u64 slice_ns = TUNABLE(slice_us) * 1000ULL;
const volatile u32 order = TUNABLE(order);
const volatile u64 horizon_ns = TUNABLE(horizon_ms) * 1000000ULL;

struct task_ctx {
	u64 burst_ns; /* CPU time used since the task last slept */
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
	u64 now = bpf_ktime_get_ns();
	u64 shift, key;

	if (!tctx) {
		sc_insert_vtime(p, SHARED_DSQ, slice_ns, now, enq_flags);
		return;
	}
	/* From now, not from when it first queued: a key fixed at a task's birth let the oldest
	 * tasks that never sleep keep the front of the queue until the watchdog ejected us. */
	shift = sc_min(tctx->burst_ns * BURST_WEIGHT, horizon_ns);
	key = order == ORDER_LONGEST ? now + horizon_ns - shift : now + shift;
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

	if (!tctx || !tctx->started_ns)
		return;
	tctx->burst_ns = runnable ? tctx->burst_ns + bpf_ktime_get_ns() - tctx->started_ns : 0;
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
