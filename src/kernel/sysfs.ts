import type { Host } from "../host/host.ts";
import type { SchedExtStateName, SchedExtStatus } from "./types.ts";

// sched_ext's state as the kernel reports it under /sys/kernel/sched_ext.

export const SCHED_EXT_DIR = "/sys/kernel/sched_ext";
const STATES = new Set<string>(["enabled", "disabled", "enabling", "disabling"]);

export function readSchedExtStatus(host: Host): SchedExtStatus {
  const state = host.tryReadText(`${SCHED_EXT_DIR}/state`)?.trim();
  if (state === undefined) return { supported: false, state: "unsupported", ops: undefined, enableSeq: 0 };
  if (!STATES.has(state)) throw new Error(`${SCHED_EXT_DIR}/state: unexpected state "${state}"`);
  // root/ops exists only while a scheduler is loaded (and may vanish between the two reads)
  const ops =
    state === "disabled" ? undefined : host.tryReadText(`${SCHED_EXT_DIR}/root/ops`)?.trim() || undefined;
  const seqText = host.tryReadText(`${SCHED_EXT_DIR}/enable_seq`)?.trim();
  const enableSeq = seqText === undefined ? 0 : Number.parseInt(seqText, 10);
  return {
    supported: true,
    state: state as SchedExtStateName,
    ops,
    enableSeq: Number.isFinite(enableSeq) ? enableSeq : 0,
  };
}
