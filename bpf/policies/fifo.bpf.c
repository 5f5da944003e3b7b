/* SPDX-License-Identifier: GPL-2.0 */
/*
 * fifo: one global first-in first-out queue, the simplest correct sched_ext scheduler.
 *
 * A waking task that finds an idle CPU goes straight to that CPU's local queue; everything else
 * joins the shared queue in arrival order and every CPU takes from its head. It is the baseline
 * the other policies are measured against. It gives up fairness (nice is ignored) and locality.
 */
#include "schedctl.h"

char _license[] SEC("license") = "GPL";

#define SHARED_DSQ 0

const volatile u64 slice_ns = TUNABLE(slice_us) * 1000ULL;

s32 SCX_OP(fifo_select_cpu, struct task_struct *p, s32 prev_cpu, u64 wake_flags)
{
	bool is_idle = false;
	s32 cpu = scx_bpf_select_cpu_dfl(p, prev_cpu, wake_flags, &is_idle);

	/* An idle CPU was found and claimed: skip the shared queue altogether. */
	if (is_idle)
		sc_insert(p, SCX_DSQ_LOCAL, slice_ns, 0);
	return cpu;
}

void SCX_OP(fifo_enqueue, struct task_struct *p, u64 enq_flags)
{
	sc_insert(p, SHARED_DSQ, slice_ns, enq_flags);
}

void SCX_OP(fifo_dispatch, s32 cpu, struct task_struct *prev)
{
	sc_move_to_local(SHARED_DSQ);
}

s32 SCX_OP_SLEEPABLE(fifo_init)
{
	return scx_bpf_create_dsq(SHARED_DSQ, -1);
}

SCX_OPS_DEFINE(fifo_ops,
	       .select_cpu = (void *)fifo_select_cpu,
	       .enqueue = (void *)fifo_enqueue,
	       .dispatch = (void *)fifo_dispatch,
	       .init = (void *)fifo_init,
	       .timeout_ms = 5000,
	       .name = "schedctl_fifo");
