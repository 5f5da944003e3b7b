import { type ChildProcess, spawn } from "node:child_process";
import { existsSync, readFileSync, rmdirSync, rmSync } from "node:fs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { MESSAGE_IDS } from "../../../src/journal/events.ts";
import { openJournal } from "../../../src/journal/journal.ts";
import { createMemoryLogger } from "../../../src/log/logger.ts";
import { runProgram } from "../../helpers/run.ts";
import { until } from "../../helpers/until.ts";

// The records read back by `journalctl -o json` from a real systemd-journald: a private
// journal namespace (systemd-journald NAMESPACE binds /run/systemd/journal.NAMESPACE/socket), so
// the host's own journal is not touched. Needs root and systemd's journald binary.

const JOURNALD = "/lib/systemd/systemd-journald";
const NAMESPACE = `schedctltest${process.pid}`;
const SOCKET = `/run/systemd/journal.${NAMESPACE}/socket`;
const runnable = process.getuid?.() === 0 && existsSync(JOURNALD) && existsSync("/etc/machine-id");

let journald: ChildProcess | undefined;
let journalDirExisted = false;

describe.runIf(runnable)("records in a real journald", () => {
  beforeAll(async () => {
    journalDirExisted = existsSync("/var/log/journal");
    journald = spawn(JOURNALD, [NAMESPACE], { stdio: "ignore" });
    await until("journald's socket", async () => (existsSync(SOCKET) ? true : undefined));
  });

  afterAll(async () => {
    if (journald && journald.exitCode === null) {
      const exited = new Promise((resolve) => journald!.once("exit", resolve));
      journald.kill("SIGTERM");
      await exited;
    }
    const machineId = readFileSync("/etc/machine-id", "utf8").trim();
    rmSync(`/var/log/journal/${machineId}.${NAMESPACE}`, { recursive: true, force: true });
    rmSync(`/run/log/journal/${machineId}.${NAMESPACE}`, { recursive: true, force: true });
    rmSync(`/run/systemd/journal.${NAMESPACE}`, { recursive: true, force: true });
    // journald made /var/log/journal for us: take it away again unless someone else uses it now.
    if (!journalDirExisted) {
      try {
        rmdirSync("/var/log/journal");
      } catch {
        // not empty (another journal lives there now) or already gone
      }
    }
  });

  it("shows every field with journalctl -o json, found by MESSAGE_ID", async () => {
    const journal = openJournal({ socketPath: SOCKET, logger: createMemoryLogger() });
    journal.record({
      type: "deploy",
      policy: "latency",
      hash: "cd".repeat(32),
      state: "probation",
      signature: "lat-9e2",
    });
    journal.record({
      type: "verification",
      policy: "gen_a",
      hash: "ab".repeat(32),
      passed: false,
      stage: "verifier",
      log: "R1 invalid mem access 'scalar'\nprocessed 12 insns",
    });
    journal.close();
    const read = (id: string) => async () => {
      const { stdout } = await runProgram("journalctl", [
        `--namespace=${NAMESPACE}`,
        "-o",
        "json",
        `MESSAGE_ID=${id}`,
      ]);
      const line = stdout.trim().split("\n").filter(Boolean)[0];
      return line ? JSON.parse(line) : undefined;
    };
    const deploy = await until("the deploy record", read(MESSAGE_IDS.deploy));
    expect(deploy).toMatchObject({
      MESSAGE: "Deployed policy latency (probation)",
      PRIORITY: "5",
      SYSLOG_IDENTIFIER: "schedctld",
      SCHEDCTL_EVENT: "deploy",
      SCHEDCTL_POLICY: "latency",
      SCHEDCTL_HASH: "cd".repeat(32),
      SCHEDCTL_STATE: "probation",
      SCHEDCTL_SIGNATURE: "lat-9e2",
      _TRANSPORT: "journal",
      _PID: String(process.pid),
    });
    const verification = await until("the verification record", read(MESSAGE_IDS.verification));
    expect(verification).toMatchObject({
      PRIORITY: "4",
      SCHEDCTL_VERDICT: "fail",
      SCHEDCTL_STAGE: "verifier",
      SCHEDCTL_LOG: "R1 invalid mem access 'scalar'\nprocessed 12 insns",
    });
  });
});
