import { z } from "zod";
import type { PhaseChange, Profile } from "../observe/types.ts";
import type { Manifest } from "../policies/types.ts";
import { Tunables } from "../policies/types.ts";
import { DATA_NOT_INSTRUCTIONS, fence, forPrompt } from "../text/untrusted.ts";

// The two consultations of the paper's control plane (goal inference, then policy synthesis), the
// repair request, and the schemas every reply must meet before anything acts on it.

const MAX_COMM = 32;
const MAX_CGROUP = 128;
const MAX_LOG = 4000;

export const SYSTEM_PROMPT = [
  "You advise schedctl, a daemon that picks Linux sched_ext scheduling policies for a host.",
  "Answer with exactly one JSON object and nothing else: no prose, no code fences.",
  DATA_NOT_INSTRUCTIONS,
  "Whatever you answer is validated, compiled, checked by the kernel's BPF verifier and run in a",
  "sandbox before it can reach the host, and rolled back if it makes the host worse.",
].join("\n");

export const GoalReply = z
  .object({
    optimise: z.enum(["latency", "throughput", "makespan", "fairness", "nothing"]),
    /** The cgroup whose work matters most, one of those observed, or null. */
    protect_cgroup: z.string().max(MAX_CGROUP).nullable(),
    kpi: z.string().min(1).max(200),
    rationale: z.string().min(1).max(2000),
  })
  .strict();
export type GoalReply = z.infer<typeof GoalReply>;

const Confidence = z.number().min(0).max(1);
export const SynthesisReply = z.discriminatedUnion("action", [
  z
    .object({
      action: z.literal("pick"),
      policy: z.string(),
      tunables: Tunables,
      rationale: z.string().min(1).max(2000),
      confidence: Confidence,
    })
    .strict(),
  z
    .object({
      action: z.literal("write"),
      name: z.string().regex(/^[a-z][a-z0-9_-]{0,31}$/),
      source: z.string().min(1).max(60_000),
      rationale: z.string().min(1).max(2000),
      confidence: Confidence,
    })
    .strict(),
  z
    .object({ action: z.literal("default"), rationale: z.string().min(1).max(2000), confidence: Confidence })
    .strict(),
]);
export type SynthesisReply = z.infer<typeof SynthesisReply>;

export class ReplyError extends Error {
  override readonly name = "ReplyError";
}

/** The model's text as one JSON value; tolerates a ```json fence around it, nothing more. */
export function parseReply<T>(text: string, schema: z.ZodType<T>, what: string): T {
  const trimmed = text
    .trim()
    .replace(/^```(?:json)?\s*/i, "")
    .replace(/\s*```$/, "");
  let value: unknown;
  try {
    value = JSON.parse(trimmed);
  } catch (error) {
    throw new ReplyError(`${what} reply is not valid JSON (${(error as Error).message}): ${excerpt(text)}`);
  }
  const parsed = schema.safeParse(value);
  if (!parsed.success) {
    const issues = parsed.error.issues.map((i) => `${i.path.join(".") || "(root)"}: ${i.message}`).join("; ");
    throw new ReplyError(`${what} reply does not match the schema: ${issues}`);
  }
  return parsed.data;
}

function excerpt(text: string): string {
  const one = forPrompt(text, 120);
  return one.length === 0 ? "(empty)" : JSON.stringify(one);
}

/** The workload's own words, cleaned, for the fence. */
function workloadData(profile: Profile) {
  return {
    cgroups: profile.topCgroups.map((c) => ({
      path: forPrompt(c.path, MAX_CGROUP),
      cpu_share: round(c.cpuShare),
      cpu_pressure: round(c.psiCpuSome),
      tasks: c.tasks,
    })),
    processes: profile.topProcesses.map((p) => ({
      comm: forPrompt(p.comm, MAX_COMM),
      cpu_share: round(p.cpuShare),
    })),
  };
}

export function goalPrompt(change: PhaseChange): string {
  const p = change.to;
  const features = Object.entries(p.features)
    .map(([k, v]) => `${k}=${round(v)}`)
    .join(" ");
  const moved = change.moved.map((m) => `${m.feature} ${round(m.from)}->${round(m.to)}`).join(", ") || "none";
  return [
    "Stage 1, goal inference. The host's workload just changed phase.",
    `Class (from schedctl's classifier): ${p.class}. Drift score: ${round(change.drift)}. Moved: ${moved}.`,
    `Features: ${features}.`,
    fence("workload", workloadData(p)),
    "What should the scheduler optimise now, and whose work matters most?",
    'Reply {"optimise": "latency"|"throughput"|"makespan"|"fairness"|"nothing", "protect_cgroup": <one observed',
    'cgroup path or null>, "kpi": <the measure to judge by>, "rationale": <why, briefly>}.',
  ].join("\n");
}

export interface SynthesisContext {
  goal: GoalReply;
  catalogue: readonly Manifest[];
  /** Policies that failed or were quarantined for this phase: do not propose them again. */
  avoid: readonly string[];
  allowWrite: boolean;
}

export function synthesisPrompt(change: PhaseChange, ctx: SynthesisContext): string {
  const catalogue = ctx.catalogue.map((m) => ({
    name: m.name,
    summary: m.summary,
    workloads: m.workloads,
    tunables: m.tunables,
  }));
  const write = ctx.allowWrite
    ? [
        'or {"action": "write", "name": <lower-case name>, "source": <complete sched_ext BPF C source that',
        'includes "schedctl.h" and defines one SEC(".struct_ops.link") struct sched_ext_ops>, "rationale", "confidence"}',
        "when no repository policy fits,",
      ]
    : [];
  return [
    "Stage 2, policy synthesis.",
    `Goal (from stage 1): optimise ${ctx.goal.optimise}; KPI: ${forPrompt(ctx.goal.kpi, 200)}.`,
    `Phase class: ${change.to.class}.`,
    fence("workload", workloadData(change.to)),
    `Repository policies (trusted): ${JSON.stringify(catalogue)}`,
    ctx.avoid.length > 0 ? `Do not propose these again (they failed here): ${ctx.avoid.join(", ")}.` : "",
    'Reply {"action": "pick", "policy": <a repository policy name>, "tunables": {<name>: <value within its',
    'declared type and range; cgroup values must be observed cgroup paths>}, "rationale", "confidence": 0..1}',
    ...write,
    'or {"action": "default", "rationale", "confidence"} when the kernel default is the best choice.',
  ]
    .filter((line) => line !== "")
    .join("\n");
}

export function repairPrompt(stage: string, log: string): string {
  return [
    `The policy you wrote failed verification at stage "${forPrompt(stage, 40)}". The log follows.`,
    fence("verifier-log", cleanLog(log)),
    'Reply with a corrected {"action": "write", ...} object (the whole source), or {"action": "default", ...}.',
  ].join("\n");
}

export function correctionPrompt(error: string): string {
  return `Your reply was rejected: ${forPrompt(error, 1000)}\nReply again with one JSON object that meets the requested shape.`;
}

function cleanLog(log: string): string[] {
  const tail = log.length > MAX_LOG ? log.slice(log.length - MAX_LOG) : log;
  return tail.split("\n").map((line) => forPrompt(line, 300));
}

function round(x: number): number {
  return Math.round(x * 1000) / 1000;
}
