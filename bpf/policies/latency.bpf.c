/* SPDX-License-Identifier: GPL-2.0 */
/*
 * latency: tasks that run briefly and then sleep go first, and a waking one does not wait for
 * the tick.
 *
 * Every task keeps a moving average of how long it runs each time it gets a CPU, and a count of
 * its stints in a row that ended with it still runnable. A task that runs briefly (average below
 * `interactive_us`) and gives the CPU up by sleeping is interactive; one preempted twice in a row
 * is a CPU hog, however short its stints. Only hogs are preempted, never an interactive task.
 * Under sched_ext a slice only ends at a scheduler tick, so a waking interactive task goes, in
 * this order, to:
 *  1. the CPU it is woken on, if that one is idle or runs a hog (preempted at once): the wake-up
 *     is already running there (a timer interrupt, a waker that goes on running), so nothing has
 *     to cross CPUs. Measured in the emulated VM, a task sent to another CPU, idle or preempted,
 *     mostly waited there for that CPU's next tick (3-4 ms); one kept here ran within ~0.3 ms.
 *     A synchronous waker's CPU is not preempted: the waker is about to sleep anyway.
 *  2. an idle CPU near its previous one;
 *  3. the interactive queue, which every CPU serves first: the CPU of an interactive task frees
 *     up soon, and a hog elsewhere that has had `preempt_min_us` is preempted at the next
 *     scheduling event or tick (the minimum keeps a burst of wake-ups from becoming a
 *     preemption storm).
 * It gives up some throughput of the hogs.
 */
#include "schedctl.h"

char _license[] SEC("license") = "GPL";

#define INTERACTIVE_DSQ 0
#define BATCH_DSQ 1
#define MAX_CPUS 256 /* CPUs beyond this are never chosen as preemption victims */

const volatile u64 slice_ns = TUNABLE(slice_us) * 1000ULL;
const volatile u64 interactive_ns = TUNABLE(interactive_us) * 1000ULL;
const volatile u64 preempt_min_ns = TUNABLE(preempt_min_us) * 1000ULL;

struct task_ctx {
	u64 avg_run_ns;  /* moving average of the time run per stint */
	u32 busy_stops;  /* stints in a row that ended with the task still runnable (preempted) */
	u64 started_ns;  /* when the current stint began */
	bool preempt;    /* select_cpu picked a CPU to preempt for this wake-up */
};

struct {
	__uint(type, BPF_MAP_TYPE_TASK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct task_ctx);
} task_ctxs SEC(".maps");

/* What each CPU is running: since when, and whether that task may be preempted. */
struct cpu_ctx {
	u64 started_ns;  /* 0 while the CPU runs nothing of ours */
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

static struct task_ctx *task_ctx(struct task_struct *p)
{
	return bpf_task_storage_get(&task_ctxs, p, 0, BPF_LOCAL_STORAGE_GET_F_CREATE);
}

/*
 * Interactive: runs briefly and then sleeps. A CPU hog never sleeps: every one of its stints ends
 * with it still runnable, so two such stints in a row make it non-interactive whatever its
 * stint length (a hog preempted every millisecond still looks brief).
 */
static bool is_interactive(struct task_ctx *tctx)
{
	return tctx->avg_run_ns < interactive_ns && tctx->busy_stops < 2;
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
 * The CPU whose hog has run longest (at least preempt_min_ns), or -1. The victim is claimed: the
 * next search looks for another one instead of kicking this one again.
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

/*
 * Interactive tasks are waiting in the shared queue: preempt a hog that has had its minimum (a
 * queued task may need only part of that CPU's time; the woken task may be bound elsewhere).
 */
static void kick_waiting(void)
{
	s32 victim;

	if (scx_bpf_dsq_nr_queued(INTERACTIVE_DSQ) <= 0)
		return;
	victim = pick_victim();
	if (victim >= 0)
		scx_bpf_kick_cpu(victim, SCX_KICK_PREEMPT);
}

s32 SCX_OP(latency_select_cpu, struct task_struct *p, s32 prev_cpu, u64 wake_flags)
{
	struct task_ctx *tctx = task_ctx(p);
	u32 this_cpu = bpf_get_smp_processor_id();
	struct cpu_ctx *cctx = cpu_ctx(this_cpu);
	bool is_idle = false;
	s32 cpu;

	if (tctx && is_interactive(tctx) && cctx && !(wake_flags & SCX_WAKE_SYNC) &&
	    bpf_cpumask_test_cpu(this_cpu, p->cpus_ptr)) {
		if (scx_bpf_test_and_clear_cpu_idle(this_cpu)) {
			sc_insert(p, SCX_DSQ_LOCAL, slice_ns, 0);
			return this_cpu;
		}
		if (cctx->preemptible && cctx->started_ns) {
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

void SCX_OP(latency_enqueue, struct task_struct *p, u64 enq_flags)
{
	struct task_ctx *tctx = task_ctx(p);
	u32 this_cpu = bpf_get_smp_processor_id();
	struct cpu_ctx *cctx = cpu_ctx(this_cpu);
	s32 idle;

	if (!tctx || !is_interactive(tctx)) {
		sc_insert(p, BATCH_DSQ, slice_ns, enq_flags);
		/* A hog that has had its minimum may be running while interactive tasks wait. */
		kick_waiting();
		return;
	}
	if (tctx->preempt) {
		/* select_cpu claimed the hog of the CPU it was woken on: cut that hog's slice. */
		tctx->preempt = false;
		sc_insert(p, SCX_DSQ_LOCAL, slice_ns, enq_flags | SCX_ENQ_PREEMPT);
		scx_bpf_kick_cpu(scx_bpf_task_cpu(p), SCX_KICK_PREEMPT);
		return;
	}
	/* Not placed by select_cpu (a re-enqueue, a task bound to one CPU): this CPU's hog, if any. */
	if (cctx && cctx->preemptible && cctx->started_ns && bpf_cpumask_test_cpu(this_cpu, p->cpus_ptr)) {
		cctx->preemptible = false;
		sc_insert(p, SCX_DSQ_LOCAL_ON | this_cpu, slice_ns, enq_flags | SCX_ENQ_PREEMPT);
		scx_bpf_kick_cpu(this_cpu, SCX_KICK_PREEMPT);
		return;
	}
	sc_insert(p, INTERACTIVE_DSQ, slice_ns, enq_flags);
	/* A CPU may have gone idle since select_cpu looked. */
	idle = scx_bpf_pick_idle_cpu(p->cpus_ptr, 0);
	if (idle >= 0)
		scx_bpf_kick_cpu(idle, SCX_KICK_IDLE);
}

void SCX_OP(latency_dispatch, s32 cpu, struct task_struct *prev)
{
	if (!sc_move_to_local(INTERACTIVE_DSQ))
		sc_move_to_local(BATCH_DSQ);
}

void SCX_OP(latency_running, struct task_struct *p)
{
	struct task_ctx *tctx = task_ctx(p);
	u32 cpu = bpf_get_smp_processor_id();
	struct cpu_ctx *cctx = cpu_ctx(cpu);
	u64 now = sc_now();

	if (tctx)
		tctx->started_ns = now;
	if (cctx) {
		cctx->started_ns = now;
		cctx->preemptible = !tctx || !is_interactive(tctx);
	}
	/* A hog on another CPU may have reached its minimum since the waiting tasks queued. */
	kick_waiting();
}

void SCX_OP(latency_stopping, struct task_struct *p, bool runnable)
{
	struct task_ctx *tctx = task_ctx(p);
	u32 cpu = bpf_get_smp_processor_id();
	struct cpu_ctx *cctx = cpu_ctx(cpu);

	if (cctx)
		cctx->started_ns = 0;
	if (tctx && tctx->started_ns) {
		u64 ran = sc_now() - tctx->started_ns;

		/* 3/4 history, 1/4 this stint: a hog that starts napping turns interactive quickly. */
		tctx->avg_run_ns = (tctx->avg_run_ns * 3 + ran) / 4;
		tctx->busy_stops = runnable ? sc_min(tctx->busy_stops + 1, 8) : 0;
	}
}

/* The tick is the last resort for a waiting interactive task: a hog that has had its minimum. */
void SCX_OP(latency_tick, struct task_struct *p)
{
	kick_waiting();
}

s32 SCX_OP_SLEEPABLE(latency_init)
{
	s32 err = scx_bpf_create_dsq(INTERACTIVE_DSQ, -1);

	if (err)
		return err;
	return scx_bpf_create_dsq(BATCH_DSQ, -1);
}

SCX_OPS_DEFINE(latency_ops,
	       .select_cpu = (void *)latency_select_cpu,
	       .enqueue = (void *)latency_enqueue,
	       .dispatch = (void *)latency_dispatch,
	       .running = (void *)latency_running,
	       .stopping = (void *)latency_stopping,
	       .tick = (void *)latency_tick,
	       .init = (void *)latency_init,
	       .timeout_ms = 5000,
	       .name = "schedctl_latency");
