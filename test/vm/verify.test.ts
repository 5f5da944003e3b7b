import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, expect, it } from "vitest";
import { systemClock } from "../../src/host/clock.ts";
import { createMemoryLogger } from "../../src/log/logger.ts";
import { builtinPolicy } from "../../src/policies/catalogue.ts";
import { PolicyCompiler } from "../../src/policies/compile.ts";
import { defaultCacheDir, ensureSandboxKernel } from "../../src/sandbox/kernel-image.ts";
import type { Sandbox } from "../../src/sandbox/types.ts";
import { openDb } from "../../src/store/db.ts";
import { SqliteVerdictStore, VERDICT_MIGRATIONS } from "../../src/store/verdicts.ts";
import { requestFor } from "../../src/verify/build.ts";
import { Verifier } from "../../src/verify/verifier.ts";
import { describeVm, vmSandbox } from "../helpers/vm.ts";
import { misnamedPolicy, stallingPolicy, uncompilablePolicy, unverifiablePolicy } from "./guest/policies.ts";

// The Execution Verifier end to end: real clang and bpftool for the static stage, the sched_ext
// kernel's verifier and a loaded sandbox run in one VM boot for the rest.

const work = mkdtempSync(join(tmpdir(), "schedctl-verify-vm-"));
afterAll(() => rmSync(work, { recursive: true, force: true }));

describeVm("the Execution Verifier", () => {
  it("stops each bad candidate at its stage with the log, passes a good one, and never recomputes a verdict", async () => {
    const kernel = await ensureSandboxKernel({ cacheDir: defaultCacheDir() });
    const compiler = new PolicyCompiler({ cacheDir: work, vmlinuxH: kernel.vmlinuxH });
    const store = new SqliteVerdictStore(openDb(join(work, "state.db"), VERDICT_MIGRATIONS));
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
      options: { maxTimeoutMs: 10_000, sandboxSeconds: 5 },
    });
    const policies = [
      builtinPolicy("fifo"),
      uncompilablePolicy(),
      misnamedPolicy(),
      unverifiablePolicy(),
      stallingPolicy(0),
    ];
    const requests = policies.map((p) => requestFor(compiler, p));
    const [fifo, broken, misnamed, unverifiable, stalling] = await verifier.verify(requests);

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

    const again = await verifier.verify(requests);
    expect(boots, "cached verdicts are never recomputed").toBe(1);
    expect(again).toEqual([fifo, broken, misnamed, unverifiable, stalling]);
  });
});
