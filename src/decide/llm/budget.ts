import type { LlmUsage } from "../types.ts";

// What the LLM may spend: calls per hour and day, tokens per call and day, dollars per day. Usage
// comes from the audit trail, so a restart does not hand out a fresh budget.

export interface BudgetLimits {
  callsPerHour: number;
  callsPerDay: number;
  tokensPerCall: number;
  tokensPerDay: number;
  /** 0: no limit. */
  costPerDayUsd: number;
}

export interface Prices {
  inputPerMtok: number;
  outputPerMtok: number;
}

const HOUR = 3_600_000;
const DAY = 24 * HOUR;
/** Below this many tokens left for the answer, a call is not worth making. */
export const MIN_ANSWER_TOKENS = 256;

export function costUsd(prices: Prices, inputTokens: number, outputTokens: number): number {
  return (inputTokens * prices.inputPerMtok + outputTokens * prices.outputPerMtok) / 1e6;
}

export class Budget {
  readonly limits: BudgetLimits;
  readonly #usageSince: (sinceMs: number) => LlmUsage;
  readonly #now: () => number;

  constructor(limits: BudgetLimits, usageSince: (sinceMs: number) => LlmUsage, now: () => number) {
    this.limits = limits;
    this.#usageSince = usageSince;
    this.#now = now;
  }

  /** Why a call with this many prompt tokens may not be made now, or undefined when it may. */
  refusal(promptTokens: number): string | undefined {
    const l = this.limits;
    if (promptTokens + MIN_ANSWER_TOKENS > l.tokensPerCall) {
      return `the prompt (~${promptTokens} tokens) leaves no room for an answer within tokens_per_call=${l.tokensPerCall}`;
    }
    const hour = this.#usageSince(this.#now() - HOUR);
    if (hour.calls >= l.callsPerHour) return `calls_per_hour=${l.callsPerHour} reached`;
    const day = this.#usageSince(this.#now() - DAY);
    if (day.calls >= l.callsPerDay) return `calls_per_day=${l.callsPerDay} reached`;
    if (day.tokens + promptTokens > l.tokensPerDay) return `tokens_per_day=${l.tokensPerDay} reached`;
    if (l.costPerDayUsd > 0 && day.costUsd >= l.costPerDayUsd)
      return `cost_per_day_usd=${l.costPerDayUsd} reached`;
    return undefined;
  }

  /** Tokens the answer may use, within the per-call limit. */
  answerTokens(promptTokens: number): number {
    return this.limits.tokensPerCall - promptTokens;
  }

  usage(): { hour: LlmUsage; day: LlmUsage } {
    return { hour: this.#usageSince(this.#now() - HOUR), day: this.#usageSince(this.#now() - DAY) };
  }
}
