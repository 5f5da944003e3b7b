import { z } from "zod";
import { postJson } from "./http.ts";
import { type ChatProvider, type ChatReply, type ChatRequest, LlmCallError } from "./types.ts";

// OpenAI-compatible chat completions (OpenAI, vLLM, llama.cpp's server, Ollama).

const Completion = z.object({
  model: z.string().optional(),
  choices: z.array(z.object({ message: z.object({ content: z.string().nullable() }) })).min(1),
  usage: z.object({ prompt_tokens: z.number().int(), completion_tokens: z.number().int() }).optional(),
});

export class OpenAiProvider implements ChatProvider {
  readonly name = "openai";
  readonly model: string;
  readonly #url: string;
  readonly #apiKey: string | undefined;

  /** `endpoint` is the API base, e.g. https://api.openai.com/v1 or http://127.0.0.1:11434/v1. */
  constructor(endpoint: string, model: string, apiKey: string | undefined) {
    this.#url = `${endpoint.replace(/\/+$/, "")}/chat/completions`;
    this.model = model;
    this.#apiKey = apiKey;
  }

  async send(request: ChatRequest, signal: AbortSignal): Promise<ChatReply> {
    const headers: Record<string, string> = this.#apiKey ? { authorization: `Bearer ${this.#apiKey}` } : {};
    const body = await postJson(
      this.#url,
      headers,
      {
        model: this.model,
        max_tokens: request.maxTokens,
        temperature: 0,
        messages: [{ role: "system", content: request.system }, ...request.messages],
      },
      signal,
    );
    const parsed = Completion.safeParse(body);
    if (!parsed.success) {
      throw new LlmCallError(
        "protocol",
        `${this.#url}: not a chat completion: ${parsed.error.issues[0]?.message}`,
      );
    }
    const { choices, usage, model } = parsed.data;
    const text = choices[0]?.message.content ?? "";
    return {
      text,
      model: model ?? this.model,
      inputTokens: usage?.prompt_tokens ?? estimateTokens(JSON.stringify(request)),
      outputTokens: usage?.completion_tokens ?? estimateTokens(text),
    };
  }
}

/** About four characters a token: for servers that report no usage. */
export function estimateTokens(text: string): number {
  return Math.ceil(text.length / 4);
}
