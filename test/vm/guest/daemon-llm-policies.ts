// The policies the scripted LLM "writes" in the daemon's VM test: a small correct one, and one
// the kernel's verifier refuses (a hash map's value used without its NULL check; an array map
// would not do, since the verifier knows a constant in-bounds key always finds its element).
// Both build with our header; only the first may ever be attached.

export const LLM_FIXED = {
  name: "llmfifo",
  source: `#include "schedctl.h"
char _license[] SEC("license") = "GPL";
#define SHARED_DSQ 0

void SCX_OP(llmfifo_enqueue, struct task_struct *p, u64 enq_flags)
{
	sc_insert(p, SHARED_DSQ, 2000000, enq_flags);
}

void SCX_OP(llmfifo_dispatch, s32 cpu, struct task_struct *prev)
{
	sc_move_to_local(SHARED_DSQ);
}

s32 SCX_OP_SLEEPABLE(llmfifo_init)
{
	return scx_bpf_create_dsq(SHARED_DSQ, -1);
}

SCX_OPS_DEFINE(llmfifo_ops,
	       .enqueue = (void *)llmfifo_enqueue,
	       .dispatch = (void *)llmfifo_dispatch,
	       .init = (void *)llmfifo_init,
	       .timeout_ms = 5000,
	       .name = "schedctl_llmfifo");
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
