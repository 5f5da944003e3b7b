/* SPDX-License-Identifier: GPL-2.0 */
/*
 * schedctl's sched_ext header: what a policy in bpf/policies/ needs beyond vmlinux.h and
 * libbpf's headers (Debian's libbpf-dev, 1.4 from bookworm-backports): kfuncs under the names
 * of every kernel we support, wrappers that pick the running kernel's, tunables, and the ops
 * macros. Kernel functions are declared __ksym __weak under both their 6.12 names
 * (scx_bpf_dispatch*, scx_bpf_consume) and their 6.13+ names (scx_bpf_dsq_insert*,
 * scx_bpf_dsq_move_to_local); the sc_* helpers pick whichever the running kernel has, and the
 * verifier drops the other branch at load time. A policy may as well be written in the plain
 * libbpf style (SEC("struct_ops/...") with BPF_PROG, kfuncs from vmlinux.h) and skip this file.
 */
#ifndef __SCHEDCTL_H
#define __SCHEDCTL_H

/* We declare the kfuncs ourselves, with the names of every kernel we support. */
#define BPF_NO_KFUNC_PROTOTYPES
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

#ifndef READ_ONCE
#define READ_ONCE(x) (*(volatile typeof(x) *)&(x))
#endif
#ifndef WRITE_ONCE
#define WRITE_ONCE(x, v) (*(volatile typeof(x) *)&(x) = (v))
#endif

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

/* ---- struct_ops programs: `s32 SCX_OP(x_select_cpu, struct task_struct *p, ...)` ---- */
#define SCX_OP(name, args...) SEC("struct_ops/" #name) BPF_PROG(name, ##args)
#define SCX_OP_SLEEPABLE(name, args...) SEC("struct_ops.s/" #name) BPF_PROG(name, ##args)

/* The policy's ops table, registered with a link that bpftool pins (see src/kernel/). */
#define SCX_OPS_DEFINE(sym, ...) SEC(".struct_ops.link") struct sched_ext_ops sym = { __VA_ARGS__ }

#endif /* __SCHEDCTL_H */
