import { createHash } from "node:crypto";
import type { PhaseChange } from "../observe/types.ts";
import type { Manifest, Tunables } from "../policies/types.ts";
import { policyKey } from "./candidates.ts";
import type { CallStage, ChatMessage, Llm } from "./llm/types.ts";
import {
  correctionPrompt,
  GoalReply,
  goalPrompt,
  parseReply,
  ReplyError,
  repairPrompt,
  SYSTEM_PROMPT,
  SynthesisReply,
  synthesisPrompt,
} from "./prompts.ts";
import type { CandidateVerifier, ChosenPolicy } from "./types.ts";

// One LLM consultation: goal inference, then policy synthesis. Nothing the model says is used
// before it meets its schema and names only things that exist (a repository policy, its declared
// tunables, cgroups that were observed); written code counts only once the verifier passes it,
// and its failure log goes back for a bounded number of repairs.

export interface ConsultRequest {
  change: PhaseChange;
  catalogue: readonly Manifest[];
  /** Policy keys that failed or were quarantined for this signature. */
  avoid: readonly string[];
  consultationId: number;
  /** Invalid replies (bad JSON, schema, unknown names) the model may correct, per stage. */
  maxCorrections: number;
  maxRepairRounds: number;
  /** Without a verifier the model may only pick a repository policy or the default. */
  verifier: CandidateVerifier | undefined;
  signal?: AbortSignal;
}

export type ConsultResult =
  | {
      kind: "decided";
      goal: GoalReply;
      policy: ChosenPolicy;
      cgroup?: string;
      rationale: string;
      confidence: number;
    }
  | { kind: "gave_up"; goal?: GoalReply; rationale: string };

export async function consult(llm: Llm, req: ConsultRequest): Promise<ConsultResult> {
  const observed = new Set(req.change.to.topCgroups.map((c) => c.path));
  const goal = await ask(llm, req, "goal", [{ role: "user", content: goalPrompt(req.change) }], (text) =>
    parseGoal(text, observed),
  );
  if (goal instanceof ReplyError) return { kind: "gave_up", rationale: `goal inference: ${goal.message}` };

  const messages: ChatMessage[] = [
    {
      role: "user",
      content: synthesisPrompt(req.change, {
        goal,
        catalogue: req.catalogue,
        avoid: req.avoid,
        allowWrite: req.verifier !== undefined,
      }),
    },
  ];
  let stage: CallStage = "synthesis";
  for (let repairs = 0; ; repairs++) {
    const reply = await ask(llm, req, stage, messages, (text) => checkSynthesis(text, req, observed));
    if (reply instanceof ReplyError)
      return { kind: "gave_up", goal, rationale: `policy synthesis: ${reply.message}` };
    const rationale = `llm (goal: ${goal.optimise}): ${reply.rationale}`;
    if (reply.action === "default") {
      return { kind: "decided", goal, policy: { kind: "default" }, rationale, confidence: reply.confidence };
    }
    if (reply.action === "pick") {
      const policy: ChosenPolicy = {
        kind: "policy",
        origin: reply.origin,
        name: reply.policy,
        tunables: reply.tunables,
      };
      const cgroup = firstCgroup(reply.tunables) ?? goal.protect_cgroup ?? undefined;
      return {
        kind: "decided",
        goal,
        policy,
        rationale,
        confidence: reply.confidence,
        ...(cgroup && { cgroup }),
      };
    }
    const verifier = req.verifier!;
    const report = await verifier.verify({ name: reply.name, source: reply.source }, req.signal);
    if (report.passed) {
      const policy: ChosenPolicy = {
        kind: "policy",
        origin: "generated",
        name: reply.name,
        tunables: {},
        source: reply.source,
        sourceHash: createHash("sha256").update(reply.source).digest("hex"),
      };
      const cgroup = goal.protect_cgroup ?? undefined;
      const repaired = repairs > 0 ? ` (passed verification after ${repairs} repair round(s))` : "";
      return {
        kind: "decided",
        goal,
        policy,
        rationale: `${rationale}${repaired}`,
        confidence: reply.confidence,
        ...(cgroup && { cgroup }),
      };
    }
    if (repairs >= req.maxRepairRounds) {
      return {
        kind: "gave_up",
        goal,
        rationale: `generated policy ${reply.name} still failed verification at ${report.stage} after ${repairs} repair round(s); nothing deployed`,
      };
    }
    messages.push(
      {
        role: "assistant",
        content: JSON.stringify({ action: "write", name: reply.name, source: reply.source }),
      },
      { role: "user", content: repairPrompt(report.stage, report.log) },
    );
    stage = "repair";
  }
}

/** Calls the model until `check` accepts its reply, feeding each rejection back, a bounded number of times. */
async function ask<T>(
  llm: Llm,
  req: ConsultRequest,
  stage: CallStage,
  messages: ChatMessage[],
  check: (text: string) => T,
): Promise<T | ReplyError> {
  let current: CallStage = stage;
  for (let corrections = 0; ; corrections++) {
    const reply = await llm.chat(
      { system: SYSTEM_PROMPT, messages },
      { stage: current, consultationId: req.consultationId },
      req.signal,
    );
    try {
      return check(reply.text);
    } catch (error) {
      if (!(error instanceof ReplyError)) throw error;
      if (corrections >= req.maxCorrections) return error;
      messages.push(
        { role: "assistant", content: reply.text },
        { role: "user", content: correctionPrompt(error.message) },
      );
      current = "correction";
    }
  }
}

function parseGoal(text: string, observed: ReadonlySet<string>): GoalReply {
  const goal = parseReply(text, GoalReply, "goal inference");
  if (goal.protect_cgroup !== null && !observed.has(goal.protect_cgroup)) {
    throw new ReplyError(`protect_cgroup ${JSON.stringify(goal.protect_cgroup)} is not an observed cgroup`);
  }
  return goal;
}

type CheckedSynthesis =
  | { action: "default"; rationale: string; confidence: number }
  | {
      action: "pick";
      origin: Manifest["origin"];
      policy: string;
      tunables: Tunables;
      rationale: string;
      confidence: number;
    }
  | { action: "write"; name: string; source: string; rationale: string; confidence: number };

function checkSynthesis(text: string, req: ConsultRequest, observed: ReadonlySet<string>): CheckedSynthesis {
  const reply = parseReply(text, SynthesisReply, "policy synthesis");
  if (reply.action === "default") return reply;
  if (reply.action === "write") {
    if (!req.verifier)
      throw new ReplyError("writing a new policy is not available here; pick a repository policy");
    if (req.catalogue.some((m) => m.name === reply.name)) {
      throw new ReplyError(`name ${reply.name} is taken by a repository policy; choose another`);
    }
    return reply;
  }
  const manifest = req.catalogue.find((m) => m.name === reply.policy);
  if (!manifest) {
    throw new ReplyError(
      `policy ${JSON.stringify(reply.policy)} is not in the repository (${req.catalogue.map((m) => m.name).join(", ")})`,
    );
  }
  const tunables = checkTunables(manifest, reply.tunables, observed);
  const key = policyKey({ kind: "policy", origin: manifest.origin, name: manifest.name, tunables });
  if (req.avoid.includes(key))
    throw new ReplyError(`${key} already failed on this phase; propose something else`);
  return { ...reply, origin: manifest.origin, tunables };
}

/** The model's tunables within the manifest's declared types and ranges, defaults for the rest. */
export function checkTunables(manifest: Manifest, given: Tunables, observed: ReadonlySet<string>): Tunables {
  const out: Tunables = {};
  for (const name of Object.keys(given)) {
    if (!(name in manifest.tunables))
      throw new ReplyError(`${manifest.name} has no tunable ${JSON.stringify(name)}`);
  }
  for (const [name, spec] of Object.entries(manifest.tunables)) {
    const value = given[name];
    const where = `${manifest.name}.${name}`;
    if (value === undefined) {
      out[name] = spec.default;
      continue;
    }
    if (spec.type === "int") {
      if (typeof value !== "number" || !Number.isInteger(value) || value < spec.min || value > spec.max) {
        throw new ReplyError(
          `${where} must be an integer in ${spec.min}..${spec.max}, got ${JSON.stringify(value)}`,
        );
      }
    } else if (spec.type === "bool") {
      if (typeof value !== "boolean") throw new ReplyError(`${where} must be true or false`);
    } else if (spec.type === "enum") {
      if (typeof value !== "string" || !spec.options.includes(value)) {
        throw new ReplyError(
          `${where} must be one of ${spec.options.join(", ")}, got ${JSON.stringify(value)}`,
        );
      }
    } else {
      if (!Array.isArray(value) || value.length > spec.maxItems) {
        throw new ReplyError(`${where} must be a list of at most ${spec.maxItems} cgroup paths`);
      }
      const unknown = value.filter((path) => !observed.has(path));
      if (unknown.length > 0)
        throw new ReplyError(`${where} names cgroups that were not observed: ${JSON.stringify(unknown)}`);
    }
    out[name] = value;
  }
  return out;
}

function firstCgroup(tunables: Tunables): string | undefined {
  for (const value of Object.values(tunables)) if (Array.isArray(value) && value[0]) return value[0];
  return undefined;
}
