import { copyFileSync, mkdirSync } from "node:fs";
import { join } from "node:path";
import { beforeAll, expect, it } from "vitest";
import type { CompiledPolicy } from "../../src/policies/compile.ts";
import { compileBuiltins, fixturePolicy, sandboxCompiler } from "../helpers/policies.ts";
import { tempDir, writeTree } from "../helpers/tmp.ts";
import { consoleTail, describeVm, resultsOf, runInVm, type VmRun } from "../helpers/vm.ts";
import type { GuestPolicy } from "./guest/policies-guest.ts";

// One boot for every built-in policy and the broken fixtures: the real Kernel implementation
// (src/kernel/loader.ts) runs inside the guest against the sched_ext kernel.

const LOAD_SECONDS = 5;
const GUEST_DIR = "/opt/schedctl/test/vm/guest";

type PolicyResult = {
  name: string;
  verifyOk: boolean;
  verifyLog: string;
  attached?: { state: string; ops: string };
  attachError?: string;
  pinsWhileAttached?: number;
  samples?: string[];
  stressOk?: boolean;
  cyclictest?: string[];
  detached?: { state: string };
  detachError?: string;
  events?: { kind: string; ops?: string; reason: string }[];
  pinsAfter?: string[];
  after?: { state: string };
  pins?: string[];
};

describeVm("built-in policies on the sched_ext kernel", () => {
  let builtins: CompiledPolicy[];
  let plainCompiled: CompiledPolicy;
  let run: VmRun;
  let byName: Map<string, PolicyResult>;

  beforeAll(async () => {
    const compiler = await sandboxCompiler();
    builtins = await compileBuiltins(compiler);
    const stall = await compiler.compile(fixturePolicy("stall.bpf.c"));
    const nullDeref = await compiler.compile(fixturePolicy("null-deref.bpf.c"));
    const plain = await compiler.compile(fixturePolicy("plain-libbpf.bpf.c"));
    plainCompiled = plain;
    const work = tempDir();
    const items: GuestPolicy[] = [
      ...[...builtins, plain].map((b) => ({ name: b.ref.name, expect: "run" as const, b })),
      { name: "null-deref", expect: "reject" as const, b: nullDeref },
      { name: "stall", expect: "stall" as const, b: stall },
    ].map(({ name, expect, b }) => ({
      name,
      expect,
      hash: b.ref.hash,
      opsName: b.opsName,
      objectPath: `/policies/${b.ref.hash}.bpf.o`,
    }));
    writeTree(work, { "items.json": JSON.stringify({ seconds: LOAD_SECONDS, items }) });
    mkdirSync(join(work, "policies"));
    for (const b of [...builtins, plain, stall, nullDeref])
      copyFileSync(b.objectPath, join(work, "policies", `${b.ref.hash}.bpf.o`));
    run = await runInVm({
      timeoutMs: 420_000,
      files: [
        { guestPath: "/policies", hostPath: join(work, "policies") },
        { guestPath: "/schedctl/items.json", hostPath: join(work, "items.json") },
        {
          guestPath: `${GUEST_DIR}/policies-guest.ts`,
          hostPath: join(import.meta.dirname, "guest", "policies-guest.ts"),
        },
      ],
      script: `node ${GUEST_DIR}/policies-guest.ts /schedctl/items.json`,
    });
    byName = new Map(resultsOf<PolicyResult & { load: string }>(run, "policy").map((r) => [r.name, r]));
  }, 600_000);

  it("runs the guest to the end", () => {
    expect(run.crashed, consoleTail(run)).toBe(false);
    expect(run.exitCode, consoleTail(run)).toBe(0);
  });

  it("verifies, attaches, runs under load without ejection and detaches every built-in policy, and one in the plain libbpf style", () => {
    expect([...builtins.map((b) => b.ref.name), "plain-libbpf"]).toEqual(
      [...byName.keys()].filter((n) => n !== "stall" && n !== "null-deref"),
    );
    for (const b of [...builtins, plainCompiled]) {
      const r = byName.get(b.ref.name)!;
      const label = `${b.ref.name}: ${JSON.stringify(r).slice(0, 2500)}`;
      expect(r.verifyOk, label).toBe(true);
      expect(r.attached, label).toMatchObject({ state: "enabled", ops: b.opsName });
      expect(r.pinsWhileAttached, label).toBe(1);
      expect(r.samples!.length, label).toBeGreaterThanOrEqual(LOAD_SECONDS * 2 - 2);
      expect(new Set(r.samples), label).toEqual(new Set([`enabled:${b.opsName}`]));
      expect(r.stressOk, label).toBe(true);
      expect(r.cyclictest!.join("\n"), label).toMatch(/T: 1 .*Max:\s+\d+/);
      expect(
        r.events!.filter((e) => e.kind === "disabled").map((e) => e.reason),
        label,
      ).toEqual(["unregistered from user space"]);
      expect(r.detached, label).toMatchObject({ state: "disabled" });
      expect(r.pinsAfter, label).toEqual([]);
    }
  });

  it("reports the watchdog's ejection of a stalling policy with the kernel's reason", () => {
    const r = byName.get("stall")!;
    const label = JSON.stringify(r).slice(0, 2500);
    expect(r.verifyOk, label).toBe(true);
    expect(r.samples, label).toEqual(["disabled:"]);
    // the stall starves the loader too: the attach only returns after the ejection, with the reason
    expect(r.attachError, label).toMatch(/cannot attach schedctl_stall: .*\(kernel: runnable task stall/);
    const disabled = r.events!.find((e) => e.kind === "disabled" && e.ops === "schedctl_stall");
    expect(disabled?.reason, label).toBe("runnable task stall");
    expect(r.pinsAfter, label).toEqual([]);
  });

  it("refuses a policy the verifier rejects, with the verifier's words, and attaches nothing", () => {
    const r = byName.get("null-deref")!;
    const label = JSON.stringify(r).slice(0, 2500);
    expect(r.verifyOk, label).toBe(false);
    expect(r.verifyLog, label).toMatch(/invalid mem access 'map_value_or_null'|nullable map value/);
    expect(r.attachError, label).toMatch(
      /cannot attach schedctl_nullderef: bpftool struct_ops register failed/,
    );
    expect(r.attachError, label).toMatch(/map_value_or_null|nullable map value/);
    expect(r.after, label).toMatchObject({ state: "disabled" });
    expect(r.pins, label).toEqual([]);
  });
});
