import { createHash } from "node:crypto";
import type { Logger } from "../../log/logger.ts";
import type { LlmCallRecord, LlmUsage } from "../types.ts";
import type { CircuitBreaker } from "./breaker.ts";
import { type Budget, costUsd, type Prices } from "./budget.ts";
import { estimateTokens } from "./openai.ts";
import {
  type CallStage,
  type ChatProvider,
  type ChatReply,
  type ChatRequest,
  type Llm,
  LlmCallError,
  LlmUnavailableError,
} from "./types.ts";

// One chat call as the rest of decide sees it: refused when the budget or the breaker says no,
// retried with exponential backoff and jitter (honouring Retry-After) on rate limits, server
// errors and timeouts, and recorded in the audit trail whatever happens.

/** A consultation's prompts are about this size; used to check the budget before starting one. */
const TYPICAL_PROMPT_TOKENS = 1500;

export interface LlmClientOptions {
  provider: ChatProvider;
  budget: Budget;
  prices: Prices;
  breaker: CircuitBreaker;
  maxRetries: number;
  timeoutMs: number;
  audit: { addCall(call: LlmCallRecord): void };
  now: () => number;
  monotonic: () => number;
  sleep: (ms: number, signal?: AbortSignal) => Promise<void>;
  logger: Logger;
  /** The API key, only so that it can be scrubbed from any error text. */
  secret?: string | undefined;
  random?: () => number;
  backoffBaseMs?: number;
  /** Longest wait between attempts; a Retry-After beyond it ends the retries. */
  backoffMaxMs?: number;
}

export class LlmClient implements Llm {
  readonly #o: LlmClientOptions;

  constructor(options: LlmClientOptions) {
    this.#o = options;
  }

  get provider(): string {
    return this.#o.provider.name;
  }

  get model(): string {
    return this.#o.provider.model;
  }

  refusal(): string | undefined {
    if (!this.#o.breaker.allows()) return "the LLM circuit breaker is open after repeated failures";
    const refusal = this.#o.budget.refusal(TYPICAL_PROMPT_TOKENS);
    return refusal ? `LLM budget: ${refusal}` : undefined;
  }

  status(): { breaker: string; usage: { hour: LlmUsage; day: LlmUsage } } {
    return { breaker: this.#o.breaker.state, usage: this.#o.budget.usage() };
  }

  async chat(
    request: Omit<ChatRequest, "maxTokens">,
    meta: { stage: CallStage; consultationId?: number },
    signal?: AbortSignal,
  ): Promise<ChatReply> {
    const o = this.#o;
    const promptText = JSON.stringify(request);
    const promptTokens = estimateTokens(promptText);
    const promptHash = createHash("sha256").update(promptText).digest("hex");
    const maxAttempts = o.maxRetries + 1;
    for (let attempt = 1; ; attempt++) {
      if (!o.breaker.allows())
        throw new LlmUnavailableError("the LLM circuit breaker is open after repeated failures");
      const refusal = o.budget.refusal(promptTokens);
      if (refusal) throw new LlmUnavailableError(`LLM budget: ${refusal}`);
      const started = o.monotonic();
      const record = (fields: Partial<LlmCallRecord> & { result: string }) =>
        o.audit.addCall({
          ...(meta.consultationId !== undefined && { consultationId: meta.consultationId }),
          at: o.now(),
          stage: meta.stage,
          provider: o.provider.name,
          model: o.provider.model,
          promptHash,
          inputTokens: 0,
          outputTokens: 0,
          costUsd: 0,
          latencyMs: Math.max(0, o.monotonic() - started),
          ...fields,
        });
      const timeout = AbortSignal.timeout(o.timeoutMs);
      const combined = signal ? AbortSignal.any([signal, timeout]) : timeout;
      try {
        const reply = await o.provider.send(
          { ...request, maxTokens: o.budget.answerTokens(promptTokens) },
          combined,
        );
        o.breaker.success();
        record({
          result: "ok",
          model: reply.model,
          inputTokens: reply.inputTokens,
          outputTokens: reply.outputTokens,
          costUsd: costUsd(o.prices, reply.inputTokens, reply.outputTokens),
        });
        return reply;
      } catch (error) {
        const failure =
          error instanceof LlmCallError
            ? error
            : new LlmCallError("network", (error as Error).message ?? String(error));
        const message = this.#scrub(failure.message);
        record({ result: failure.result });
        if (failure.kind === "aborted") throw new LlmCallError("aborted", message);
        const wait = this.#delay(attempt, failure);
        if (!failure.retryable || attempt >= maxAttempts || wait === undefined) {
          o.breaker.failure();
          throw new LlmCallError(failure.kind, `${message} (after ${attempt} attempt(s))`, failure.status);
        }
        o.logger.warn(
          { provider: o.provider.name, stage: meta.stage, attempt, result: failure.result, retryInMs: wait },
          "LLM call failed; retrying",
        );
        await o.sleep(wait, signal);
      }
    }
  }

  /** Exponential backoff with full jitter; a server's Retry-After, when given, is the floor. */
  #delay(attempt: number, failure: LlmCallError): number | undefined {
    const base = this.#o.backoffBaseMs ?? 500;
    const max = this.#o.backoffMaxMs ?? 60_000;
    const random = this.#o.random ?? Math.random;
    const backoff = Math.min(max, base * 2 ** (attempt - 1));
    const jittered = backoff / 2 + (random() * backoff) / 2;
    if (failure.retryAfterMs === undefined) return jittered;
    return failure.retryAfterMs > max ? undefined : Math.max(failure.retryAfterMs, jittered);
  }

  #scrub(text: string): string {
    const secret = this.#o.secret;
    return secret ? text.replaceAll(secret, "[redacted]") : text;
  }
}
