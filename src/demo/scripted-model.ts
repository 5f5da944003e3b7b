import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { z } from "zod";

// A stand-in for a paid LLM API in the day's LLM runs: an OpenAI-compatible chat completions
// endpoint on the guest's 127.0.0.1 that answers schedctl's two consultations by rule, as a model
// reading the same prompt might: a service under pressure wants latency, many short jobs want
// their makespan, the rest throughput. It shows when schedctl asks, not how well a model
// reasons. Run in the guest as `node scripted-model.js PORT`.

/** The workload block of a prompt (src/decide/prompts.ts), as far as the rules read it. */
const Workload = z.object({
  cgroups: z.array(z.object({ path: z.string(), cpu_share: z.number(), cpu_pressure: z.number() })),
  processes: z.array(z.object({ comm: z.string() })),
});
type Workload = z.infer<typeof Workload>;

const ChatRequest = z.object({
  messages: z.array(z.object({ role: z.string(), content: z.string() })).min(1),
});

type Goal = "latency" | "makespan" | "throughput";

/** The reply to one prompt, as the model's text. */
export function answer(prompt: string): string {
  if (prompt.includes("Stage 1, goal inference")) {
    const workload = workloadOf(prompt);
    const service = workload && waitingService(workload);
    const goal = goalOf(workload, service);
    return JSON.stringify({
      optimise: goal,
      protect_cgroup: service ?? null,
      kpi:
        goal === "latency"
          ? "the service's wake-up latency"
          : goal === "makespan"
            ? "mean job completion"
            : "work done per second",
      rationale: service
        ? `${service} waits for CPU behind other work`
        : `no service waits; the work is ${goal}-bound`,
    });
  }
  if (prompt.includes("Stage 2, policy synthesis")) {
    const goal = /Goal \(from stage 1\): optimise (latency|makespan|throughput)/.exec(prompt)?.[1] as
      | Goal
      | undefined;
    const policy = goal === "latency" ? "latency" : goal === "makespan" ? "batch-order" : "throughput";
    return JSON.stringify({
      action: "pick",
      policy,
      tunables: {},
      rationale: `made for ${goal ?? "throughput"} work`,
      confidence: 0.8,
    });
  }
  return JSON.stringify({
    action: "default",
    rationale: "not a question this model answers",
    confidence: 0.5,
  });
}

function workloadOf(prompt: string): Workload | undefined {
  const block = /<untrusted-data name="workload">\n([\s\S]*?)\n<\/untrusted-data>/.exec(prompt)?.[1];
  if (!block) return undefined;
  try {
    const parsed = Workload.safeParse(JSON.parse(block));
    return parsed.success ? parsed.data : undefined;
  } catch {
    return undefined;
  }
}

function waitingService(workload: Workload): string | undefined {
  return workload.cgroups.find(
    (c) => /^\/system\.slice\/.+\.service$/.test(c.path) && c.cpu_pressure >= 0.1 && c.cpu_share < 0.8,
  )?.path;
}

function goalOf(workload: Workload | undefined, service: string | undefined): Goal {
  if (service) return "latency";
  return workload?.processes.some((p) => /batch|job/.test(p.comm)) ? "makespan" : "throughput";
}

export interface ScriptedModel {
  port: number;
  /** Prompts answered so far. */
  calls: number;
  close(): Promise<void>;
}

export async function startScriptedModel(port = 0): Promise<ScriptedModel> {
  let calls = 0;
  const server = createServer((req, res) => {
    void respond(req, res).then((answered) => {
      if (answered) calls++;
    });
  });
  await new Promise<void>((resolve) => server.listen(port, "127.0.0.1", resolve));
  return {
    port: (server.address() as AddressInfo).port,
    get calls() {
      return calls;
    },
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

async function respond(req: IncomingMessage, res: ServerResponse): Promise<boolean> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  const parsed = req.url?.endsWith("/chat/completions")
    ? ChatRequest.safeParse(safeJson(Buffer.concat(chunks).toString("utf8")))
    : undefined;
  if (!parsed?.success) {
    res.writeHead(400, { "content-type": "application/json" });
    res.end(JSON.stringify({ error: { message: "expected POST /v1/chat/completions with messages" } }));
    return false;
  }
  const prompt = parsed.data.messages.at(-1)!.content;
  const content = answer(prompt);
  res.writeHead(200, { "content-type": "application/json" });
  res.end(
    JSON.stringify({
      choices: [{ message: { role: "assistant", content } }],
      usage: {
        prompt_tokens: Math.ceil(prompt.length / 4),
        completion_tokens: Math.ceil(content.length / 4),
      },
    }),
  );
  return true;
}

function safeJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

if (import.meta.main) {
  const model = await startScriptedModel(Number(process.argv[2] ?? 0));
  process.stdout.write(`scripted model on 127.0.0.1:${model.port}\n`);
  process.on("SIGTERM", () => void model.close().then(() => process.exit(0)));
}
