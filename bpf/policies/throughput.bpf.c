/* SPDX-License-Identifier: GPL-2.0 */
/*
 * throughput: long slices and cache affinity, for CPU-bound batch work.
 *
 * A waking task goes back to the CPU it last ran on when that CPU is idle (its cache is still
 * warm there), else to any idle CPU, else it queues in arrival order. Slices are long so tasks
 * are rarely preempted; when a slice ends and nobody is waiting the kernel lets the task go on.
 * It gives up wake-up latency: a waking task can wait a whole slice.
 */
#include "schedctl.h"

char _license[] SEC("license") = "GPL";

#define SHARED_DSQ 0

const volatile u64 slice_ns = TUNABLE(slice_us) * 1000ULL;

s32 SCX_OP(throughput_select_cpu, struct task_struct *p, s32 prev_cpu, u64 wake_flags)
{
	bool is_idle = false;
	s32 cpu;

	/* Warm cache first: the previous CPU, if it is idle right now. */
	if (scx_bpf_test_and_clear_cpu_idle(prev_cpu)) {
		sc_insert(p, SCX_DSQ_LOCAL, slice_ns, 0);
		return prev_cpu;
	}
	cpu = scx_bpf_select_cpu_dfl(p, prev_cpu, wake_flags, &is_idle);
	if (is_idle)
		sc_insert(p, SCX_DSQ_LOCAL, slice_ns, 0);
	return cpu;
}

void SCX_OP(throughput_enqueue, struct task_struct *p, u64 enq_flags)
{
	sc_insert(p, SHARED_DSQ, slice_ns, enq_flags);
}

void SCX_OP(throughput_dispatch, s32 cpu, struct task_struct *prev)
{
	sc_move_to_local(SHARED_DSQ);
}

s32 SCX_OP_SLEEPABLE(throughput_init)
{
	return scx_bpf_create_dsq(SHARED_DSQ, -1);
}

SCX_OPS_DEFINE(throughput_ops,
	       .select_cpu = (void *)throughput_select_cpu,
	       .enqueue = (void *)throughput_enqueue,
	       .dispatch = (void *)throughput_dispatch,
	       .init = (void *)throughput_init,
	       .timeout_ms = 10000,
	       .name = "schedctl_throughput");
