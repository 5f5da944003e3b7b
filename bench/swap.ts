// Hot-swap cost and ejection detection on the real sched_ext kernel, in one boot of the sandbox
// VM: the deployment controller (with the real Kernel and store) swaps between two built-in
// policies under load (two CPU hogs and a request/response service) several times, then the
// kernel is made to eject the running policy (sysrq-S) and the controller's reaction is timed.
//   G (gap_ms): time with no sched_ext policy during a swap, from the kernel log's timestamps
//     ("disabled (unregistered from user space)" to the next "enabled"); median over the swaps.
//   D (rollback_detect_ms): from the ejection to the controller noticing it (its watchdog polls
//     sched_ext's sysfs state every 100 ms).
// The KPI guard is off (the bench times the mechanics). Emulated VM (TCG): bpftool's load through
// the verifier dominates the gap (struct_ops register = load + verify + attach in one process;
// the bench prints a verify-only load beside it); a real host is faster.
//   npm run bench:swap        (BENCH_SWAPS=N, default 5)
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createQemuSandbox, runRetryingCrashes } from "../src/sandbox/vm.ts";
import { kernelLog, prepareDeployRun, scenarioResults } from "../test/vm/guest/harness.ts";

const SWAPS = Number(process.env.BENCH_SWAPS ?? 5);
const work = mkdtempSync(join(tmpdir(), "schedctl-bench-swap-"));
try {
  const { script, files } = await prepareDeployRun(
    work,
    [
      {
        name: "swap",
        load: "plain",
        env: { FIRST: "vtime", SECOND: "fifo", SWAPS: String(SWAPS), REGRESSION_RATIO: "1000" },
      },
    ],
    { probationSeconds: 2, regressionRatio: 1.25 },
  );
  const { result, reruns } = await runRetryingCrashes(
    createQemuSandbox(),
    { script, files, timeoutMs: 600_000 },
    5, // under TCG a boot dies of an emulator fault (Oops: int3) now and then
  );
  const report = scenarioResults(result.results, "swap").find((r) => !("step" in r)) as
    | {
        detectMs: number;
        deployments: { policy: string; gapMs: number | null; outcome: string }[];
        ejections: string[];
        verifyLoadMs: number[];
      }
    | undefined;
  if (!report) {
    console.error(result.console.split("\n").slice(-60).join("\n"));
    throw new Error(`the guest reported no swap result (exit ${result.exitCode}, crashed ${result.crashed})`);
  }

  const log = kernelLog(result.console, "swap");
  const gaps: number[] = [];
  for (const [i, line] of log.entries()) {
    if (!/disabled \(unregistered from user space\)/.test(line.text)) continue;
    const next = log.slice(i + 1).find((l) => /" enabled$/.test(l.text));
    if (next) gaps.push((next.seconds - line.seconds) * 1000);
  }
  // The controller's own figure: detach start to the kernel reporting the new policy enabled.
  const controllerGaps = report.deployments
    .slice(0, -1) // newest first; the first attach (from the default) is not a swap
    .reverse()
    .map((d) => d.gapMs)
    .filter((g): g is number => g !== null);

  console.log(
    `swaps under load: ${gaps.length} (requested ${SWAPS}), boots rerun after an emulator crash: ${reruns}`,
  );
  console.log(`kernel-log gap per swap (ms): ${gaps.map((g) => g.toFixed(0)).join(", ")}`);
  console.log(
    `controller-measured swap time (ms, detach start to enabled): ${controllerGaps.map((g) => g.toFixed(0)).join(", ")}`,
  );
  console.log(
    `verify-only load of each policy under the same load (bpftool prog loadall, ms): ${report.verifyLoadMs.map((t) => t.toFixed(0)).join(", ")}; gap / load = ${(median(gaps) / median(report.verifyLoadMs)).toFixed(2)}`,
  );
  console.log(`ejections during the swaps: ${report.ejections.length}`);
  console.log(`injected ejection (sysrq-S) noticed after ${report.detectMs.toFixed(0)} ms`);
  console.log(`swap: gap_ms=${median(gaps).toFixed(0)} rollback_detect_ms=${report.detectMs.toFixed(0)}`);
} finally {
  rmSync(work, { recursive: true, force: true });
}

function median(xs: number[]): number {
  if (xs.length === 0) return Number.NaN;
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}
