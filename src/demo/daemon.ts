import { readFileSync } from "node:fs";
import { join } from "node:path";
import type { RunMode } from "./day.ts";

// The one place that says how schedctld runs inside the VM for each kind of run: its command
// line, its configuration, and whether its auto mode (decide -> verify -> deploy) is wired in.
// Everything else in src/demo treats the daemon as a black box that logs JSON lines.

/** Where the guest finds the project's code, types already stripped (see guest.ts). */
export const GUEST_JS_ROOT = "/opt/schedctl/jsdist";
export const GUEST_CONFIG = "/etc/schedctl-day/schedctl.toml";
/** [verify] cache_dir of the daemon in the guest: policies.ts puts the prebuilt objects there. */
export const GUEST_CACHE = "/var/cache/schedctl-day";

export interface DaemonSettings {
  /** Seconds a new policy stays on probation: short, as the day's phases are short. */
  probationSeconds: number;
  sampleIntervalMs: number;
  minDwellSamples: number;
  /** The planner's seed ([decide] seed): the same seed, the same choices. */
  plannerSeed: number;
  /** The scripted model's port on the guest's 127.0.0.1 (scripted-model.ts); none: no LLM. */
  llmPort?: number;
}

/** Where the LLM runs' scripted model listens in the guest. */
export const GUEST_MODEL_PORT = 8808;

export const DEFAULT_DAEMON_SETTINGS: DaemonSettings = {
  probationSeconds: 6,
  sampleIntervalMs: 1000,
  minDwellSamples: 3,
  plannerSeed: 1,
};

/** The daemon's configuration for the day (the same file for every run; the mode is a flag). */
export function daemonConfigToml(settings: DaemonSettings): string {
  return `# written by src/demo/daemon.ts for the day in the sched_ext VM
[daemon]
mode = "auto"
sample_interval_ms = ${settings.sampleIntervalMs}
keep_policy_on_stop = false
log_level = "info"

${
  settings.llmPort
    ? `# A scripted stand-in for a paid model (src/demo/scripted-model.ts), asked only as schedctl
# would ask a real one: a drifted phase, an unsure planner, a signature never asked about.
[llm]
provider = "openai"
endpoint = "http://127.0.0.1:${settings.llmPort}/v1"
model = "scripted-rules"`
    : `[llm]
provider = "none"`
}

# The day's phases last seconds, not hours, and a tick takes longer under emulation: a phase
# must hold for fewer samples before the next change can be reported.
[detect]
min_dwell_samples = ${settings.minDwellSamples}
confirm_samples = 2

[deploy]
probation_seconds = ${settings.probationSeconds}

[decide]
seed = ${settings.plannerSeed}

# The guest has no clang and no nested qemu: the objects come prebuilt (policies.ts), and a
# candidate passes with the static rules and the guest kernel's own verifier, then reaches the
# kernel only under the probation guard.
[verify]
cache_dir = "${GUEST_CACHE}"
dynamic = "probation-only"
`;
}

/** schedctld's arguments in the guest for a run (the baseline only observes). */
export function daemonArgs(mode: RunMode, stateDir: string): string[] {
  return [
    `${GUEST_JS_ROOT}/src/daemon/main.js`,
    "--foreground",
    ...(mode === "baseline" ? ["--observe-only"] : []),
    "--bus",
    "none",
    "--config",
    GUEST_CONFIG,
    "--state-dir",
    stateDir,
  ];
}

export type AutoModeStatus = { ready: true } | { ready: false; reason: string };

/**
 * Whether the day's autopilot runs can really decide and deploy inside the VM: schedctld must
 * wire decide -> verify -> deploy into its loop (the guest's policies come from policies.ts).
 * Otherwise the autopilot runs still start the daemon in auto mode, and the harness reports
 * that they could only observe.
 */
export function autoModeInVm(projectRoot: string): AutoModeStatus {
  const main = readFileSync(join(projectRoot, "src", "daemon", "main.ts"), "utf8");
  if (main.includes("is not wired in yet"))
    return { ready: false, reason: "schedctld's auto mode is not wired into its loop yet (src/daemon)" };
  return { ready: true };
}
