import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, expect, it } from "vitest";
import { defaultConfig } from "../../src/config/schema.ts";
import { defaultThresholds } from "../../src/daemon/wiring.ts";
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
import { uncompilablePolicy } from "./guest/policies.ts";

// A verification the autopilot no longer wants (a newer phase, a mode change, the daemon
// stopping) must not keep a VM running for minutes: the abort reaches qemu.

const work = mkdtempSync(join(tmpdir(), "schedctl-verify-cancel-"));
afterAll(() => rmSync(work, { recursive: true, force: true }));

describeVm("a cancelled verification", () => {
  it("stops the sandbox VM, keeps the verdicts reached before, and records none for the interrupted run", async () => {
    const kernel = await ensureSandboxKernel({ cacheDir: defaultCacheDir() });
    const compiler = new PolicyCompiler({ cacheDir: work, vmlinuxH: kernel.vmlinuxH });
    const db = openDb(join(work, "state.db"), VERDICT_MIGRATIONS);
    const store = new SqliteVerdictStore(db);
    const controller = new AbortController();
    let qemuPid: number | undefined;
    const sandbox: Sandbox = {
      run: (options) =>
        vmSandbox().run({
          ...options,
          onSpawn: (pid) => {
            qemuPid = pid;
            setTimeout(() => controller.abort(new Error("cancelled: a newer phase change")), 1_500);
          },
        }),
    };
    const verifier = new Verifier({
      verdicts: store,
      hostKernel: undefined,
      sandbox,
      clock: systemClock,
      logger: createMemoryLogger(),
      options: {
        maxTimeoutMs: 10_000,
        sandboxSeconds: 30,
        againstDefault: defaultThresholds(defaultConfig()),
      },
    });
    const fifo = requestFor(compiler, builtinPolicy("fifo"));
    const broken = requestFor(compiler, uncompilablePolicy());

    await expect(verifier.verify([fifo, broken], controller.signal)).rejects.toThrow(
      "cancelled: a newer phase change",
    );
    expect(qemuPid, "the sandbox VM was started").toBeDefined();
    expect(() => process.kill(qemuPid!, 0), "qemu is gone").toThrow(/ESRCH/);
    expect(store.getVerdict(broken.ref.hash), "the static verdict stays").toMatchObject({
      stage: "static",
      passed: false,
    });
    expect(store.getVerdict(fifo.ref.hash), "an interrupted run is no verdict").toBeUndefined();
    db.close();
  });
});
