import { z } from "zod";
import { postJson } from "./http.ts";
import { estimateTokens } from "./openai.ts";
import { type ChatProvider, type ChatReply, type ChatRequest, LlmCallError } from "./types.ts";

// Anthropic's Messages API.

const API_VERSION = "2023-06-01";

const MessageReply = z.object({
  model: z.string().optional(),
  content: z.array(z.object({ type: z.string(), text: z.string().optional() })),
  usage: z.object({ input_tokens: z.number().int(), output_tokens: z.number().int() }).optional(),
});

export class AnthropicProvider implements ChatProvider {
  readonly name = "anthropic";
  readonly model: string;
  readonly #url: string;
  readonly #apiKey: string | undefined;

  /** `endpoint` is the API root, e.g. https://api.anthropic.com. */
  constructor(endpoint: string, model: string, apiKey: string | undefined) {
    this.#url = `${endpoint.replace(/\/+$/, "")}/v1/messages`;
    this.model = model;
    this.#apiKey = apiKey;
  }

  async send(request: ChatRequest, signal: AbortSignal): Promise<ChatReply> {
    const headers: Record<string, string> = { "anthropic-version": API_VERSION };
    if (this.#apiKey) headers["x-api-key"] = this.#apiKey;
    const body = await postJson(
      this.#url,
      headers,
      {
        model: this.model,
        max_tokens: request.maxTokens,
        temperature: 0,
        system: request.system,
        messages: request.messages,
      },
      signal,
    );
    const parsed = MessageReply.safeParse(body);
    if (!parsed.success) {
      throw new LlmCallError(
        "protocol",
        `${this.#url}: not a Messages API reply: ${parsed.error.issues[0]?.message}`,
      );
    }
    const { content, usage, model } = parsed.data;
    const text = content
      .filter((c) => c.type === "text")
      .map((c) => c.text ?? "")
      .join("");
    return {
      text,
      model: model ?? this.model,
      inputTokens: usage?.input_tokens ?? estimateTokens(JSON.stringify(request)),
      outputTokens: usage?.output_tokens ?? estimateTokens(text),
    };
  }
}
