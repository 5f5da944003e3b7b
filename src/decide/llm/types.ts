import type { LlmUsage } from "../types.ts";

// The HTTP edge of the LLM: one provider per protocol, each doing a single attempt. Retries,
// the circuit breaker, the budget and the audit trail wrap them (client.ts).

export interface ChatMessage {
  role: "user" | "assistant";
  content: string;
}

export interface ChatRequest {
  system: string;
  messages: ChatMessage[];
  maxTokens: number;
}

export interface ChatReply {
  text: string;
  inputTokens: number;
  outputTokens: number;
  /** The model that answered, as the server named it. */
  model: string;
}

export interface ChatProvider {
  readonly name: string;
  readonly model: string;
  send(request: ChatRequest, signal: AbortSignal): Promise<ChatReply>;
}

export type CallFailure = "http" | "timeout" | "network" | "protocol" | "aborted";

export class LlmCallError extends Error {
  override readonly name = "LlmCallError";
  readonly kind: CallFailure;
  readonly status: number | undefined;
  readonly retryAfterMs: number | undefined;

  constructor(kind: CallFailure, message: string, status?: number, retryAfterMs?: number) {
    super(message);
    this.kind = kind;
    this.status = status;
    this.retryAfterMs = retryAfterMs;
  }

  /** Worth another try: rate limits, server errors, timeouts and dropped connections. */
  get retryable(): boolean {
    if (this.kind === "http") return this.status === 429 || (this.status ?? 0) >= 500;
    return this.kind === "timeout" || this.kind === "network";
  }

  /** Short form for the audit trail. */
  get result(): string {
    return this.kind === "http" ? `http ${this.status}` : this.kind;
  }
}

export type CallStage = "goal" | "synthesis" | "repair" | "correction";

/** What the consultation logic sees of the model: one budgeted, retried, audited chat call. */
export interface Llm {
  readonly provider: string;
  readonly model: string;
  /** Why no call can be made now (budget spent, breaker open), or undefined. */
  refusal(): string | undefined;
  /** The breaker's state and what was spent, for status displays. */
  status?(): { breaker: string; usage: { hour: LlmUsage; day: LlmUsage } };
  chat(
    request: Omit<ChatRequest, "maxTokens">,
    meta: { stage: CallStage; consultationId?: number },
    signal?: AbortSignal,
  ): Promise<ChatReply>;
}

/** The LLM may not be called now (budget spent, circuit open): not a failure of the model. */
export class LlmUnavailableError extends Error {
  override readonly name = "LlmUnavailableError";
}
