import { forJournal } from "../text/untrusted.ts";
import type { JournalFields } from "./native.ts";

// The audit trail's record kinds. Each kind has its own MESSAGE_ID (so `journalctl
// MESSAGE_ID=...` finds every record of that kind) and an entry in etc/catalog/schedctl.catalog.
// MESSAGE is one line with hostile text escaped; the SCHEDCTL_* fields keep the exact values.

export const MESSAGE_IDS = {
  "phase-change": "5b7ac50dc5fa483286b059a1db885c9c",
  decision: "67b506516d704551aaedd5521b27268d",
  "llm-consultation": "4e1c56a1af504528b424cfd81a181970",
  verification: "a5c61ada3da64303807b5721fac2f327",
  deploy: "d01a5bab87e84fe6bfc6bc580f0b875d",
  rollback: "fb57d91406304729b298ea3e93b1aeb6",
} as const;

export type JournalEventType = keyof typeof MESSAGE_IDS;

/** syslog priorities, as journald's PRIORITY field takes them. */
export const PRIORITY = { warning: 4, notice: 5, info: 6 } as const;

export type JournalEvent =
  | { type: "phase-change"; phase: string; signature: string; drift: number; fromPhase?: string }
  | {
      type: "decision";
      policy: string;
      chooser: string;
      confidence: number;
      rationale: string;
      signature: string;
    }
  | {
      type: "llm-consultation";
      provider: string;
      model: string;
      signature: string;
      tokensIn: number;
      tokensOut: number;
      costUsd: number;
      /** answered, invalid, timeout, over-budget, error. */
      outcome: string;
    }
  | { type: "verification"; policy: string; hash: string; passed: boolean; stage: string; log: string }
  | { type: "deploy"; policy: string; hash: string; state: string; signature?: string }
  | { type: "rollback"; policy: string; to?: string; reason: string; signature?: string };

/** The record journald stores for an event: MESSAGE, PRIORITY, MESSAGE_ID and SCHEDCTL_* fields. */
export function journalFields(event: JournalEvent): JournalFields {
  const fields = rawFields(event);
  return { ...fields, MESSAGE: forJournal(String(fields.MESSAGE)) };
}

function rawFields(event: JournalEvent): JournalFields {
  const base = { MESSAGE_ID: MESSAGE_IDS[event.type], SCHEDCTL_EVENT: event.type };
  switch (event.type) {
    case "phase-change":
      return {
        ...base,
        MESSAGE: `Workload phase changed${event.fromPhase ? ` from ${event.fromPhase}` : ""} to ${event.phase} (signature ${event.signature}, drift ${event.drift.toFixed(1)})`,
        PRIORITY: PRIORITY.info,
        SCHEDCTL_PHASE: event.phase,
        SCHEDCTL_FROM_PHASE: event.fromPhase,
        SCHEDCTL_SIGNATURE: event.signature,
        SCHEDCTL_DRIFT: event.drift,
      };
    case "decision":
      return {
        ...base,
        MESSAGE: `Chose policy ${event.policy} (${event.chooser}, confidence ${event.confidence.toFixed(2)}): ${event.rationale}`,
        PRIORITY: PRIORITY.info,
        SCHEDCTL_POLICY: event.policy,
        SCHEDCTL_CHOOSER: event.chooser,
        SCHEDCTL_CONFIDENCE: event.confidence,
        SCHEDCTL_SIGNATURE: event.signature,
        SCHEDCTL_RATIONALE: event.rationale,
      };
    case "llm-consultation":
      return {
        ...base,
        MESSAGE: `Consulted ${event.provider}/${event.model}: ${event.outcome} (${event.tokensIn}+${event.tokensOut} tokens, $${event.costUsd.toFixed(4)})`,
        PRIORITY: PRIORITY.info,
        SCHEDCTL_LLM_PROVIDER: event.provider,
        SCHEDCTL_LLM_MODEL: event.model,
        SCHEDCTL_LLM_OUTCOME: event.outcome,
        SCHEDCTL_TOKENS_IN: event.tokensIn,
        SCHEDCTL_TOKENS_OUT: event.tokensOut,
        SCHEDCTL_COST_USD: event.costUsd,
        SCHEDCTL_SIGNATURE: event.signature,
      };
    case "verification":
      return {
        ...base,
        MESSAGE: `Policy ${event.policy} ${event.passed ? "passed" : "failed"} verification at stage ${event.stage}`,
        PRIORITY: event.passed ? PRIORITY.info : PRIORITY.warning,
        SCHEDCTL_POLICY: event.policy,
        SCHEDCTL_HASH: event.hash,
        SCHEDCTL_VERDICT: event.passed ? "pass" : "fail",
        SCHEDCTL_STAGE: event.stage,
        SCHEDCTL_LOG: clip(event.log),
      };
    case "deploy":
      return {
        ...base,
        MESSAGE: `Deployed policy ${event.policy} (${event.state})`,
        PRIORITY: PRIORITY.notice,
        SCHEDCTL_POLICY: event.policy,
        SCHEDCTL_HASH: event.hash,
        SCHEDCTL_STATE: event.state,
        SCHEDCTL_SIGNATURE: event.signature,
      };
    case "rollback":
      return {
        ...base,
        MESSAGE: `Rolled back policy ${event.policy} to ${event.to ?? "the kernel default"}: ${event.reason}`,
        PRIORITY: PRIORITY.warning,
        SCHEDCTL_POLICY: event.policy,
        SCHEDCTL_TO_POLICY: event.to,
        SCHEDCTL_REASON: event.reason,
        SCHEDCTL_SIGNATURE: event.signature,
      };
  }
}

/** Verifier logs can be huge; the journal keeps the end, where the error is. */
const MAX_LOG = 8192;
function clip(log: string): string {
  return log.length <= MAX_LOG ? log : `[...]${log.slice(-MAX_LOG)}`;
}
