// What verification costs, stage by stage, for one built-in policy (fifo), each run from a cold
// compile cache and a fresh verdict store so that nothing is skipped: clang, the static rules,
// the kernel verifier (in the sandbox guest when this host has no sched_ext, as here), and the
// sandbox run (boot, the default's two runs, the candidate's run, teardown; from the moment the
// run holds the VM lock). total = compile + static + sandbox (the kernel verifier runs in the
// guest here). Median of 3.
//   npm run bench:verify        (BENCH_VERIFY_RUNS=N, default 3)
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { defaultConfig } from "../src/config/schema.ts";
import { defaultThresholds } from "../src/daemon/wiring.ts";
import { systemClock } from "../src/host/clock.ts";
import { createHost } from "../src/host/host.ts";
import { createKernel } from "../src/kernel/loader.ts";
import { createLogger } from "../src/log/logger.ts";
import { builtinPolicy } from "../src/policies/catalogue.ts";
import { PolicyCompiler } from "../src/policies/compile.ts";
import { vmlinuxHeaderFor } from "../src/policies/vmlinux.ts";
import { defaultCacheDir, ensureSandboxKernel } from "../src/sandbox/kernel-image.ts";
import { defaultTcgThread } from "../src/sandbox/qemu.ts";
import { createQemuSandbox } from "../src/sandbox/vm.ts";
import { openDb } from "../src/store/db.ts";
import { SqliteVerdictStore, VERDICT_MIGRATIONS } from "../src/store/verdicts.ts";
import { requestFor } from "../src/verify/build.ts";
import { Verifier } from "../src/verify/verifier.ts";

const RUNS = Number(process.env.BENCH_VERIFY_RUNS ?? 3);
const config = defaultConfig();
const host = createHost("/");
const kernel = createKernel({ host });
const cacheDir = defaultCacheDir();
const logger = createLogger({ level: "warn" });
const rows: { compile: number; static: number; verifier: number; sandbox: number; total: number }[] = [];
for (let run = 1; run <= RUNS; run++) {
  const work = mkdtempSync(join(tmpdir(), "schedctl-bench-verify-"));
  try {
    const compiler = new PolicyCompiler({
      cacheDir: work,
      vmlinuxH: vmlinuxHeaderFor({ host, cacheDir, sandboxKernel: () => ensureSandboxKernel({ cacheDir }) }),
    });
    const verifier = new Verifier({
      verdicts: new SqliteVerdictStore(openDb(join(work, "state.db"), VERDICT_MIGRATIONS)),
      hostKernel: kernel,
      sandbox: createQemuSandbox({ cacheDir }),
      clock: systemClock,
      logger,
      options: {
        maxTimeoutMs: config.verify.max_timeout_ms,
        sandboxSeconds: config.verify.sandbox_seconds,
        againstDefault: defaultThresholds(config),
      },
    });
    const [verdict] = await verifier.verify([requestFor(compiler, builtinPolicy("fifo"))]);
    const t = verdict!.timings;
    if (!t) throw new Error(`no stage times in the verdict: ${verdict!.log}`);
    // The stages' own time: a wait for another run's VM (they take turns) is left out.
    const total = t.compileMs + t.staticMs + (t.sandboxMs ?? 0);
    rows.push({
      compile: t.compileMs,
      static: t.staticMs,
      verifier: t.kernelMs ?? Number.NaN,
      sandbox: t.sandboxMs ?? Number.NaN,
      total,
    });
    console.log(
      `run ${run}: ${verdict!.passed ? "pass" : "fail"} at ${verdict!.stage}${verdict!.admits ? ` for ${verdict!.admits.join(",")}` : ""}; compile ${t.compileMs} ms, static ${t.staticMs} ms, kernel verifier ${t.kernelMs ?? "-"} ms${kernel.status().supported ? "" : " (in the guest)"}, sandbox ${t.sandboxMs ?? "-"} ms, total ${total.toFixed(0)} ms${verdict!.compiledAgainst ? `; compiled against ${verdict!.compiledAgainst}` : ""}`,
    );
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}
const median = (pick: (r: (typeof rows)[number]) => number) => {
  const xs = rows.map(pick).sort((a, b) => a - b);
  return xs[Math.floor(xs.length / 2)]!.toFixed(0);
};
console.log(
  `verify: compile_ms=${median((r) => r.compile)} static_ms=${median((r) => r.static)} verifier_ms=${median((r) => r.verifier)} sandbox_ms=${median((r) => r.sandbox)} total_ms=${median((r) => r.total)} mode=${defaultTcgThread()}`,
);
