import { describe, expect, it } from "vitest";
import { humanLine } from "../../../src/log/human.ts";
import { logFormatFor } from "../../../src/log/logger.ts";

const at = "2026-12-07T13:19:08.899Z";
const local = new Date(at).toTimeString().slice(0, 8);

describe("humanLine", () => {
  it("prints time, level, message and the fields that matter first", () => {
    const line = humanLine(
      JSON.stringify({
        level: 40,
        time: at,
        svc: "schedctld",
        reason: "no psi",
        signal: "psi",
        features: { a: 1 },
        msg: "lacking psi",
      }),
      false,
    );
    expect(line).toBe(`${local} WARN  lacking psi reason="no psi" signal=psi`);
  });

  it("keeps host text from driving the terminal and cuts long values", () => {
    const line = humanLine(
      JSON.stringify({
        level: 30,
        time: at,
        unit: "evil\x1b]0;owned\x07.service",
        long: "x".repeat(200),
        msg: "seen \x1b[2J",
      }),
      false,
    );
    expect([...line].every((c) => c.charCodeAt(0) >= 0x20)).toBe(true);
    expect(line).toContain("seen \\x1b[2J");
    expect(line).toContain("unit=evil\\x1b]0;owned\\x07.service");
    expect(line).toMatch(/ long="x{40,}…\(\+\d+ chars, #[0-9a-f]{8}\)"/);
    expect(line.length).toBeLessThan(200);
  });

  it("colours warnings and errors only when asked, and passes a non-record line through cleaned", () => {
    expect(humanLine(JSON.stringify({ level: 50, time: at, msg: "bad" }), true)).toBe(
      `${local} \x1b[31mERROR\x1b[0m bad`,
    );
    expect(humanLine("not json \x07", false)).toBe("not json \\x07");
  });

  it("leaves journald's UPPER_CASE fields to the journal", () => {
    const line = humanLine(
      JSON.stringify({ level: 30, time: at, MESSAGE_ID: "5b7a", SCHEDCTL_PHASE: "build", msg: "phase" }),
      false,
    );
    expect(line).toBe(`${local} INFO  phase`);
  });

  it("chooses human lines on a terminal, JSON elsewhere, the environment first", () => {
    expect(logFormatFor({ isTTY: true }, {})).toBe("human");
    expect(logFormatFor({ isTTY: false }, {})).toBe("json");
    expect(logFormatFor({ isTTY: true }, { SCHEDCTL_LOG_FORMAT: "json" })).toBe("json");
  });
});
