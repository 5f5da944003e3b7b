import { describe, expect, it } from "vitest";
import { createHost } from "../../../src/host/host.ts";
import { readSchedExtStatus } from "../../../src/kernel/sysfs.ts";
import { tempDir, writeTree } from "../../helpers/tmp.ts";

describe("readSchedExtStatus", () => {
  it("reports a kernel without sched_ext as unsupported", () => {
    expect(readSchedExtStatus(createHost(tempDir()))).toEqual({
      supported: false,
      state: "unsupported",
      ops: undefined,
      enableSeq: 0,
    });
  });

  it("reads state, ops name and enable_seq of an enabled scheduler", () => {
    const root = tempDir();
    writeTree(root, {
      "sys/kernel/sched_ext/state": "enabled\n",
      "sys/kernel/sched_ext/root/ops": "schedctl_latency\n",
      "sys/kernel/sched_ext/enable_seq": "7\n",
    });
    expect(readSchedExtStatus(createHost(root))).toEqual({
      supported: true,
      state: "enabled",
      ops: "schedctl_latency",
      enableSeq: 7,
    });
  });

  it("ignores a stale ops file once disabled, and refuses an unknown state", () => {
    const root = tempDir();
    writeTree(root, {
      "sys/kernel/sched_ext/state": "disabled\n",
      "sys/kernel/sched_ext/root/ops": "old\n",
      "sys/kernel/sched_ext/enable_seq": "3\n",
    });
    expect(readSchedExtStatus(createHost(root))).toMatchObject({
      state: "disabled",
      ops: undefined,
      enableSeq: 3,
    });
    writeTree(root, { "sys/kernel/sched_ext/state": "confused\n" });
    expect(() => readSchedExtStatus(createHost(root))).toThrow('unexpected state "confused"');
  });
});
