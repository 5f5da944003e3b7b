/* SPDX-License-Identifier: GPL-2.0 */
/*
 * cgroup-boost: tasks of a configured set of cgroups (the latency-critical service) go first.
 *
 * Tasks in one of the configured cgroups, or below one, queue in a boosted FIFO that every CPU
 * serves before the normal FIFO. The cgroups come as cgroup ids (the cgroup directory's inode
 * number), resolved from paths when the policy is compiled. It gives up fairness for everyone
 * else: a busy boosted service can take all CPUs (the kernel's watchdog still ejects the policy
 * if a normal task waits longer than timeout_ms).
 */
#include "schedctl.h"

char _license[] SEC("license") = "GPL";

#define BOOST_DSQ 0
#define NORMAL_DSQ 1
#define MAX_BOOSTED 8
#define MAX_DEPTH 16

const volatile u64 slice_ns = TUNABLE(slice_us) * 1000ULL;
const volatile u64 boosted_ids[MAX_BOOSTED] = TUNABLE(cgroups);
const volatile u32 nr_boosted = TUNABLE(cgroups_count);

static bool is_boosted_id(u64 id)
{
	u32 i;

	for (i = 0; i < MAX_BOOSTED && i < nr_boosted; i++)
		if (boosted_ids[i] == id)
			return true;
	return false;
}

/* Is the task's cgroup, or one of its ancestors, in the boosted set? */
static bool is_boosted(struct task_struct *p)
{
	struct cgroup *cgrp = scx_bpf_task_cgroup(p);
	bool boosted = false;
	int level;

	if (!cgrp)
		return false;
	for (level = 0; level < MAX_DEPTH && level <= cgrp->level && !boosted; level++) {
		struct cgroup *ancestor = bpf_cgroup_ancestor(cgrp, level);

		if (!ancestor)
			break;
		boosted = is_boosted_id(ancestor->kn->id);
		bpf_cgroup_release(ancestor);
	}
	bpf_cgroup_release(cgrp);
	return boosted;
}

s32 SCX_OP(boost_select_cpu, struct task_struct *p, s32 prev_cpu, u64 wake_flags)
{
	bool is_idle = false;
	s32 cpu = scx_bpf_select_cpu_dfl(p, prev_cpu, wake_flags, &is_idle);

	if (is_idle)
		sc_insert(p, SCX_DSQ_LOCAL, slice_ns, 0);
	return cpu;
}

void SCX_OP(boost_enqueue, struct task_struct *p, u64 enq_flags)
{
	if (nr_boosted && is_boosted(p))
		sc_insert(p, BOOST_DSQ, slice_ns, enq_flags);
	else
		sc_insert(p, NORMAL_DSQ, slice_ns, enq_flags);
}

void SCX_OP(boost_dispatch, s32 cpu, struct task_struct *prev)
{
	if (!sc_move_to_local(BOOST_DSQ))
		sc_move_to_local(NORMAL_DSQ);
}

s32 SCX_OP_SLEEPABLE(boost_init)
{
	s32 err = scx_bpf_create_dsq(BOOST_DSQ, -1);

	if (err)
		return err;
	return scx_bpf_create_dsq(NORMAL_DSQ, -1);
}

SCX_OPS_DEFINE(boost_ops,
	       .select_cpu = (void *)boost_select_cpu,
	       .enqueue = (void *)boost_enqueue,
	       .dispatch = (void *)boost_dispatch,
	       .init = (void *)boost_init,
	       .timeout_ms = 5000,
	       .name = "schedctl_cgroup_boost");
