import type { Config } from "../../config/schema.ts";
import type { Logger } from "../../log/logger.ts";
import type { LlmCallRecord, LlmUsage } from "../types.ts";
import { AnthropicProvider } from "./anthropic.ts";
import { CircuitBreaker } from "./breaker.ts";
import { Budget } from "./budget.ts";
import { LlmClient } from "./client.ts";
import { readApiKey } from "./key.ts";
import { OpenAiProvider } from "./openai.ts";

// Builds the LLM client from [llm], or says why there is none. The daemon calls this once.

const DEFAULT_ENDPOINTS = {
  openai: "https://api.openai.com/v1",
  anthropic: "https://api.anthropic.com",
} as const;

export interface LlmEnvironment {
  audit: { addCall(call: LlmCallRecord): void; usageSince(sinceMs: number): LlmUsage };
  now: () => number;
  monotonic: () => number;
  sleep: (ms: number, signal?: AbortSignal) => Promise<void>;
  logger: Logger;
  /** $CREDENTIALS_DIRECTORY (systemd's LoadCredential=). */
  credentialsDirectory?: string | undefined;
}

export type LlmSetup = { client: LlmClient } | { disabled: string };

export function createLlm(config: Config["llm"], env: LlmEnvironment): LlmSetup {
  if (config.provider === "none") return { disabled: "disabled: no provider configured" };
  if (!config.model) return { disabled: `disabled: [llm] provider = "${config.provider}" needs a model` };
  let apiKey: string | undefined;
  try {
    apiKey = readApiKey({ credentialsDirectory: env.credentialsDirectory, keyFile: config.api_key_file });
  } catch (error) {
    return { disabled: `disabled: ${(error as Error).message}` };
  }
  const endpoint = config.endpoint ?? DEFAULT_ENDPOINTS[config.provider];
  const provider =
    config.provider === "openai"
      ? new OpenAiProvider(endpoint, config.model, apiKey)
      : new AnthropicProvider(endpoint, config.model, apiKey);
  const budget = new Budget(
    {
      callsPerHour: config.calls_per_hour,
      callsPerDay: config.calls_per_day,
      tokensPerCall: config.tokens_per_call,
      tokensPerDay: config.tokens_per_day,
      costPerDayUsd: config.cost_per_day_usd,
    },
    (since) => env.audit.usageSince(since),
    env.now,
  );
  const client = new LlmClient({
    provider,
    budget,
    prices: { inputPerMtok: config.price_input_per_mtok, outputPerMtok: config.price_output_per_mtok },
    breaker: new CircuitBreaker(config.breaker_failures, config.breaker_cooldown_ms, env.monotonic),
    maxRetries: config.max_retries,
    timeoutMs: config.timeout_ms,
    audit: env.audit,
    now: env.now,
    monotonic: env.monotonic,
    sleep: env.sleep,
    logger: env.logger.child({ llm: provider.name }),
    secret: apiKey,
  });
  return { client };
}
