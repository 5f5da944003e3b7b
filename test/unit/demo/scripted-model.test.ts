import { afterEach, describe, expect, it } from "vitest";
import { GoalReply, goalPrompt, SynthesisReply, synthesisPrompt } from "../../../src/decide/prompts.ts";
import { type ScriptedModel, startScriptedModel } from "../../../src/demo/scripted-model.ts";
import { builtinCatalogue } from "../../../src/policies/catalogue.ts";
import { change, profile, serviceUnderHogs } from "../../helpers/decide-fixtures.ts";

// The day's stand-in for a paid model answers schedctl's real prompts over the OpenAI protocol,
// with replies that pass the same schemas a real model's must.

let model: ScriptedModel | undefined;
afterEach(async () => {
  await model?.close();
  model = undefined;
});

async function ask(prompt: string): Promise<string> {
  const response = await fetch(`http://127.0.0.1:${model!.port}/v1/chat/completions`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ model: "scripted-rules", messages: [{ role: "user", content: prompt }] }),
  });
  expect(response.status).toBe(200);
  const body = (await response.json()) as { choices: { message: { content: string } }[] };
  return body.choices[0]!.message.content;
}

describe("the scripted model of the day's LLM runs", () => {
  const catalogue = builtinCatalogue().map((p) => p.manifest);

  it("wants latency for a service waiting behind hogs, and picks the latency policy for it", async () => {
    model = await startScriptedModel();
    const phase = change(serviceUnderHogs(), 12);
    const goal = GoalReply.parse(JSON.parse(await ask(goalPrompt(phase))));
    expect(goal).toMatchObject({ optimise: "latency", protect_cgroup: "/system.slice/api.service" });
    const pick = SynthesisReply.parse(
      JSON.parse(await ask(synthesisPrompt(phase, { goal, catalogue, avoid: [], allowWrite: false }))),
    );
    expect(pick).toMatchObject({ action: "pick", policy: "latency", tunables: {} });
    expect(model.calls).toBe(2);
  });

  it("wants the makespan of many jobs, and picks batch-order for them", async () => {
    model = await startScriptedModel();
    const batch = change(
      profile("throughput", "sig-batch", {
        topCgroups: [{ path: "/batch.slice/jobs.service", cpuShare: 0.95, psiCpuSome: 0.9, tasks: 40 }],
        topProcesses: [{ pid: 7, comm: "batch-short", cpuShare: 0.05 }],
      }),
      9,
    );
    const goal = GoalReply.parse(JSON.parse(await ask(goalPrompt(batch))));
    expect(goal).toMatchObject({ optimise: "makespan", protect_cgroup: null });
    const pick = SynthesisReply.parse(
      JSON.parse(await ask(synthesisPrompt(batch, { goal, catalogue, avoid: [], allowWrite: false }))),
    );
    expect(pick).toMatchObject({ action: "pick", policy: "batch-order" });
  });

  it("refuses what is not a chat completion", async () => {
    model = await startScriptedModel();
    const response = await fetch(`http://127.0.0.1:${model.port}/v1/models`);
    expect(response.status).toBe(400);
    expect(model.calls).toBe(0);
  });
});
