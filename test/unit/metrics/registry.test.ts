import { describe, expect, it } from "vitest";
import { DaemonMetrics, type DaemonSnapshot } from "../../../src/metrics/registry.ts";
import { metricValue } from "../../helpers/metrics.ts";
import { runProgram } from "../../helpers/run.ts";

// What each daemon event counts as in schedctld's registry, label values from hostile host text,
// and the exposition text promtool (Debian's prometheus) accepts.

const snapshot = (over: Partial<DaemonSnapshot> = {}): DaemonSnapshot => ({
  mode: "auto",
  phase: { class: "latency", signature: "latency-1a2b" },
  deploy: { phase: "idle", policy: undefined, probation: undefined },
  ...over,
});

describe("DaemonMetrics", () => {
  it("counts swaps, rollbacks by cause and ejections by the kernel's reason from deploy transitions", async () => {
    const m = new DaemonMetrics();
    const t = (from: string, to: string, event: string, reason = "") =>
      m.transition({ from, to, event, reason } as Parameters<DaemonMetrics["transition"]>[0]);
    t("idle", "deploying", "apply");
    t("deploying", "probation", "swapped");
    t("probation", "rolling_back", "kpis", "KPI regression: cgroupPsiCpuSome 0.1 -> 0.4");
    t("rolling_back", "fallback_default", "swapped");
    t("fallback_default", "deploying", "apply");
    t("deploying", "probation", "swapped");
    t("probation", "active", "kpis");
    // Ejected: the kernel said why while the rollback ran.
    t("active", "rolling_back", "kernel", "vtime lost: sched_ext disabled");
    m.kernelDisabled("runnable task stall");
    t("rolling_back", "active", "swapped");
    // Ejected again, the kernel silent.
    t("active", "rolling_back", "kernel", "vtime lost: sched_ext disabling");
    t("rolling_back", "fallback_default", "swapped");
    t("deploying", "rolling_back", "swapped", "attaching x failed");
    t("active", "rolling_back", "rollback", "internal error: boom");
    t("probation", "rolling_back", "rollback", "operator asked for a rollback");
    // A disable outside an ejection (say, while attaching) is no ejection.
    m.kernelDisabled("scx_bpf_error");

    const v = (name: string, labels: Record<string, string>) => metricValue(m, name, labels);
    expect(await v("schedctl_swaps_total", { kind: "deploy" })).toBe(2);
    expect(await v("schedctl_swaps_total", { kind: "restore" })).toBe(1);
    expect(await v("schedctl_swaps_total", { kind: "default" })).toBe(2);
    expect(await v("schedctl_rollbacks_total", { reason: "kpi_regression" })).toBe(1);
    expect(await v("schedctl_rollbacks_total", { reason: "ejected" })).toBe(2);
    expect(await v("schedctl_rollbacks_total", { reason: "swap_failed" })).toBe(1);
    expect(await v("schedctl_rollbacks_total", { reason: "internal_error" })).toBe(1);
    expect(await v("schedctl_rollbacks_total", { reason: "operator" })).toBe(1);
    expect(await v("schedctl_ejections_total", { reason: "runnable task stall" })).toBe(1);
    expect(await v("schedctl_ejections_total", { reason: "unknown" })).toBe(1);
    expect(await v("schedctl_ejections_total", { reason: "scx_bpf_error" })).toBeUndefined();
  });

  it("keeps one series per info metric: the phase and policy in place now, not every one seen", async () => {
    const m = new DaemonMetrics();
    m.observe(snapshot(), 1);
    m.observe(
      snapshot({
        phase: { class: "throughput", signature: "throughput-9f" },
        deploy: {
          phase: "probation",
          policy: { name: "vtime", hash: "a".repeat(64) },
          probation: { cgroup: "/system.slice/api.service", kpiRatio: 0.7, secondsLeft: 12 },
        },
      }),
      3,
    );
    const text = await m.text();
    expect(text.match(/^schedctl_phase_info\{.*$/gm)).toEqual([
      'schedctl_phase_info{class="throughput",signature="throughput-9f"} 1',
    ]);
    expect(text.match(/^schedctl_policy_info\{.*$/gm)).toEqual([
      `schedctl_policy_info{policy="vtime",hash="${"a".repeat(12)}"} 1`,
    ]);
    expect(await metricValue(m, "schedctl_deploy_state", { state: "probation" })).toBe(1);
    expect(await metricValue(m, "schedctl_deploy_state", { state: "idle" })).toBe(0);
    expect(
      await metricValue(m, "schedctl_probation_kpi_ratio", { cgroup: "/system.slice/api.service" }),
    ).toBe(0.7);
    expect(await metricValue(m, "schedctl_probation_seconds_left")).toBe(12);
    expect(await metricValue(m, "schedctl_phase_changes_total")).toBe(3);
    // Probation over: its ratio goes, the policy stays.
    m.observe(
      snapshot({
        deploy: { phase: "active", policy: { name: "vtime", hash: "a".repeat(64) }, probation: undefined },
      }),
      3,
    );
    expect(await m.text()).not.toMatch(/^schedctl_probation_kpi_ratio\{/m);
    expect(await metricValue(m, "schedctl_probation_seconds_left")).toBe(0);
    expect(await metricValue(m, "schedctl_phase_changes_total")).toBe(3);
  });

  it("counts verifier refusals by stage, LLM calls by stage and result, and their tokens", async () => {
    const m = new DaemonMetrics();
    m.verdict({ passed: false, stage: "kernel" });
    m.verdict({ passed: true, stage: "kernel" });
    m.verdict({ passed: false, stage: "static" });
    const call = { provider: "openai", stage: "goal", inputTokens: 900, outputTokens: 60 };
    m.llmCall({ ...call, result: "ok" });
    m.llmCall({ ...call, result: "HTTP 429 Too Many Requests", inputTokens: 0, outputTokens: 0 });
    m.llmCall({ ...call, stage: "synthesis", result: "ok", inputTokens: 1200, outputTokens: 400 });
    expect(await metricValue(m, "schedctl_verifier_refusals_total", { stage: "kernel" })).toBe(1);
    expect(await metricValue(m, "schedctl_verifier_refusals_total", { stage: "static" })).toBe(1);
    expect(await metricValue(m, "schedctl_verifier_refusals_total", { stage: "dynamic" })).toBe(0);
    const calls = (stage: string, result: string) =>
      metricValue(m, "schedctl_llm_calls_total", { provider: "openai", stage, result });
    expect(await calls("goal", "ok")).toBe(1);
    expect(await calls("goal", "HTTP")).toBe(1);
    expect(await calls("synthesis", "ok")).toBe(1);
    expect(
      await metricValue(m, "schedctl_llm_tokens_total", { provider: "openai", direction: "input" }),
    ).toBe(2100);
    expect(
      await metricValue(m, "schedctl_llm_tokens_total", { provider: "openai", direction: "output" }),
    ).toBe(460);
  });

  it("writes host text into labels with every control visible, and promtool accepts the result", async () => {
    const m = new DaemonMetrics();
    m.sampled(0.003);
    m.observe(
      snapshot({
        deploy: {
          phase: "probation",
          policy: { name: "gen\x1b[2Jerated\u202e", hash: "b".repeat(64) },
          probation: {
            cgroup: '/evil"}\nschedctl_swaps_total{kind="deploy"} 99',
            kpiRatio: 1.1,
            secondsLeft: 3,
          },
        },
      }),
      1,
    );
    m.transition({ from: "probation", to: "rolling_back", event: "kernel", reason: "" });
    m.kernelDisabled("stall\r\nFAKE 1");
    m.transition({ from: "rolling_back", to: "fallback_default", event: "swapped", reason: "" });
    const text = await m.text();
    // biome-ignore lint/suspicious/noControlCharactersInRegex: asserting their absence is the point
    expect(text).not.toMatch(/[\u0000-\u0009\u000b-\u001f\u007f-\u009f\u202e]/);
    expect(text).toContain('policy="gen\\\\x1b[2Jerated\\\\u202e"');
    expect(text).toContain('cgroup="/evil\\"}\\\\x0aschedctl_swaps_total{kind=\\"deploy\\"} 99"');
    expect(text).toContain('schedctl_ejections_total{reason="stall\\\\x0d\\\\x0aFAKE 1"} 1');
    expect(await metricValue(m, "schedctl_swaps_total", { kind: "deploy" })).toBe(0);
    const check = await runProgram("promtool", ["check", "metrics"], { input: text });
    expect(check, check.stdout + check.stderr).toMatchObject({ code: 0, stderr: "" });
  });

  it("names every metric it exports, a histogram's series included", async () => {
    const names = await new DaemonMetrics().names();
    for (const name of [
      "schedctl_swaps_total",
      "schedctl_sample_duration_seconds_bucket",
      "schedctl_sample_duration_seconds_count",
      "schedctl_process_resident_memory_bytes",
      "schedctl_process_cpu_seconds_total",
    ])
      expect(names).toContain(name);
    expect(names.every((n) => n.startsWith("schedctl_"))).toBe(true);
  });
});
