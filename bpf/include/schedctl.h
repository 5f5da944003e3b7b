/* SPDX-License-Identifier: GPL-2.0 */
/*
 * schedctl's sched_ext header: everything a policy in bpf/policies/ needs besides vmlinux.h.
 *
 * Self-contained on purpose: it needs no libbpf headers (bookworm's libbpf-dev 1.1 lacks
 * bpf_ksym_exists and struct_ops section support), only the vmlinux.h generated for the target
 * kernel's BTF. Kernel functions are declared __ksym __weak under both their 6.12 names
 * (scx_bpf_dispatch*, scx_bpf_consume) and their 6.13+ names (scx_bpf_dsq_insert*,
 * scx_bpf_dsq_move_to_local); the sc_* helpers pick whichever the running kernel has, and the
 * verifier drops the other branch at load time.
 */
#ifndef __SCHEDCTL_H
#define __SCHEDCTL_H

/* We declare the kfuncs ourselves, with the names of every kernel we support. */
#define BPF_NO_KFUNC_PROTOTYPES
#include "vmlinux.h"

/* ---- compiler and section attributes (what libbpf's bpf_helpers.h would give) ---- */
#define SEC(name) __attribute__((section(name), used))
#define __always_inline inline __attribute__((always_inline))
#define __ksym __attribute__((section(".ksyms")))
#define __weak __attribute__((weak))
#define __uint(name, val) int (*name)[val]
#define __type(name, val) typeof(val) *name
#define likely(x) __builtin_expect(!!(x), 1)
#define unlikely(x) __builtin_expect(!!(x), 0)
#ifndef NULL
#define NULL ((void *)0)
#endif
#define READ_ONCE(x) (*(volatile typeof(x) *)&(x))
#define WRITE_ONCE(x, v) (*(volatile typeof(x) *)&(x) = (v))

/* True when the running kernel resolved this weak ksym (libbpf leaves missing ones at 0). */
#define bpf_ksym_exists(sym) (!!(sym))

/* ---- BPF helpers, by their stable numbers in enum bpf_func_id ---- */
static void *(*bpf_map_lookup_elem)(void *map, const void *key) = (void *)BPF_FUNC_map_lookup_elem;
static long (*bpf_map_update_elem)(void *map, const void *key, const void *value, u64 flags) =
	(void *)BPF_FUNC_map_update_elem;
static long (*bpf_map_delete_elem)(void *map, const void *key) = (void *)BPF_FUNC_map_delete_elem;
static u64 (*bpf_ktime_get_ns)(void) = (void *)BPF_FUNC_ktime_get_ns;
static u32 (*bpf_get_smp_processor_id)(void) = (void *)BPF_FUNC_get_smp_processor_id;
/* Calls callback(i, ctx) for i in [0, nr_loops) until it returns 1; verified once, not unrolled. */
static long (*bpf_loop)(u32 nr_loops, void *callback_fn, void *callback_ctx, u64 flags) = (void *)BPF_FUNC_loop;
static void *(*bpf_task_storage_get)(void *map, struct task_struct *task, void *value, u64 flags) =
	(void *)BPF_FUNC_task_storage_get;

/* ---- sched_ext kfuncs (weak: a kernel without one leaves it NULL) ---- */
s32 scx_bpf_create_dsq(u64 dsq_id, s32 node) __ksym __weak;
s32 scx_bpf_select_cpu_dfl(struct task_struct *p, s32 prev_cpu, u64 wake_flags, bool *is_idle) __ksym __weak;
bool scx_bpf_test_and_clear_cpu_idle(s32 cpu) __ksym __weak;
s32 scx_bpf_pick_idle_cpu(const struct cpumask *cpus_allowed, u64 flags) __ksym __weak;
s32 scx_bpf_dsq_nr_queued(u64 dsq_id) __ksym __weak;
void scx_bpf_kick_cpu(s32 cpu, u64 flags) __ksym __weak;
s32 scx_bpf_task_cpu(const struct task_struct *p) __ksym __weak;
u32 scx_bpf_nr_cpu_ids(void) __ksym __weak;
struct cgroup *scx_bpf_task_cgroup(struct task_struct *p) __ksym __weak;
u64 scx_bpf_now(void) __ksym __weak;
void scx_bpf_error_bstr(char *fmt, unsigned long long *data, u32 data__sz) __ksym __weak;
/* 6.13+ names */
void scx_bpf_dsq_insert(struct task_struct *p, u64 dsq_id, u64 slice, u64 enq_flags) __ksym __weak;
void scx_bpf_dsq_insert_vtime(struct task_struct *p, u64 dsq_id, u64 slice, u64 vtime, u64 enq_flags) __ksym __weak;
bool scx_bpf_dsq_move_to_local(u64 dsq_id) __ksym __weak;
/* 6.12 names */
void scx_bpf_dispatch(struct task_struct *p, u64 dsq_id, u64 slice, u64 enq_flags) __ksym __weak;
void scx_bpf_dispatch_vtime(struct task_struct *p, u64 dsq_id, u64 slice, u64 vtime, u64 enq_flags) __ksym __weak;
bool scx_bpf_consume(u64 dsq_id) __ksym __weak;
/* generic kfuncs */
void bpf_cgroup_release(struct cgroup *cgrp) __ksym __weak;
struct cgroup *bpf_cgroup_ancestor(struct cgroup *cgrp, int level) __ksym __weak;
bool bpf_cpumask_test_cpu(u32 cpu, const struct cpumask *cpumask) __ksym __weak;

/* ---- version-independent wrappers ---- */
static __always_inline void sc_insert(struct task_struct *p, u64 dsq_id, u64 slice, u64 enq_flags)
{
	if (bpf_ksym_exists(scx_bpf_dsq_insert))
		scx_bpf_dsq_insert(p, dsq_id, slice, enq_flags);
	else
		scx_bpf_dispatch(p, dsq_id, slice, enq_flags);
}

static __always_inline void sc_insert_vtime(struct task_struct *p, u64 dsq_id, u64 slice, u64 vtime,
					    u64 enq_flags)
{
	if (bpf_ksym_exists(scx_bpf_dsq_insert_vtime))
		scx_bpf_dsq_insert_vtime(p, dsq_id, slice, vtime, enq_flags);
	else
		scx_bpf_dispatch_vtime(p, dsq_id, slice, vtime, enq_flags);
}

static __always_inline bool sc_move_to_local(u64 dsq_id)
{
	if (bpf_ksym_exists(scx_bpf_dsq_move_to_local))
		return scx_bpf_dsq_move_to_local(dsq_id);
	return scx_bpf_consume(dsq_id);
}

/* scx_bpf_now() (6.14+) is cheaper and rq-clock based; older kernels fall back to ktime. */
static __always_inline u64 sc_now(void)
{
	if (bpf_ksym_exists(scx_bpf_now))
		return scx_bpf_now();
	return bpf_ktime_get_ns();
}

/* a before b in the wrapping u64 virtual-time space */
static __always_inline bool sc_vtime_before(u64 a, u64 b)
{
	return (s64)(a - b) < 0;
}

static __always_inline u64 sc_min(u64 a, u64 b) { return a < b ? a : b; }
static __always_inline u64 sc_max(u64 a, u64 b) { return a > b ? a : b; }

/* ---- tunables ----
 * Every tunable of a policy's manifest reaches it as a -DSCHEDCTL_TUNABLE_<name>=VALUE define
 * (src/policies/compile.ts passes all of them, defaults included), held in a read-only global
 * so the verifier sees a constant. A policy that names a tunable its manifest lacks fails to
 * compile, which keeps source and manifest in step.
 */
#define TUNABLE(name) SCHEDCTL_TUNABLE_##name

/* ---- struct_ops program definitions ----
 * A struct_ops program receives its arguments as an array of u64; SCX_OP(name, args...) declares
 * the program `name` with typed arguments, in the spirit of libbpf's BPF_PROG.
 */
#define ___sc_nth(_0, _1, _2, _3, _4, _5, N, ...) N
#define ___sc_cnt(...) ___sc_nth(_, ##__VA_ARGS__, 5, 4, 3, 2, 1, 0)
#define ___sc_cat(a, b) a##b
#define ___sc_casts(n) ___sc_cat(___sc_cast, n)
/* one `, (void *)ctx[i]` per argument; the callee's prototype converts each to its type */
#define ___sc_cast0()
#define ___sc_cast1(a) , (void *)ctx[0]
#define ___sc_cast2(a, b) ___sc_cast1(a), (void *)ctx[1]
#define ___sc_cast3(a, b, c) ___sc_cast2(a, b), (void *)ctx[2]
#define ___sc_cast4(a, b, c, d) ___sc_cast3(a, b, c), (void *)ctx[3]
#define ___sc_cast5(a, b, c, d, e) ___sc_cast4(a, b, c, d), (void *)ctx[4]

/* Used after the return type: `s32 SCX_OP(x_select_cpu, struct task_struct *p, ...)`. */
#define ___SC_PROG(section, name, ...)                                                        \
	name(unsigned long long *ctx);                                                            \
	static __always_inline typeof(name(0)) ____##name(unsigned long long *ctx, ##__VA_ARGS__); \
	SEC(section) typeof(name(0)) name(unsigned long long *ctx)                               \
	{                                                                                         \
		_Pragma("GCC diagnostic push")                                                        \
		_Pragma("GCC diagnostic ignored \"-Wint-conversion\"")                               \
		return ____##name(ctx ___sc_casts(___sc_cnt(__VA_ARGS__))(__VA_ARGS__));              \
		_Pragma("GCC diagnostic pop")                                                         \
	}                                                                                         \
	static __always_inline typeof(name(0)) ____##name(unsigned long long *ctx, ##__VA_ARGS__)

#define SCX_OP(name, ...) ___SC_PROG("struct_ops/" #name, name, ##__VA_ARGS__)
#define SCX_OP_SLEEPABLE(name, ...) ___SC_PROG("struct_ops.s/" #name, name, ##__VA_ARGS__)

/* The policy's ops table, registered with a link that bpftool pins (see src/kernel/). */
#define SCX_OPS_DEFINE(sym, ...) SEC(".struct_ops.link") struct sched_ext_ops sym = { __VA_ARGS__ }

#endif /* __SCHEDCTL_H */
