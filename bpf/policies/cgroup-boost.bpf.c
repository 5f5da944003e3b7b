/* SPDX-License-Identifier: GPL-2.0 */
/*
 * cgroup-boost: tasks of a configured set of cgroups (the latency-critical service) go first.
 *
 * Tasks in one of the configured cgroups, or below one, queue in a boosted FIFO that every CPU
 * serves before the normal FIFO. The cgroups come as cgroup ids (the cgroup directory's inode
 * number), resolved from paths when the policy is compiled. Under sched_ext a slice only ends at
 * a scheduler tick, so going first is not enough: a waking boosted task runs on the CPU it is
 * woken on if that one is idle or runs a normal task (preempted at once; nothing has to cross
 * CPUs, which in the emulated VM mostly meant waiting for the other CPU's next tick), else on an
 * idle CPU near its previous one, else it heads the boosted FIFO and a normal task that has had
 * `preempt_min_us` is preempted at the next scheduling event or tick. It gives up fairness for
 * everyone else: a busy boosted service can take all CPUs (the kernel's watchdog still ejects
 * the policy if a normal task waits longer than timeout_ms).
 */
#include "schedctl.h"

char _license[] SEC("license") = "GPL";

#define BOOST_DSQ 0
#define NORMAL_DSQ 1
#define MAX_BOOSTED 8
#define MAX_DEPTH 16
#define MAX_CPUS 256 /* CPUs beyond this are never chosen as preemption victims */

const volatile u64 slice_ns = TUNABLE(slice_us) * 1000ULL;
const volatile u64 boosted_ids[MAX_BOOSTED] = TUNABLE(cgroups);
const volatile u32 nr_boosted = TUNABLE(cgroups_count);
const volatile u64 preempt_min_ns = TUNABLE(preempt_min_us) * 1000ULL;

struct task_ctx {
	bool preempt; /* select_cpu claimed the normal task of the CPU it was woken on */
};

struct {
	__uint(type, BPF_MAP_TYPE_TASK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct task_ctx);
} task_ctxs SEC(".maps");

/* What each CPU is running: since when, and whether that task may be preempted (not boosted). */
struct cpu_ctx {
	u64 started_ns; /* 0 while the CPU runs nothing of ours */
	bool preemptible;
};

/* An array map rather than a global array: every lookup is bounds-checked for the verifier. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, MAX_CPUS);
	__type(key, u32);
	__type(value, struct cpu_ctx);
} cpu_ctxs SEC(".maps");

static struct cpu_ctx *cpu_ctx(u32 cpu)
{
	return bpf_map_lookup_elem(&cpu_ctxs, &cpu);
}

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

struct victim_search {
	u64 now;
	u64 longest; /* the longest run seen so far (starts at preempt_min_ns) */
	s32 victim;
};

static long consider_cpu(u32 cpu, struct victim_search *search)
{
	struct cpu_ctx *cctx = cpu_ctx(cpu);
	u64 started;

	if (!cctx)
		return 1;
	started = cctx->started_ns;
	if (cctx->preemptible && started && search->now - started >= search->longest) {
		search->longest = search->now - started;
		search->victim = cpu;
	}
	return 0;
}

/*
 * The CPU whose normal task has run longest (at least preempt_min_ns), or -1. The victim is
 * claimed so that the next search looks for another one instead of kicking this one again.
 */
static s32 pick_victim(void)
{
	struct victim_search search = { .now = sc_now(), .longest = preempt_min_ns, .victim = -1 };
	struct cpu_ctx *cctx;

	/* bpf_loop: the verifier checks the callback once instead of every unrolled iteration. */
	bpf_loop(sc_min(scx_bpf_nr_cpu_ids(), MAX_CPUS), consider_cpu, &search, 0);
	if (search.victim < 0)
		return -1;
	cctx = cpu_ctx(search.victim);
	if (cctx)
		cctx->preemptible = false;
	return search.victim;
}

/* Boosted tasks are waiting in their FIFO: preempt a normal task that has had its minimum. */
static void kick_waiting(void)
{
	s32 victim;

	if (scx_bpf_dsq_nr_queued(BOOST_DSQ) <= 0)
		return;
	victim = pick_victim();
	if (victim >= 0)
		scx_bpf_kick_cpu(victim, SCX_KICK_PREEMPT);
}

s32 SCX_OP(boost_select_cpu, struct task_struct *p, s32 prev_cpu, u64 wake_flags)
{
	u32 this_cpu = bpf_get_smp_processor_id();
	struct cpu_ctx *cctx = cpu_ctx(this_cpu);
	bool is_idle = false;
	struct task_ctx *tctx;
	s32 cpu;

	/* A synchronous waker is about to sleep: its CPU is no victim. */
	if (nr_boosted && cctx && !(wake_flags & SCX_WAKE_SYNC) && bpf_cpumask_test_cpu(this_cpu, p->cpus_ptr) &&
	    is_boosted(p)) {
		if (scx_bpf_test_and_clear_cpu_idle(this_cpu)) {
			sc_insert(p, SCX_DSQ_LOCAL, slice_ns, 0);
			return this_cpu;
		}
		tctx = bpf_task_storage_get(&task_ctxs, p, 0, BPF_LOCAL_STORAGE_GET_F_CREATE);
		if (tctx && cctx->preemptible && cctx->started_ns) {
			cctx->preemptible = false;
			tctx->preempt = true;
			return this_cpu;
		}
	}
	cpu = scx_bpf_select_cpu_dfl(p, prev_cpu, wake_flags, &is_idle);
	if (is_idle)
		sc_insert(p, SCX_DSQ_LOCAL, slice_ns, 0);
	return cpu;
}

void SCX_OP(boost_enqueue, struct task_struct *p, u64 enq_flags)
{
	u32 this_cpu = bpf_get_smp_processor_id();
	struct cpu_ctx *cctx = cpu_ctx(this_cpu);
	struct task_ctx *tctx;

	if (!nr_boosted || !is_boosted(p)) {
		sc_insert(p, NORMAL_DSQ, slice_ns, enq_flags);
		/* A normal task that has had its minimum may be running while boosted ones wait. */
		kick_waiting();
		return;
	}
	tctx = bpf_task_storage_get(&task_ctxs, p, 0, 0);
	if (tctx && tctx->preempt) {
		tctx->preempt = false;
		sc_insert(p, SCX_DSQ_LOCAL, slice_ns, enq_flags | SCX_ENQ_PREEMPT);
		scx_bpf_kick_cpu(scx_bpf_task_cpu(p), SCX_KICK_PREEMPT);
		return;
	}
	/* Not placed by select_cpu (a re-enqueue, a task bound to one CPU): this CPU's normal task. */
	if (cctx && cctx->preemptible && cctx->started_ns && bpf_cpumask_test_cpu(this_cpu, p->cpus_ptr)) {
		cctx->preemptible = false;
		sc_insert(p, SCX_DSQ_LOCAL_ON | this_cpu, slice_ns, enq_flags | SCX_ENQ_PREEMPT);
		scx_bpf_kick_cpu(this_cpu, SCX_KICK_PREEMPT);
		return;
	}
	sc_insert(p, BOOST_DSQ, slice_ns, enq_flags);
}

void SCX_OP(boost_dispatch, s32 cpu, struct task_struct *prev)
{
	if (!sc_move_to_local(BOOST_DSQ))
		sc_move_to_local(NORMAL_DSQ);
}

void SCX_OP(boost_running, struct task_struct *p)
{
	struct cpu_ctx *cctx = cpu_ctx(bpf_get_smp_processor_id());

	if (cctx) {
		cctx->started_ns = sc_now();
		cctx->preemptible = !nr_boosted || !is_boosted(p);
	}
	/* A normal task on another CPU may have reached its minimum since boosted ones queued. */
	kick_waiting();
}

void SCX_OP(boost_stopping, struct task_struct *p, bool runnable)
{
	struct cpu_ctx *cctx = cpu_ctx(bpf_get_smp_processor_id());

	if (cctx)
		cctx->started_ns = 0;
}

/* The tick is the last resort for a waiting boosted task. */
void SCX_OP(boost_tick, struct task_struct *p)
{
	kick_waiting();
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
	       .running = (void *)boost_running,
	       .stopping = (void *)boost_stopping,
	       .tick = (void *)boost_tick,
	       .init = (void *)boost_init,
	       .timeout_ms = 5000,
	       .name = "schedctl_cgroup_boost");
