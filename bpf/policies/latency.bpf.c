/* SPDX-License-Identifier: GPL-2.0 */
/*
 * latency: a task that wakes up to run briefly runs at once, and while such tasks are busy some
 * CPUs are kept free of CPU hogs for them.
 *
 * Tasks are told apart by their bursts: the CPU time used between two sleeps. A task whose
 * bursts average under `interactive_us` is interactive, until its current burst passes 8 times
 * that: then it is a hog. The margin is wide because a service that falls behind stops sleeping
 * for a while; judged on its current burst alone it would lose its place, fall further behind
 * and never sleep again. A new process is a hog until it first sleeps after a short burst, so a
 * freshly forked compiler does not jump the queue of a service. Being preempted does not end a
 * burst, so a waker that steps aside for its wakees stays interactive.
 *
 * A waking interactive task runs on the CPU it was woken on, at once: that CPU is the one already
 * running the wake-up (a timer interrupt, a waker thread), so no other CPU has to be interrupted.
 * It preempts a hog there; with `preempt_waker` it also goes ahead of an interactive waker, which
 * resumes right after it (a messenger waking workers one by one: each starts before the next is
 * woken), unless the wake-up is synchronous (a pipe's writer: it is about to sleep, and a writer
 * feeding many readers would otherwise switch at every message). Otherwise it takes an idle CPU,
 * else the interactive queue, which every CPU serves before the hogs' queue, and a hog that has
 * run `preempt_min_us` is preempted for it.
 *
 * While interactive tasks wake often (at least `busy_wakeups` per 100 ms, kernel threads not
 * counted), the first `reserved_cpus` CPUs run only interactive tasks: a wake-up there finds the
 * CPU idle or running another short task, never a hog in the middle of a system call. The cost is
 * the hogs' throughput on those CPUs. Hogs run `hog_slice_us` at a time (fewer switches),
 * interactive tasks `slice_us`.
 *
 * Measured in the emulated VM: the autopilot day's service (a messenger waking two workers)
 * under half-busy CPU hogs or beside a parallel build, p99 wake-up latency 0.03-0.05 of the
 * kernel default's (4-6 ms), p50 0.15; cyclictest beside two full hogs, p99 0.72 (bench:policies);
 * hackbench 0.72. A variant without the reserved CPU stayed at 11-16 ms beside the build: a hog
 * there is often inside a system call (fork, exec, exit) when the service's wake-up needs its CPU.
 */
#include "schedctl.h"

char _license[] SEC("license") = "GPL";

#define INTERACTIVE_DSQ 0
#define HOG_DSQ 1
#define MAX_CPUS 256 /* CPUs beyond this are never searched */
#define PF_KTHREAD 0x00200000
#define HOG_BURST_FACTOR 8 /* a current burst this many times interactive_us makes a hog */
#define WINDOW_NS (100ULL * 1000 * 1000)

const volatile u64 slice_ns = TUNABLE(slice_us) * 1000ULL;
const volatile u64 hog_slice_ns = TUNABLE(hog_slice_us) * 1000ULL;
const volatile u64 interactive_ns = TUNABLE(interactive_us) * 1000ULL;
const volatile u64 preempt_min_ns = TUNABLE(preempt_min_us) * 1000ULL;
const volatile bool preempt_waker = TUNABLE(preempt_waker);
const volatile u32 reserved_cpus = TUNABLE(reserved_cpus);
const volatile u64 busy_wakeups = TUNABLE(busy_wakeups);

struct task_ctx {
	u64 avg_burst_ns;  /* moving average of the CPU time used between two sleeps */
	u64 exec_at_sleep; /* the task's sum_exec_runtime when it last slept */
	bool preempt;      /* select_cpu placed it on the waking CPU, to preempt what runs there */
};

struct {
	__uint(type, BPF_MAP_TYPE_TASK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct task_ctx);
} task_ctxs SEC(".maps");

/* What each CPU runs: since when, and whether it is a hog that may be preempted. */
struct cpu_ctx {
	u64 started_ns; /* 0 while the CPU runs nothing of ours */
	bool hog;
	bool claimed; /* a waiting task has kicked this hog already */
};

/* An array map rather than a global array: every lookup is bounds-checked for the verifier. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, MAX_CPUS);
	__type(key, u32);
	__type(value, struct cpu_ctx);
} cpu_ctxs SEC(".maps");

/* Interactive wake-ups counted per 100 ms window; the reservation follows the last two windows. */
static u64 window_start_ns;
static u64 window_wakeups;
static u64 last_window_wakeups;

static struct cpu_ctx *cpu_ctx(u32 cpu)
{
	return bpf_map_lookup_elem(&cpu_ctxs, &cpu);
}

static struct task_ctx *task_ctx(struct task_struct *p)
{
	return bpf_task_storage_get(&task_ctxs, p, 0, 0);
}

static bool is_interactive(struct task_struct *p, struct task_ctx *tctx)
{
	return tctx->avg_burst_ns < interactive_ns &&
	       p->se.sum_exec_runtime - tctx->exec_at_sleep < HOG_BURST_FACTOR * interactive_ns;
}

static void count_wakeup(struct task_struct *p, u64 now)
{
	u64 start = window_start_ns;

	if (p->flags & PF_KTHREAD)
		return;
	if (now - start >= WINDOW_NS) {
		/* Racing CPUs may both roll the window: the count is a rate estimate, not a ledger. */
		last_window_wakeups = now - start < 2 * WINDOW_NS ? window_wakeups : 0;
		window_wakeups = 0;
		window_start_ns = now;
	}
	__sync_fetch_and_add(&window_wakeups, 1);
}

static bool reservation_active(u64 now)
{
	if (!reserved_cpus || now - window_start_ns >= 2 * WINDOW_NS)
		return false;
	return window_wakeups >= busy_wakeups || last_window_wakeups >= busy_wakeups;
}

/* At least one CPU always takes hogs. */
static bool is_reserved(s32 cpu)
{
	u32 nr = scx_bpf_nr_cpu_ids();

	return cpu >= 0 && (u32)cpu < reserved_cpus && (u32)cpu + 1 < nr;
}

struct cpu_search {
	struct task_struct *p;
	u64 now;
	u64 longest; /* the longest hog stint seen so far (starts at preempt_min_ns) */
	s32 found;
	bool reserved_too; /* may the search return a reserved CPU */
};

static long find_idle(u32 cpu, struct cpu_search *search)
{
	if (!search->reserved_too && is_reserved(cpu))
		return 0;
	if (!bpf_cpumask_test_cpu(cpu, search->p->cpus_ptr) || !scx_bpf_test_and_clear_cpu_idle(cpu))
		return 0;
	search->found = cpu;
	return 1;
}

/* An idle CPU the task may use (its idle state claimed), or -1. bpf_loop: verified once. */
static s32 claim_idle_cpu(struct task_struct *p, bool reserved_too)
{
	struct cpu_search search = { .p = p, .found = -1, .reserved_too = reserved_too };

	bpf_loop(sc_min(scx_bpf_nr_cpu_ids(), MAX_CPUS), find_idle, &search, 0);
	return search.found;
}

static long find_victim(u32 cpu, struct cpu_search *search)
{
	struct cpu_ctx *cctx = cpu_ctx(cpu);
	u64 started;

	if (!cctx)
		return 1;
	started = cctx->started_ns;
	if (cctx->hog && !cctx->claimed && started && search->now - started >= search->longest) {
		search->longest = search->now - started;
		search->found = cpu;
	}
	return 0;
}

/*
 * Interactive tasks are queued: wake an idle CPU that `p` (the one just queued, if any) may use,
 * else preempt the hog that has run longest.
 */
static void kick_for_waiting(struct task_struct *p)
{
	struct cpu_search search = { .now = sc_now(), .longest = preempt_min_ns, .found = -1 };
	struct cpu_ctx *cctx;
	s32 cpu;

	if (scx_bpf_dsq_nr_queued(INTERACTIVE_DSQ) <= 0)
		return;
	cpu = p ? claim_idle_cpu(p, true) : -1;
	if (cpu >= 0) {
		scx_bpf_kick_cpu(cpu, SCX_KICK_IDLE);
		return;
	}
	bpf_loop(sc_min(scx_bpf_nr_cpu_ids(), MAX_CPUS), find_victim, &search, 0);
	if (search.found < 0)
		return;
	cctx = cpu_ctx(search.found);
	if (cctx)
		cctx->claimed = true;
	scx_bpf_kick_cpu(search.found, SCX_KICK_PREEMPT);
}

static s32 select_hog_cpu(struct task_struct *p, s32 prev_cpu)
{
	bool avoid_reserved = reservation_active(sc_now());
	s32 cpu;

	if (!(avoid_reserved && is_reserved(prev_cpu)) && scx_bpf_test_and_clear_cpu_idle(prev_cpu)) {
		sc_insert(p, SCX_DSQ_LOCAL, hog_slice_ns, 0);
		return prev_cpu;
	}
	cpu = claim_idle_cpu(p, !avoid_reserved);
	if (cpu >= 0) {
		sc_insert(p, SCX_DSQ_LOCAL, hog_slice_ns, 0);
		return cpu;
	}
	return prev_cpu; /* enqueue puts it on the hogs' queue, which any CPU may serve */
}

s32 SCX_OP(latency_select_cpu, struct task_struct *p, s32 prev_cpu, u64 wake_flags)
{
	struct task_ctx *tctx = task_ctx(p);
	s32 this_cpu = bpf_get_smp_processor_id();
	struct cpu_ctx *cctx = cpu_ctx(this_cpu);
	s32 cpu;

	if (!tctx || !is_interactive(p, tctx))
		return select_hog_cpu(p, prev_cpu);
	count_wakeup(p, sc_now());
	if (bpf_cpumask_test_cpu(this_cpu, p->cpus_ptr) && cctx) {
		if (scx_bpf_test_and_clear_cpu_idle(this_cpu)) {
			sc_insert(p, SCX_DSQ_LOCAL, slice_ns, 0);
			return this_cpu;
		}
		if (cctx->started_ns && (cctx->hog || (preempt_waker && !(wake_flags & SCX_WAKE_SYNC)))) {
			tctx->preempt = true;
			return this_cpu;
		}
	}
	cpu = claim_idle_cpu(p, true);
	if (cpu >= 0) {
		sc_insert(p, SCX_DSQ_LOCAL, slice_ns, 0);
		return cpu;
	}
	return prev_cpu;
}

void SCX_OP(latency_enqueue, struct task_struct *p, u64 enq_flags)
{
	struct task_ctx *tctx = task_ctx(p);
	s32 this_cpu = bpf_get_smp_processor_id();
	struct cpu_ctx *cctx = cpu_ctx(this_cpu);

	if (!tctx || !is_interactive(p, tctx)) {
		sc_insert(p, HOG_DSQ, hog_slice_ns, enq_flags);
		kick_for_waiting(NULL);
		return;
	}
	if (tctx->preempt) {
		tctx->preempt = false;
		sc_insert(p, SCX_DSQ_LOCAL, slice_ns, enq_flags | SCX_ENQ_PREEMPT);
		return;
	}
	if (!(enq_flags & SCX_ENQ_WAKEUP)) {
		/* Preempted (for a wakee, most often) or out of slice: it resumes here. */
		sc_insert(p, SCX_DSQ_LOCAL, slice_ns, enq_flags);
		return;
	}
	/* A wake-up select_cpu did not place (a task bound to one CPU): that CPU's hog, if any. */
	if (cctx && cctx->hog && cctx->started_ns && scx_bpf_task_cpu(p) == this_cpu) {
		sc_insert(p, SCX_DSQ_LOCAL, slice_ns, enq_flags | SCX_ENQ_PREEMPT);
		return;
	}
	sc_insert(p, INTERACTIVE_DSQ, slice_ns, enq_flags);
	kick_for_waiting(p);
}

void SCX_OP(latency_dispatch, s32 cpu, struct task_struct *prev)
{
	if (sc_move_to_local(INTERACTIVE_DSQ))
		return;
	if (is_reserved(cpu) && reservation_active(sc_now()))
		return;
	sc_move_to_local(HOG_DSQ);
}

void SCX_OP(latency_running, struct task_struct *p)
{
	struct task_ctx *tctx = task_ctx(p);
	struct cpu_ctx *cctx = cpu_ctx(bpf_get_smp_processor_id());

	if (cctx) {
		cctx->started_ns = sc_now();
		cctx->hog = !tctx || !is_interactive(p, tctx);
		cctx->claimed = false;
	}
}

void SCX_OP(latency_stopping, struct task_struct *p, bool runnable)
{
	struct task_ctx *tctx = task_ctx(p);
	struct cpu_ctx *cctx = cpu_ctx(bpf_get_smp_processor_id());

	if (cctx)
		cctx->started_ns = 0;
	if (tctx && !runnable) {
		u64 burst = p->se.sum_exec_runtime - tctx->exec_at_sleep;

		/* 3/4 history, 1/4 this burst: a hog that starts napping turns interactive quickly. */
		tctx->avg_burst_ns = (tctx->avg_burst_ns * 3 + burst) / 4;
		tctx->exec_at_sleep = p->se.sum_exec_runtime;
	}
}

void SCX_OP(latency_tick, struct task_struct *p)
{
	struct cpu_ctx *cctx = cpu_ctx(bpf_get_smp_processor_id());

	/* A hog caught on a reserved CPU when the reservation began gives it up at the tick. */
	if (cctx && cctx->hog && is_reserved(bpf_get_smp_processor_id()) && reservation_active(sc_now()))
		p->scx.slice = 0;
	kick_for_waiting(NULL);
}

/* Tasks already running when the policy attaches start interactive; new ones as hogs. */
s32 SCX_OP(latency_init_task, struct task_struct *p, struct scx_init_task_args *args)
{
	struct task_ctx *tctx = bpf_task_storage_get(&task_ctxs, p, 0, BPF_LOCAL_STORAGE_GET_F_CREATE);

	if (!tctx)
		return -12; /* -ENOMEM */
	tctx->exec_at_sleep = p->se.sum_exec_runtime;
	if (args->fork)
		tctx->avg_burst_ns = interactive_ns;
	return 0;
}

s32 SCX_OP_SLEEPABLE(latency_init)
{
	s32 err = scx_bpf_create_dsq(INTERACTIVE_DSQ, -1);

	if (err)
		return err;
	return scx_bpf_create_dsq(HOG_DSQ, -1);
}

SCX_OPS_DEFINE(latency_ops,
	       .select_cpu = (void *)latency_select_cpu,
	       .enqueue = (void *)latency_enqueue,
	       .dispatch = (void *)latency_dispatch,
	       .running = (void *)latency_running,
	       .stopping = (void *)latency_stopping,
	       .tick = (void *)latency_tick,
	       .init_task = (void *)latency_init_task,
	       .init = (void *)latency_init,
	       .timeout_ms = 5000,
	       .name = "schedctl_latency");
