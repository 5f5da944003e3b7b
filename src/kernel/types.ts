// The kernel as schedctl sees it: sched_ext's state in sysfs, attaching and detaching a policy,
// verify-only loads, and what the kernel said about it. Only src/deploy/ (and verify's
// verify-only load) drive this; everything reports the kernel's truth, never what was requested.

export type SchedExtStateName = "enabled" | "disabled" | "enabling" | "disabling";

export interface SchedExtStatus {
  /** False when the kernel has no sched_ext (/sys/kernel/sched_ext is missing). */
  supported: boolean;
  state: SchedExtStateName | "unsupported";
  /** The attached scheduler's ops name (/sys/kernel/sched_ext/root/ops), when enabled. */
  ops: string | undefined;
  /** Bumps on every enable; a change means another scheduler was attached meanwhile. */
  enableSeq: number;
}

/** What can be attached: a compiled struct_ops object, or an external scx scheduler binary. */
export type Loadable =
  | { kind: "object"; hash: string; objectPath: string; opsName: string }
  | { kind: "process"; hash: string; argv: string[]; opsName: string };

export interface Attachment {
  hash: string;
  opsName: string;
  /** Pinned link path (objects) or child pid (processes). */
  handle: string;
  /** Monotonic ms when the kernel reported it enabled. */
  attachedAt: number;
}

export interface VerifyLoadResult {
  ok: boolean;
  /** The verifier's log (an excerpt around the failure when it refused). */
  log: string;
}

/** A sched_ext message from the kernel log, e.g. a scheduler disabled with its reason. */
export interface KernelEvent {
  /** Wall-clock ms when it was read. */
  at: number;
  kind: "enabled" | "disabled" | "error" | "warning";
  ops: string | undefined;
  /** "runnable task stall", "unregistered from user space", ... */
  reason: string;
  raw: string;
}

/**
 * The directory that marks a pinned policy as still in probation, as
 * /sys/fs/bpf/schedctl/<policy>/probation: the schedctld wrapper (debian/wrappers/drop-probation)
 * drops such a policy before the daemon's runtime starts.
 */
export const PROBATION_MARKER = "probation";

export interface Kernel {
  status(): SchedExtStatus;
  /** Loads every program through the kernel verifier without registering the scheduler. */
  verifyLoad(objectPath: string): Promise<VerifyLoadResult>;
  /**
   * Attaches and waits until the kernel reports it enabled; throws with the kernel's reason.
   * `probation`: marks the attachment unproven (PROBATION_MARKER beside its pinned link) until
   * confirm(), so that whatever starts schedctld after a crash can drop it before anything else.
   */
  attach(loadable: Loadable, options?: { timeoutMs?: number; probation?: boolean }): Promise<Attachment>;
  /** The current attachment passed probation: its probation marker goes. */
  confirm(): void;
  /** Detaches what schedctl attached and waits until the kernel reports disabled. */
  detach(options?: { timeoutMs?: number }): Promise<void>;
  /** schedctl's pinned links now present under /sys/fs/bpf/schedctl (for reconcile). */
  pinnedLinks(): string[];
  /** sched_ext messages from the kernel log since the last call. */
  readEvents(): KernelEvent[];
}
