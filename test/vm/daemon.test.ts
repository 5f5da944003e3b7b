import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, expect, it } from "vitest";
import { consoleTail, describeVm, resultsOf, runInVm, type VmRun, vmSandbox } from "../helpers/vm.ts";
import {
  consoleLine,
  daemonScript,
  exploringSeed,
  guestCgroupIds,
  LATENCY_LOAD,
  LLM_TEST_FILES,
  parseCgroupIds,
  prebuildObjects,
  transpileForGuest,
  withGuestLlm,
} from "./guest/daemon-harness.ts";
import { LLM_BROKEN, LLM_FIXED } from "./guest/daemon-llm-policies.ts";

// schedctld itself on the sched_ext kernel, in mode auto with no LLM: a request/response
// service starts in system.slice/api.service over CPU hogs in batch.slice; the daemon must
// notice the phase change, have the planner decide, verify the candidate (static rules and the
// guest kernel's own verifier; the dynamic stage is "probation-only" here, as its verdict says),
// deploy it, see it through probation, store all of it, and restore the kernel default on stop.
// Then the same with an LLM: the scripted server (test/helpers/llm-server.ts) runs in the guest on
// 127.0.0.1 (the guest has no network) and writes a program the guest kernel's verifier refuses,
// then repairs it from the verifier's log; the repaired one must pass probation, the refused
// one must never reach the kernel. (Giving up after the repair rounds is covered against the same
// server in test/integration/llm.test.ts; a third daemon here would add minutes.)

type Report = Record<string, unknown> & {
  phases: { class: string; signature: string }[];
  decisions: {
    id: number;
    chooser: string;
    class: string;
    signature: string;
    policy: string;
    outcome: { passed: boolean } | null;
  }[];
  verdicts: { policy: string; passed: boolean; stage: string; log: string }[];
  deployments: { policy: string; outcome: string; reason: string; probation: number }[];
};

const work = mkdtempSync(join(tmpdir(), "schedctl-daemon-vm-"));
afterAll(() => rmSync(work, { recursive: true, force: true }));

describeVm(
  "schedctld on the sched_ext kernel (planner, and a scripted LLM on 127.0.0.1 in the guest)",
  () => {
    let run: VmRun;
    let ids: Record<string, string>;

    beforeAll(async () => {
      ids = await guestCgroupIds(vmSandbox());
      const objects = await prebuildObjects(join(work, "cache"), ids, [LLM_BROKEN, LLM_FIXED]);
      const files = [
        ...objects,
        ...transpileForGuest(join(work, "jsdist"), ["test/vm/guest/daemon-report.ts", ...LLM_TEST_FILES]),
      ];
      const seed = exploringSeed();
      // The LLM is asked whenever the planner is not certain, on any drift (the scripted server
      // answers the default for idle phases); its policy is judged by the same probation guard.
      const llmConfig = (run: string) =>
        `mode = "auto"\n[observe]\ncgroup_max_depth = 3\n[decide]\nseed = ${seed}\nconfidence_threshold = 1\n[llm]\nprovider = "openai"\nendpoint = "http://127.0.0.1:@LLM_PORT@/v1"\nmodel = "scripted"\ndrift_threshold = 0.01\nmax_repair_rounds = 1\nmax_retries = 0\ntimeout_ms = 120000\n[deploy]\nprobation_seconds = 8\n# ${run}`;
      const script = daemonScript([
        {
          name: "planner",
          config: `mode = "auto"\n[observe]\ncgroup_max_depth = 3\n[decide]\nseed = ${seed}\n[deploy]\nprobation_seconds = 8`,
          load: LATENCY_LOAD,
          until: "passed probation|KPI regression|kernel default restored",
          untilSeconds: 420,
        },
        {
          name: "llm",
          config: llmConfig("llm"),
          ...withGuestLlm("llm"),
          load: LATENCY_LOAD,
          until: "passed probation|KPI regression|kernel default restored",
          untilSeconds: 420,
        },
      ]);
      run = await runInVm({ script, files, timeoutMs: 900_000 }, 2);
      expect(run.exitCode, consoleTail(run, 80)).toBe(0);
    }, 1_500_000);

    it("decides, verifies, deploys and keeps a policy through probation, then restores the default on stop", () => {
      expect(
        parseCgroupIds(run.console),
        "the guest's cgroup ids are those the objects were built for",
      ).toEqual(ids);
      const [report] = resultsOf<Report>(run, "daemon");
      expect(report, consoleTail(run, 120)).toBeDefined();
      // The first phase is the daemon's own start-up; the loads make a later one.
      const loaded = report!.phases.slice(1).filter((p) => p.class !== "idle");
      expect(loaded.length, `a loaded phase was detected: ${JSON.stringify(report!.phases)}`).toBeGreaterThan(
        0,
      );
      const decision = report!.decisions.find(
        (d) => d.policy !== "default" && loaded.some((p) => p.signature === d.signature),
      );
      expect(decision, JSON.stringify(report!.decisions)).toMatchObject({ chooser: "planner" });
      const verdict = report!.verdicts.find((v) => v.policy === decision!.policy);
      expect(verdict).toMatchObject({ passed: true, stage: "kernel" });
      expect(verdict!.log).toMatch(/probation-only/);
      const deployment = report!.deployments.find((d) => d.policy === decision!.policy);
      expect(deployment, consoleTail(run, 120)).toMatchObject({ outcome: "passed" });
      expect(deployment!.probation).toBeGreaterThanOrEqual(3);
      expect(decision!.outcome).toMatchObject({ passed: true });
      // The kernel's own word, while the daemon ran and after it stopped.
      expect(consoleLine(run.console, "KERNEL", "planner")).toMatch(/^enabled schedctl_/);
      expect(consoleLine(run.console, "EXIT", "planner")).toBe("0");
      expect(consoleLine(run.console, "STOPPED", "planner")).toMatch(/^disabled\s+links=0$/);
    });

    it("counts the swap in its node_exporter textfile: the deploy counter went up while the loads ran", () => {
      const swaps = (tag: string) =>
        Number(
          new RegExp(`^${tag} planner schedctl_swaps_total\\{kind="deploy"\\} (\\d+)\\s*$`, "m").exec(
            run.console,
          )?.[1],
        );
      const before = swaps("METRICS-BEFORE");
      const after = swaps("METRICS-AFTER");
      expect(before, consoleTail(run, 60)).toBeGreaterThanOrEqual(0);
      expect(after, consoleTail(run, 60)).toBeGreaterThan(before);
      console.log(
        `textfile: schedctl_swaps_total{kind="deploy"} ${before} before the loads, ${after} at the end`,
      );
      // Never more than the deployments the store holds that reached the kernel.
      const [report] = resultsOf<Report>(run, "daemon");
      expect(after).toBeLessThanOrEqual(
        report!.deployments.filter((d) => d.outcome !== "swap_failed").length,
      );
    });

    it("gets a generated policy through the repair loop, verifies, deploys it and sees it pass probation", () => {
      const [report] = resultsOf<Report & { consultations: { status: string; calls: number }[] }>(
        run,
        "daemon",
      ).filter((r) => r.scenario === "llm");
      expect(report, consoleTail(run, 120)).toBeDefined();
      expect(report!.consultations.map((c) => c.status)).toContain("decided");
      const decision = report!.decisions.find((d) => d.chooser === "llm");
      expect(decision, JSON.stringify(report!.decisions)).toMatchObject({ policy: "llmwake" });
      // The repair loop: the first program was refused by the guest kernel's own verifier.
      const broken = report!.verdicts.find((v) => v.policy === "llmbroken");
      expect(broken).toMatchObject({ passed: false, stage: "kernel" });
      expect(broken!.log).toMatch(/nullable map value|invalid mem access|map_value_or_null/);
      expect(report!.verdicts.find((v) => v.policy === "llmwake")).toMatchObject({ passed: true });
      expect(
        report!.deployments.find((d) => d.policy === "llmwake"),
        JSON.stringify(report!.deployments),
      ).toMatchObject({ outcome: "passed" });
      const kmsg = kernelLines(run.console, "llm");
      expect(kmsg.some((l) => /"schedctl_llmwake" enabled/.test(l))).toBe(true);
      expect(kmsg.some((l) => /schedctl_llmbroken/.test(l))).toBe(false);
      expect(consoleLine(run.console, "STOPPED", "llm")).toMatch(/^disabled\s+links=0$/);
    });
  },
);

function kernelLines(console: string, run: string): string[] {
  return console.split(/\r?\n/).filter((l) => l.startsWith(`KMSG ${run} `));
}
