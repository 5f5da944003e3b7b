import { describe, expect, it } from "vitest";
import { GoalReply, parseReply, ReplyError, SynthesisReply } from "../../../src/decide/prompts.ts";

describe("reply parsing", () => {
  it("accepts one JSON object, also inside a ```json fence", () => {
    const goal = { optimise: "latency", protect_cgroup: null, kpi: "p99", rationale: "service" };
    expect(parseReply(JSON.stringify(goal), GoalReply, "goal")).toEqual(goal);
    expect(parseReply(`\`\`\`json\n${JSON.stringify(goal)}\n\`\`\``, GoalReply, "goal")).toEqual(goal);
  });

  it("names what is wrong with malformed JSON and with schema violations", () => {
    expect(() => parseReply("{ not json", GoalReply, "goal inference")).toThrow(ReplyError);
    expect(() => parseReply("{ not json", GoalReply, "goal inference")).toThrow(
      /goal inference reply is not valid JSON/,
    );
    expect(() =>
      parseReply(
        '{"action":"pick","policy":"fifo","tunables":{},"rationale":"r","confidence":3}',
        SynthesisReply,
        "s",
      ),
    ).toThrow(/confidence: .*(<=1|too big)/i);
    expect(() => parseReply('{"action":"reboot"}', SynthesisReply, "s")).toThrow(/action/);
  });
});
