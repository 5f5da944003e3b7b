import { describe, expect, it } from "vitest";
import { checkStatic } from "../../src/verify/static.ts";
import { tempDir } from "../helpers/tmp.ts";
import { buildFixture, type FixtureParts, fixtureSource, refFor } from "../unit/verify/fixtures.ts";

// The static stage against objects built by the real clang and read by the real bpftool.

async function check(parts: FixtureParts, extraSource = "") {
  const dir = tempDir();
  const built = await buildFixture(
    dir,
    refFor("fx", JSON.stringify(parts)),
    fixtureSource(parts) + extraSource,
  );
  return checkStatic(built, { maxTimeoutMs: 10_000 });
}

describe("static verifier stage (clang + bpftool)", () => {
  it("passes a well-formed scheduler and reports its ops name", async () => {
    const result = await check({});
    expect(result).toEqual({ ok: true, opsName: "schedctl_fx", log: expect.stringContaining("passed") });
  });

  it("refuses source that does not compile, with the compiler's message", async () => {
    const result = await check({ enqueueBody: "this is not C;" });
    expect(result.ok).toBe(false);
    expect(result.log).toMatch(/does not compile:[\s\S]*error:/);
  });

  it.each([
    [{ licence: "Proprietary" }, /licence "Proprietary" is not GPL-compatible/],
    [{ opsName: "sneaky" }, /ops name "sneaky" must start with "schedctl_"/],
    [
      { timeoutMs: 0 },
      /\.timeout_ms is not set .*: add \.timeout_ms = 5000 \(at most 10000\) to the ops table/,
    ],
    [{ timeoutMs: 20_000 }, /\.timeout_ms = 20000 exceeds the maximum 10000/],
    [{ section: ".struct_ops" }, /must be in SEC\("\.struct_ops\.link"\)/],
  ])("refuses %o", async (parts, message) => {
    const result = await check(parts);
    expect(result.ok).toBe(false);
    expect(result.log).toMatch(message);
  });

  it("finds a forbidden helper in the object even when the source hides it behind a cast", async () => {
    const result = await check({
      enqueueBody: "((long (*)(void *, const void *, u32))(0x20 + 4))((void *)0, (void *)0, 0);",
    });
    expect(result.ok).toBe(false);
    expect(result.log).toMatch(/calls BPF helper #36, which is not allow-listed/);
  });

  it("refuses a kfunc outside the allow-list", async () => {
    const result = await check({
      extra: "extern int bpf_send_signal_task(struct task_struct *t, int sig, int type, u64 value) __ksym;",
      enqueueBody: "bpf_send_signal_task((void *)ctx[0], 9, 0, 0);",
    });
    expect(result.ok).toBe(false);
    expect(result.log).toMatch(/references kfunc bpf_send_signal_task, which is not allow-listed/);
  });

  it("refuses a second struct_ops map and a non-struct_ops program", async () => {
    const result = await check(
      {},
      `SEC("tp/sched/sched_switch") int spy(void *ctx) { return 0; }
SEC(".struct_ops.link") struct sched_ext_ops fx_two = { .timeout_ms = 1000, .name = "schedctl_two" };`,
    );
    expect(result.ok).toBe(false);
    expect(result.log).toMatch(/program section "tp\/sched\/sched_switch" is not a struct_ops program/);
    expect(result.log).toMatch(/exactly one struct_ops map, found 2/);
  });
});
