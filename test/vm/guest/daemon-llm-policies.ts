// The policies the scripted LLM "writes" in the daemon's VM test: a small one that serves a
// service waiting behind CPU hogs (a waking task preempts what runs on its CPU; a plain FIFO was
// rightly rolled back once probation judged the service by the time it waited for others), and
// one the kernel's verifier refuses (a hash map's value used without its NULL check; an array map
// would not do, since the verifier knows a constant in-bounds key always finds its element).
// Both build with our header; only the first may ever be attached.

export const LLM_FIXED = {
  name: "llmwake",
  source: `#include "schedctl.h"
char _license[] SEC("license") = "GPL";
#define SHARED_DSQ 0
#define JUST_WOKE_NS 2000000

struct {
	__uint(type, BPF_MAP_TYPE_TASK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, u64);
} woke_at SEC(".maps");

/*
 * A task that wakes up runs at once on its CPU, ahead of what runs there. One preempted soon
 * after it woke (a waker stepping aside for its wakee) goes on there next; the rest share a FIFO.
 */
void SCX_OP(llmwake_enqueue, struct task_struct *p, u64 enq_flags)
{
	u64 now = bpf_ktime_get_ns();
	u64 *woke = bpf_task_storage_get(&woke_at, p, 0, BPF_LOCAL_STORAGE_GET_F_CREATE);

	if (enq_flags & SCX_ENQ_WAKEUP) {
		if (woke)
			*woke = now;
		sc_insert(p, SCX_DSQ_LOCAL, 1000000, enq_flags | SCX_ENQ_PREEMPT);
		return;
	}
	if (woke && now - *woke < JUST_WOKE_NS) {
		sc_insert(p, SCX_DSQ_LOCAL, 1000000, enq_flags);
		return;
	}
	sc_insert(p, SHARED_DSQ, 2000000, enq_flags);
}

void SCX_OP(llmwake_dispatch, s32 cpu, struct task_struct *prev)
{
	sc_move_to_local(SHARED_DSQ);
}

s32 SCX_OP_SLEEPABLE(llmwake_init)
{
	return scx_bpf_create_dsq(SHARED_DSQ, -1);
}

SCX_OPS_DEFINE(llmwake_ops,
	       .enqueue = (void *)llmwake_enqueue,
	       .dispatch = (void *)llmwake_dispatch,
	       .init = (void *)llmwake_init,
	       .timeout_ms = 5000,
	       .name = "schedctl_llmwake");
`,
};

export const LLM_BROKEN = {
  name: "llmbroken",
  source: `#include "schedctl.h"
char _license[] SEC("license") = "GPL";
#define SHARED_DSQ 0

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 64);
	__type(key, u32);
	__type(value, u64);
} enqueued SEC(".maps");

void SCX_OP(llmbroken_enqueue, struct task_struct *p, u64 enq_flags)
{
	u32 key = p->pid;
	u64 *count = bpf_map_lookup_elem(&enqueued, &key);

	(*count)++; /* no NULL check: the verifier must refuse this */
	sc_insert(p, SHARED_DSQ, 2000000, enq_flags);
}

void SCX_OP(llmbroken_dispatch, s32 cpu, struct task_struct *prev)
{
	sc_move_to_local(SHARED_DSQ);
}

s32 SCX_OP_SLEEPABLE(llmbroken_init)
{
	return scx_bpf_create_dsq(SHARED_DSQ, -1);
}

SCX_OPS_DEFINE(llmbroken_ops,
	       .enqueue = (void *)llmbroken_enqueue,
	       .dispatch = (void *)llmbroken_dispatch,
	       .init = (void *)llmbroken_init,
	       .timeout_ms = 5000,
	       .name = "schedctl_llmbroken");
`,
};
