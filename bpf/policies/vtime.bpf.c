/* SPDX-License-Identifier: GPL-2.0 */
/*
 * vtime: weighted virtual-time fairness that honours nice and cgroup cpu.weight.
 *
 * Each task carries a virtual time that advances by the CPU time it used, divided by its weight
 * (its nice weight scaled by its cgroup's cpu.weight / 100). The shared queue is ordered by
 * virtual time, so the task that got least of its fair share runs next. A sleeper comes back
 * at most one slice behind the current virtual time, so sleeping does not bank credit.
 * It gives up locality and any notion of latency beyond fairness.
 */
#include "schedctl.h"

char _license[] SEC("license") = "GPL";

#define SHARED_DSQ 0
#define DEFAULT_WEIGHT 100
#define MAX_CGROUPS 4096

const volatile u64 slice_ns = TUNABLE(slice_us) * 1000ULL;

/* The virtual time of the most recently started task: the queue's "now". */
static u64 vtime_now;

/*
 * cpu.weight of each cgroup by cgroup id, as the kernel reports it to cgroup_init and
 * cgroup_set_weight. (A hash map, not cgroup storage: with libbpf 1.5, an object that looks up
 * cgroup storage on scx_bpf_task_cgroup()'s result fails to resolve that kfunc.)
 */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, MAX_CGROUPS);
	__type(key, u64);
	__type(value, u32);
} cgroup_weight SEC(".maps");

static u32 task_cgroup_weight(struct task_struct *p)
{
	struct cgroup *cgrp = scx_bpf_task_cgroup(p);
	u32 weight = DEFAULT_WEIGHT;
	u64 id;
	u32 *w;

	if (!cgrp)
		return weight;
	id = cgrp->kn->id;
	w = bpf_map_lookup_elem(&cgroup_weight, &id);
	if (w && *w)
		weight = *w;
	bpf_cgroup_release(cgrp);
	return weight;
}

s32 SCX_OP(vtime_select_cpu, struct task_struct *p, s32 prev_cpu, u64 wake_flags)
{
	bool is_idle = false;
	s32 cpu = scx_bpf_select_cpu_dfl(p, prev_cpu, wake_flags, &is_idle);

	if (is_idle)
		sc_insert(p, SCX_DSQ_LOCAL, slice_ns, 0);
	return cpu;
}

void SCX_OP(vtime_enqueue, struct task_struct *p, u64 enq_flags)
{
	u64 vtime = p->scx.dsq_vtime;

	/* No more than one slice of credit for having slept. */
	if (sc_vtime_before(vtime, vtime_now - slice_ns))
		vtime = vtime_now - slice_ns;
	sc_insert_vtime(p, SHARED_DSQ, slice_ns, vtime, enq_flags);
}

void SCX_OP(vtime_dispatch, s32 cpu, struct task_struct *prev)
{
	sc_move_to_local(SHARED_DSQ);
}

void SCX_OP(vtime_running, struct task_struct *p)
{
	if (sc_vtime_before(vtime_now, p->scx.dsq_vtime))
		vtime_now = p->scx.dsq_vtime;
}

void SCX_OP(vtime_stopping, struct task_struct *p, bool runnable)
{
	u64 used = slice_ns - p->scx.slice;
	u64 weight = (u64)p->scx.weight * task_cgroup_weight(p) / DEFAULT_WEIGHT;

	/* The slice counts down while the task runs: what is gone of it is what it used. */
	p->scx.dsq_vtime += used * DEFAULT_WEIGHT / (weight ? weight : 1);
}

void SCX_OP(vtime_enable, struct task_struct *p)
{
	p->scx.dsq_vtime = vtime_now;
}

s32 SCX_OP_SLEEPABLE(vtime_cgroup_init, struct cgroup *cgrp, struct scx_cgroup_init_args *args)
{
	u64 id = cgrp->kn->id;
	u32 weight = args->weight;

	/* Full map: the cgroup keeps the default weight rather than failing its creation. */
	bpf_map_update_elem(&cgroup_weight, &id, &weight, BPF_ANY);
	return 0;
}

void SCX_OP(vtime_cgroup_exit, struct cgroup *cgrp)
{
	u64 id = cgrp->kn->id;

	bpf_map_delete_elem(&cgroup_weight, &id);
}

void SCX_OP(vtime_cgroup_set_weight, struct cgroup *cgrp, u32 weight)
{
	u64 id = cgrp->kn->id;

	bpf_map_update_elem(&cgroup_weight, &id, &weight, BPF_ANY);
}

s32 SCX_OP_SLEEPABLE(vtime_init)
{
	return scx_bpf_create_dsq(SHARED_DSQ, -1);
}

SCX_OPS_DEFINE(vtime_ops,
	       .select_cpu = (void *)vtime_select_cpu,
	       .enqueue = (void *)vtime_enqueue,
	       .dispatch = (void *)vtime_dispatch,
	       .running = (void *)vtime_running,
	       .stopping = (void *)vtime_stopping,
	       .enable = (void *)vtime_enable,
	       .cgroup_init = (void *)vtime_cgroup_init,
	       .cgroup_exit = (void *)vtime_cgroup_exit,
	       .cgroup_set_weight = (void *)vtime_cgroup_set_weight,
	       .init = (void *)vtime_init,
	       .timeout_ms = 5000,
	       .name = "schedctl_vtime");
