import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";

// A local stand-in for a paid LLM API: node:http on 127.0.0.1 (ephemeral port) speaking both the
// OpenAI-compatible chat completions protocol (POST /v1/chat/completions) and Anthropic's
// Messages API (POST /v1/messages), answering from a script. Used by the integration tests, the
// VM tests and the benchmarks.

export type ScriptedReply =
  /** The model's text, verbatim (valid JSON, malformed JSON, prose...). */
  | { content: string }
  /** Shorthand for content = JSON.stringify(json). */
  | { json: unknown }
  /** An HTTP error, e.g. 429 with Retry-After, or 500. */
  | { status: number; retryAfter?: string; body?: string }
  /** Never answers: the client's timeout must fire. */
  | { hang: true }
  /** 200 with a body that is not the protocol's JSON. */
  | { rawBody: string };

export interface RecordedRequest {
  protocol: "openai" | "anthropic";
  headers: Record<string, string | string[] | undefined>;
  body: {
    model?: string;
    max_tokens?: number;
    system?: string;
    messages: { role: string; content: string }[];
  };
  system: string;
  /** The last user message: what the model is being asked now. */
  lastUser: string;
}

export type Responder = (request: RecordedRequest, index: number) => ScriptedReply;

export interface LlmServer {
  /** http://127.0.0.1:PORT */
  url: string;
  /** Base for [llm] endpoint with provider = "openai". */
  openaiEndpoint: string;
  /** Root for [llm] endpoint with provider = "anthropic". */
  anthropicEndpoint: string;
  requests: RecordedRequest[];
  close(): Promise<void>;
}

/** A script is a list of replies, served in order (the last one repeats), or a function. */
export async function startLlmServer(script: ScriptedReply[] | Responder): Promise<LlmServer> {
  const requests: RecordedRequest[] = [];
  const respond: Responder = Array.isArray(script)
    ? (_req, i) => script[Math.min(i, script.length - 1)] ?? { status: 500, body: "empty script" }
    : script;
  const server = createServer((req, res) => {
    void handle(req, res, requests, respond);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  const url = `http://127.0.0.1:${port}`;
  return {
    url,
    openaiEndpoint: `${url}/v1`,
    anthropicEndpoint: url,
    requests,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

async function handle(
  req: IncomingMessage,
  res: ServerResponse,
  requests: RecordedRequest[],
  respond: Responder,
): Promise<void> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  const protocol =
    req.url === "/v1/chat/completions" ? "openai" : req.url === "/v1/messages" ? "anthropic" : undefined;
  if (req.method !== "POST" || !protocol) {
    res.writeHead(404, { "content-type": "application/json" }).end(JSON.stringify({ error: "not found" }));
    return;
  }
  const body = JSON.parse(Buffer.concat(chunks).toString("utf8")) as RecordedRequest["body"];
  const messages = body.messages.filter((m) => m.role !== "system");
  const system =
    protocol === "anthropic"
      ? (body.system ?? "")
      : (body.messages.find((m) => m.role === "system")?.content ?? "");
  const lastUser = [...messages].reverse().find((m) => m.role === "user")?.content ?? "";
  const recorded: RecordedRequest = { protocol, headers: req.headers, body, system, lastUser };
  const index = requests.push(recorded) - 1;
  const reply = respond(recorded, index);
  if ("hang" in reply) return; // the connection stays open until the client gives up or close()
  if ("status" in reply) {
    const headers: Record<string, string> = { "content-type": "application/json" };
    if (reply.retryAfter !== undefined) headers["retry-after"] = reply.retryAfter;
    res
      .writeHead(reply.status, headers)
      .end(reply.body ?? JSON.stringify({ error: { message: `status ${reply.status}` } }));
    return;
  }
  if ("rawBody" in reply) {
    res.writeHead(200, { "content-type": "application/json" }).end(reply.rawBody);
    return;
  }
  const content = "json" in reply ? JSON.stringify(reply.json) : reply.content;
  const inputTokens = Math.ceil(JSON.stringify(body.messages).length / 4) + Math.ceil(system.length / 4);
  const outputTokens = Math.ceil(content.length / 4);
  const model = body.model ?? "scripted";
  const payload =
    protocol === "openai"
      ? {
          id: `chatcmpl-${index}`,
          object: "chat.completion",
          model,
          choices: [{ index: 0, message: { role: "assistant", content }, finish_reason: "stop" }],
          usage: {
            prompt_tokens: inputTokens,
            completion_tokens: outputTokens,
            total_tokens: inputTokens + outputTokens,
          },
        }
      : {
          id: `msg_${index}`,
          type: "message",
          role: "assistant",
          model,
          content: [{ type: "text", text: content }],
          stop_reason: "end_turn",
          usage: { input_tokens: inputTokens, output_tokens: outputTokens },
        };
  res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify(payload));
}

/** Which question a request asks, from the prompts decide sends. */
export function stageOf(
  request: RecordedRequest,
): "goal" | "synthesis" | "repair" | "correction" | "unknown" {
  const q = request.lastUser;
  if (q.startsWith("Stage 1")) return "goal";
  if (q.startsWith("Stage 2")) return "synthesis";
  if (q.includes("failed verification")) return "repair";
  if (q.startsWith("Your reply was rejected")) return "correction";
  return "unknown";
}

/** The phase class decide reported in its stage prompts. */
export function classOf(request: RecordedRequest): string | undefined {
  for (const m of request.body.messages) {
    const match = /Class \(from schedctl's classifier\): (\w+)|Phase class: (\w+)/.exec(m.content);
    if (match) return match[1] ?? match[2];
  }
  return undefined;
}

/**
 * A well-behaved advisor: infers a goal from the class and answers synthesis with `choose(class)`
 * (a pick, a write, or the default). Repairs get `repair(attempt)` when given.
 */
export function advisor(options: {
  choose: (workloadClass: string | undefined) => Record<string, unknown>;
  repair?: (round: number) => Record<string, unknown>;
}): Responder {
  let repairs = 0;
  return (request) => {
    const cls = classOf(request);
    switch (stageOf(request)) {
      case "goal":
        return {
          json: {
            optimise:
              cls === "latency" || cls === "mixed" ? "latency" : cls === "idle" ? "nothing" : "throughput",
            protect_cgroup: null,
            kpi: cls === "latency" ? "p99 wake-up latency" : "makespan",
            rationale: `the phase is ${cls}`,
          },
        };
      case "repair":
        repairs++;
        return { json: options.repair ? options.repair(repairs) : options.choose(cls) };
      default:
        return { json: options.choose(cls) };
    }
  };
}
