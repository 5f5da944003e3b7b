import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, expect, it } from "vitest";
import { defaultConfig } from "../../src/config/schema.ts";
import { defaultThresholds } from "../../src/daemon/wiring.ts";
import type { Placed } from "../../src/deploy/types.ts";
import { systemClock } from "../../src/host/clock.ts";
import { createMemoryLogger } from "../../src/log/logger.ts";
import { builtinCatalogue, builtinPolicy } from "../../src/policies/catalogue.ts";
import { PolicyCompiler } from "../../src/policies/compile.ts";
import { defaultCacheDir, ensureSandboxKernel } from "../../src/sandbox/kernel-image.ts";
import type { Sandbox } from "../../src/sandbox/types.ts";
import { openDb } from "../../src/store/db.ts";
import { SqliteVerdictStore, VERDICT_MIGRATIONS } from "../../src/store/verdicts.ts";
import { requestFor } from "../../src/verify/build.ts";
import { Verifier } from "../../src/verify/verifier.ts";
import { fixturePolicy, GUEST_ROOT_CGROUP_ID } from "../helpers/policies.ts";
import { consoleTail, describeVm, runInVm, vmSandbox } from "../helpers/vm.ts";
import { guestRun, scenarioResults } from "./guest/harness.ts";
import {
  misnamedPolicy,
  partialStarvePolicy,
  slowWakePolicy,
  stallingPolicy,
  uncompilablePolicy,
  unverifiablePolicy,
} from "./guest/policies.ts";

// The Execution Verifier end to end: real clang and bpftool for the static stage, the sched_ext
// kernel's verifier and a loaded sandbox run in one VM boot for the rest.

const work = mkdtempSync(join(tmpdir(), "schedctl-verify-vm-"));
afterAll(() => rmSync(work, { recursive: true, force: true }));

// Thresholds as the configuration's defaults set them.
const thresholds = defaultThresholds(defaultConfig());

describeVm("the Execution Verifier", () => {
  it("stops each bad candidate at its stage with the log, passes a good one, never recomputes a verdict, and deploy refuses every failed one", async () => {
    const kernel = await ensureSandboxKernel({ cacheDir: defaultCacheDir() });
    const compiler = new PolicyCompiler({
      cacheDir: work,
      vmlinuxH: kernel.vmlinuxH,
      resolveCgroupId: () => GUEST_ROOT_CGROUP_ID,
    });
    const db = openDb(join(work, "state.db"), VERDICT_MIGRATIONS);
    const store = new SqliteVerdictStore(db);
    let boots = 0;
    const sandbox: Sandbox = {
      run: (options) => {
        boots++;
        return vmSandbox().run(options);
      },
    };
    const verifier = new Verifier({
      verdicts: store,
      hostKernel: undefined,
      sandbox,
      clock: systemClock,
      logger: createMemoryLogger(),
      options: { maxTimeoutMs: 10_000, sandboxSeconds: 5, againstDefault: thresholds },
    });
    const policies = [
      builtinPolicy("fifo"),
      uncompilablePolicy(),
      misnamedPolicy(),
      unverifiablePolicy(),
      stallingPolicy(0),
      partialStarvePolicy(),
      slowWakePolicy(),
      // A global FIFO: what it is for is throughput.
      fixturePolicy("plain-libbpf.bpf.c", ["throughput"]),
      ...builtinCatalogue().filter((p) => p.manifest.name !== "fifo"),
    ];
    const requests = policies.map((p) =>
      requestFor(compiler, p, p.manifest.name === "cgroup-boost" ? { cgroups: ["/"] } : {}),
    );
    const verdicts = await verifier.verify(requests);
    const [fifo, broken, misnamed, unverifiable, stalling, park, slowWake, plain, ...builtins] = verdicts;
    const table = verdicts
      .filter((v) => v.stage === "dynamic")
      .map(
        (v) =>
          `${v.policy.name}: ${v.passed ? `pass for ${v.admits?.join(",")}` : "FAIL"} ${JSON.stringify(v.againstDefault)}`,
      );
    console.log(`against the default (same boot):\n${table.join("\n")}`);

    expect(boots, "kernel and dynamic stages share one boot").toBe(1);
    expect(broken).toMatchObject({
      stage: "static",
      passed: false,
      log: expect.stringMatching(/does not compile[\s\S]*error:/),
    });
    expect(misnamed).toMatchObject({
      stage: "static",
      passed: false,
      log: expect.stringMatching(/ops name "stall"/),
    });
    expect(unverifiable).toMatchObject({ stage: "kernel", passed: false });
    expect(unverifiable!.log).toMatch(/kernel verifier refused it[\s\S]*(invalid mem access|NULL)/);
    expect(stalling).toMatchObject({ stage: "dynamic", passed: false });
    expect(stalling!.log).toMatch(/ejected/);
    expect(stalling!.figures?.ejectReason).toMatch(/stall/);

    expect(fifo, fifo!.log).toMatchObject({ stage: "dynamic", passed: true, opsName: "schedctl_fifo" });
    const figures = fifo!.figures!;
    expect(figures.stillEnabled).toBe(true);
    expect(figures.workers).toBe(5);
    expect(figures.minProgress).toBeGreaterThan(0);
    expect(figures.opsPerSec).toBeGreaterThan(0);
    expect(figures.requestsPerSec).toBeGreaterThan(0);
    expect(figures.latencyP99Us).toBeGreaterThanOrEqual(figures.latencyP50Us);
    expect(figures.cyclictestP99Us).toBeGreaterThanOrEqual(figures.cyclictestP50Us);
    expect(fifo!.baseline).toMatchObject({ workers: 5, stillEnabled: false });
    expect(fifo!.againstDefault!.minShareRatio).toBeGreaterThanOrEqual(thresholds.minWorkerShare);

    // Valid policies worse than the default fail with the figures of both runs.
    expect(park, park!.log).toMatchObject({ stage: "dynamic", passed: false });
    expect(park!.log).toMatch(
      /refused for every workload it claims: not for mixed phases: a CPU-bound worker got 0\.\d+ of its share of the work under the default/,
    );
    expect(park!.againstDefault!.minShareRatio).toBeLessThan(thresholds.minWorkerShare);
    expect(park!.log).toMatch(/kernel default, same boot: /);
    expect(slowWake, slowWake!.log).toMatchObject({ stage: "dynamic", passed: false });
    expect(slowWake!.log).toMatch(
      /refused for every workload it claims: not for mixed phases: p99 wake-up latency .* the default's/,
    );
    expect(slowWake!.againstDefault!.minShareRatio).toBeGreaterThanOrEqual(thresholds.minWorkerShare);
    // The plain libbpf style passes, and so do the built-ins, each for the claims its figures bear
    // out, but one (measured 12-07, kernel 7.3.4, multi-threaded TCG): cgroup-boost with every
    // task boosted is one FIFO, refused for the latency and mixed claims it makes. Its verdict is
    // reached with the figures; it is for the policy's own work to fix (the sandbox has no
    // service cgroup of its own to boost). batch-order, ejected here before its queue key counted
    // from enqueue, now passes for throughput.
    const notHoldingUp = ["cgroup-boost"];
    for (const v of builtins.filter((v) => notHoldingUp.includes(v!.policy.name)))
      expect(v, v!.log).toMatchObject({ stage: "dynamic", againstDefault: expect.any(Object) });
    for (const v of [plain, ...builtins.filter((v) => !notHoldingUp.includes(v!.policy.name))]) {
      expect(v, v!.log).toMatchObject({ stage: "dynamic", passed: true });
      expect(v!.admits!.length, v!.log).toBeGreaterThan(0);
    }
    expect(plain!.admits).toEqual(["throughput"]);
    expect(fifo!.timings).toMatchObject({ compileMs: expect.any(Number), sandboxMs: expect.any(Number) });

    const again = await verifier.verify(requests);
    expect(boots, "cached verdicts are never recomputed").toBe(1);
    expect(again).toEqual(verdicts);

    // Deploy's side: none of the refused candidates (nor one never verified) reaches the kernel.
    const objects: Record<string, Placed> = {};
    for (const policy of [misnamedPolicy(), unverifiablePolicy(), stallingPolicy(0)]) {
      const built = await compiler.compile(policy);
      objects[policy.manifest.name] = placed(built.ref, `/deploy/${built.ref.hash}.bpf.o`, built.opsName);
    }
    const neverVerified = await compiler.compile(builtinPolicy("fifo"), { slice_us: 3000 });
    objects["never-verified"] = placed(
      neverVerified.ref,
      `/deploy/${neverVerified.ref.hash}.bpf.o`,
      "schedctl_fifo",
    );
    objects.broken = placed(broken!.policy, "/deploy/none.bpf.o", "schedctl_stall");
    db.pragma("wal_checkpoint(TRUNCATE)");
    db.close();
    const guest = guestRun(
      join(work, "guest"),
      [{ name: "refuse", load: "plain" }],
      { db: "/tmp/state.db", policies: objects, probationSeconds: 3, regressionRatio: 1.25 },
      join(work, "state.db"),
      Object.values(objects)
        .filter((p) => p.loadable.kind === "object" && !p.loadable.objectPath.endsWith("none.bpf.o"))
        .map((p) => ({
          hostPath: join(work, "objects", `${p.ref.hash}.bpf.o`),
          guestPath: (p.loadable as { objectPath: string }).objectPath,
        })),
    );
    const run = await runInVm({ ...guest, timeoutMs: 240_000 });
    const report = scenarioResults(run.results, "refuse").find((r) => !("step" in r)) as
      | { answers: Record<string, { accepted: boolean; reason?: string }>; before: object; after: object }
      | undefined;
    expect(report, consoleTail(run, 60)).toBeDefined();
    expect(report!.answers).toEqual({
      misnamed: {
        accepted: false,
        reason: expect.stringMatching(/failed at the static stage: static rules refused/),
      },
      unverifiable: {
        accepted: false,
        reason: expect.stringMatching(/failed at the kernel stage: kernel verifier refused/),
      },
      "stall-0": {
        accepted: false,
        reason: expect.stringMatching(/failed at the dynamic stage: dynamic run failed/),
      },
      "never-verified": { accepted: false, reason: "it has no verdict: verify it first" },
      broken: {
        accepted: false,
        reason: expect.stringMatching(/failed at the static stage: does not compile/),
      },
    });
    // The kernel's word: nothing was enabled, nothing pinned.
    expect(report!.before).toMatchObject({ state: "disabled", links: [] });
    expect(report!.after).toEqual(report!.before);
  });
});

function placed(ref: Placed["ref"], objectPath: string, opsName: string): Placed {
  return { ref, loadable: { kind: "object", hash: ref.hash, objectPath, opsName } };
}
