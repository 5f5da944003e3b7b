// What a candidate may use. sched_ext policies need few helpers; anything that reaches outside
// scheduling (writing user memory, signals, overriding returns, printing to the trace pipe in
// production) is refused. Ids are the kernel's UAPI helper numbers (include/uapi/linux/bpf.h).

export const ALLOWED_HELPERS: ReadonlyMap<number, string> = new Map([
  [1, "map_lookup_elem"],
  [2, "map_update_elem"],
  [3, "map_delete_elem"],
  [5, "ktime_get_ns"],
  [7, "get_prandom_u32"],
  [8, "get_smp_processor_id"],
  [14, "get_current_pid_tgid"],
  [16, "get_current_comm"],
  [42, "get_numa_node_id"],
  [80, "get_current_cgroup_id"],
  [87, "map_push_elem"],
  [88, "map_pop_elem"],
  [89, "map_peek_elem"],
  [93, "spin_lock"],
  [94, "spin_unlock"],
  [113, "probe_read_kernel"],
  [115, "probe_read_kernel_str"],
  [118, "jiffies64"],
  [125, "ktime_get_boot_ns"],
  [156, "task_storage_get"],
  [157, "task_storage_delete"],
  [158, "get_current_task_btf"],
  [160, "ktime_get_coarse_ns"],
  [164, "for_each_map_elem"],
  [181, "loop"],
  [194, "kptr_xchg"],
  [195, "map_lookup_percpu_elem"],
  [210, "cgrp_storage_get"],
  [211, "cgrp_storage_delete"],
]);

const ALLOWED_KFUNC_PATTERNS: readonly RegExp[] = [
  /^scx_bpf_[a-z0-9_]+$/,
  /^bpf_cpumask_[a-z0-9_]+$/,
  /^bpf_(rcu_read_lock|rcu_read_unlock)$/,
  /^bpf_(task_from_pid|task_acquire|task_release)$/,
  /^bpf_(cgroup_from_id|cgroup_acquire|cgroup_release|cgroup_ancestor)$/,
  /^bpf_(obj_new_impl|obj_drop_impl|percpu_obj_new_impl|percpu_obj_drop_impl|refcount_acquire_impl)$/,
  /^bpf_(rbtree_add_impl|rbtree_first|rbtree_remove|list_push_front_impl|list_push_back_impl|list_pop_front|list_pop_back)$/,
  /^bpf_iter_(num|scx_dsq|css|task)_(new|next|destroy)$/,
  /^bpf_ktime_get_coarse_ns$/,
];

export function kfuncAllowed(name: string): boolean {
  return ALLOWED_KFUNC_PATTERNS.some((p) => p.test(name));
}

/** Licences the kernel counts as GPL-compatible (what sched_ext's GPL-only kfuncs require). */
export const GPL_LICENCES: ReadonlySet<string> = new Set([
  "GPL",
  "GPL v2",
  "GPL and additional rights",
  "Dual BSD/GPL",
  "Dual MIT/GPL",
  "Dual MPL/GPL",
]);

export const OPS_NAME_PREFIX = "schedctl_";
