import { appendFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { createHost } from "../../../src/host/host.ts";
import { KmsgReader, parseKmsgRecord } from "../../../src/kernel/kmsg.ts";
import { tempDir, writeTree } from "../../helpers/tmp.ts";

describe("parseKmsgRecord", () => {
  it("reads the kernel's reason for disabling a scheduler", () => {
    expect(
      parseKmsgRecord(
        '6,1402,20981234,-;sched_ext: BPF scheduler "schedctl_stall" disabled (runnable task stall)',
        5,
      ),
    ).toEqual({
      at: 5,
      kind: "disabled",
      ops: "schedctl_stall",
      reason: "runnable task stall",
      raw: 'sched_ext: BPF scheduler "schedctl_stall" disabled (runnable task stall)',
    });
  });

  it("reads enables, the watchdog's details and other sched_ext warnings; ignores the rest", () => {
    expect(parseKmsgRecord('6,1,2,-;sched_ext: BPF scheduler "schedctl_fifo" enabled', 0)).toMatchObject({
      kind: "enabled",
      ops: "schedctl_fifo",
    });
    expect(
      parseKmsgRecord("3,9,9,-;sched_ext: schedctl_stall: watchdog failed to check in for 3.004s", 0),
    ).toMatchObject({
      kind: "error",
      ops: "schedctl_stall",
      reason: "watchdog failed to check in for 3.004s",
    });
    expect(
      parseKmsgRecord("[   12.5] sched_ext: schedctl_x: kworker/0:1[42] failed to run for 34.968s", 0),
    ).toMatchObject({
      kind: "error",
      reason: "kworker/0:1[42] failed to run for 34.968s",
    });
    expect(parseKmsgRecord("4,3,3,-;sched_ext: timeout_ms below the rescue threshold", 0)).toMatchObject({
      kind: "warning",
      ops: undefined,
    });
    expect(parseKmsgRecord("6,4,4,-;EXT4-fs (vda): mounted", 0)).toBeUndefined();
  });
});

describe("KmsgReader", () => {
  it("reports only records logged after it was opened, each once", () => {
    const root = tempDir();
    writeTree(root, {
      "dev/kmsg": '6,1,1,-;sched_ext: BPF scheduler "old" disabled (unregistered from user space)\n',
    });
    const reader = new KmsgReader(createHost(root), () => 42);
    expect(reader.read()).toEqual([]);
    appendFileSync(
      join(root, "dev/kmsg"),
      '6,2,2,-;sched_ext: BPF scheduler "new" enabled\n SUBSYSTEM=x\n6,3,3,-;random driver noise\n6,4,4,-;sched_ext: BPF scheduler "new" disa',
    );
    expect(reader.read().map((e) => [e.kind, e.ops, e.at])).toEqual([["enabled", "new", 42]]);
    appendFileSync(join(root, "dev/kmsg"), "bled (unregistered from user space)\n");
    expect(reader.read().map((e) => e.reason)).toEqual(["unregistered from user space"]);
    expect(reader.read()).toEqual([]);
    reader.close();
  });
});
