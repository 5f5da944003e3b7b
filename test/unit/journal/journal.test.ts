import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { journalFields, MESSAGE_IDS } from "../../../src/journal/events.ts";
import { openJournal } from "../../../src/journal/journal.ts";
import { encodeNative } from "../../../src/journal/native.ts";
import { createMemoryLogger } from "../../../src/log/logger.ts";
import { bindDatagramSink } from "../../helpers/datagram.ts";
import { runProgram } from "../../helpers/run.ts";
import { tempDir, writeTree } from "../../helpers/tmp.ts";

/** journald's side of the native protocol: the fields of one datagram. */
function decodeNative(buffer: Buffer): Record<string, string> {
  const fields: Record<string, string> = {};
  let at = 0;
  while (at < buffer.length) {
    const newline = buffer.indexOf(0x0a, at);
    const equals = buffer.indexOf(0x3d, at);
    if (equals >= 0 && equals < newline) {
      fields[buffer.toString("utf8", at, equals)] = buffer.toString("utf8", equals + 1, newline);
      at = newline + 1;
    } else {
      const key = buffer.toString("utf8", at, newline);
      const length = Number(buffer.readBigUInt64LE(newline + 1));
      const start = newline + 9;
      fields[key] = buffer.toString("utf8", start, start + length);
      expect(buffer[start + length]).toBe(0x0a);
      at = start + length + 1;
    }
  }
  return fields;
}

describe("native protocol encoding", () => {
  it("writes plain values as KEY=value lines and multi-line values length-prefixed", () => {
    const buffer = encodeNative({
      MESSAGE: "one line",
      SCHEDCTL_LOG: "line 1\nline 2",
      PRIORITY: 6,
      SKIPPED: undefined,
    });
    expect(buffer.toString("latin1", 0, 26)).toBe("MESSAGE=one line\nSCHEDCTL_");
    expect(decodeNative(buffer)).toEqual({
      MESSAGE: "one line",
      SCHEDCTL_LOG: "line 1\nline 2",
      PRIORITY: "6",
    });
  });

  it("refuses a field name journald would reject", () => {
    expect(() => encodeNative({ "bad-key": "x" })).toThrow(/journal field name "bad-key"/);
    expect(() => encodeNative({ _PID: "1" })).toThrow(/_PID/);
  });
});

describe("the journal writer", () => {
  it("sends one structured record per event to journald's socket", async () => {
    const sink = bindDatagramSink(tempDir(), "journal-socket");
    const journal = openJournal({ socketPath: sink.path, logger: createMemoryLogger() });
    try {
      journal.record({
        type: "phase-change",
        phase: "throughput",
        fromPhase: "idle",
        signature: "thr-4c1a",
        drift: 9.52,
      });
      journal.record({
        type: "decision",
        policy: "batch",
        chooser: "planner",
        confidence: 0.8,
        rationale: "many runnable tasks, forks",
        signature: "thr-4c1a",
      });
      journal.record({
        type: "llm-consultation",
        provider: "openai",
        model: "gpt-x",
        signature: "thr-4c1a",
        tokensIn: 1200,
        tokensOut: 300,
        costUsd: 0.0042,
        outcome: "answered",
      });
      journal.record({
        type: "verification",
        policy: "gen_a",
        hash: "ab".repeat(32),
        passed: false,
        stage: "verifier",
        log: "R1 invalid mem access\nprocessed 12 insns",
      });
      journal.record({
        type: "deploy",
        policy: "batch",
        hash: "cd".repeat(32),
        state: "probation",
        signature: "thr-4c1a",
      });
      journal.record({ type: "rollback", policy: "batch", reason: "p99 wakeup latency 1.8x baseline" });
      const records = (await sink.waitFor(6)).map(decodeNative);

      expect(records.map((r) => r.MESSAGE_ID)).toEqual([
        MESSAGE_IDS["phase-change"],
        MESSAGE_IDS.decision,
        MESSAGE_IDS["llm-consultation"],
        MESSAGE_IDS.verification,
        MESSAGE_IDS.deploy,
        MESSAGE_IDS.rollback,
      ]);
      for (const r of records) expect(r.SYSLOG_IDENTIFIER).toBe("schedctld");
      expect(records[0]).toMatchObject({
        MESSAGE: "Workload phase changed from idle to throughput (signature thr-4c1a, drift 9.5)",
        PRIORITY: "6",
        SCHEDCTL_PHASE: "throughput",
        SCHEDCTL_FROM_PHASE: "idle",
        SCHEDCTL_SIGNATURE: "thr-4c1a",
        SCHEDCTL_DRIFT: "9.52",
      });
      expect(records[1]).toMatchObject({
        SCHEDCTL_POLICY: "batch",
        SCHEDCTL_CHOOSER: "planner",
        SCHEDCTL_CONFIDENCE: "0.8",
      });
      expect(records[2]).toMatchObject({ SCHEDCTL_LLM_OUTCOME: "answered", SCHEDCTL_TOKENS_IN: "1200" });
      expect(records[3]).toMatchObject({
        PRIORITY: "4",
        SCHEDCTL_VERDICT: "fail",
        SCHEDCTL_STAGE: "verifier",
        SCHEDCTL_LOG: "R1 invalid mem access\nprocessed 12 insns",
      });
      expect(records[4]).toMatchObject({
        PRIORITY: "5",
        SCHEDCTL_STATE: "probation",
        SCHEDCTL_HASH: "cd".repeat(32),
      });
      expect(records[5]).toMatchObject({
        PRIORITY: "4",
        MESSAGE: "Rolled back policy batch to the kernel default: p99 wakeup latency 1.8x baseline",
        SCHEDCTL_REASON: "p99 wakeup latency 1.8x baseline",
      });
      expect(records[5]).not.toHaveProperty("SCHEDCTL_TO_POLICY");
    } finally {
      journal.close();
      sink.close();
    }
  });

  it("writes the same fields to the logger where no journald listens", () => {
    const logger = createMemoryLogger();
    const journal = openJournal({ socketPath: join(tempDir(), "absent"), logger });
    journal.record({ type: "rollback", policy: "batch", to: "simple", reason: "kernel ejected it" });
    journal.record({ type: "deploy", policy: "simple", hash: "ef".repeat(32), state: "probation" });
    expect(logger.records).toEqual([
      {
        level: "warn",
        message: "Rolled back policy batch to simple: kernel ejected it",
        fields: expect.objectContaining({
          MESSAGE_ID: MESSAGE_IDS.rollback,
          SCHEDCTL_POLICY: "batch",
          SCHEDCTL_TO_POLICY: "simple",
          SCHEDCTL_REASON: "kernel ejected it",
        }),
      },
      {
        level: "info",
        message: "Deployed policy simple (probation)",
        fields: expect.objectContaining({ MESSAGE_ID: MESSAGE_IDS.deploy, SCHEDCTL_STATE: "probation" }),
      },
    ]);
  });
});

describe("the journal catalog", () => {
  const catalog = readFileSync(join(import.meta.dirname, "../../../etc/catalog/schedctl.catalog"), "utf8");

  it("has exactly one entry per MESSAGE_ID", () => {
    const ids = [...catalog.matchAll(/^-- ([0-9a-f]{32})$/gm)].map((m) => m[1]);
    expect(ids.sort()).toEqual(Object.values(MESSAGE_IDS).sort());
  });

  it("is accepted by journalctl", async () => {
    const root = tempDir();
    writeTree(root, { "usr/lib/systemd/catalog/schedctl.catalog": catalog });
    expect((await runProgram("journalctl", [`--root=${root}`, "--update-catalog"])).code).toBe(0);
    const { stdout } = await runProgram("journalctl", [`--root=${root}`, "--list-catalog"]);
    for (const id of Object.values(MESSAGE_IDS)) expect(stdout).toMatch(new RegExp(`^${id} schedctl: `, "m"));
  });
});

describe("hostile text in the journal", () => {
  it("keeps MESSAGE one line with visible escapes, and the exact value in its own field", () => {
    const reason = "cgroup /evil\n\x1b[2JFAKE: ok\u202e stalled";
    const fields = decodeNative(
      encodeNative(journalFields({ type: "rollback", policy: "fifo", reason, signature: "s" })),
    );
    expect(fields.MESSAGE).toBe(
      "Rolled back policy fifo to the kernel default: cgroup /evil\\x0a\\x1b[2JFAKE: ok\\u202e stalled",
    );
    expect(fields.SCHEDCTL_REASON).toBe(reason);
  });
});
