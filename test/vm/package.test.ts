import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { run } from "../../src/sandbox/exec.ts";
import { ensureSystemdVm, runSystemdVm, type SystemdVmResult } from "../helpers/systemd-vm.ts";

// Issue 7's acceptance: the .deb, installed with dpkg on a Debian system booted with systemd as
// PID 1 on the sched_ext kernel, started, used over the system bus, watched by the watchdog and
// purged. One boot runs every step (test/vm/package-guest.sh); each test checks one of them.
// SCHEDCTL_DEB=PATH tests that package instead of building one (scripts/build-deb.sh).

const ROOT = join(import.meta.dirname, "../..");

type Step = Record<string, unknown> & { step: string; rc: number; out: string; atMs: number };
let vm: SystemdVmResult;
const steps = new Map<string, Step>();

function step(name: string): Step {
  const found = steps.get(name);
  if (!found) {
    throw new Error(`the guest never reported step "${name}"; console tail:\n${vm.console.slice(-3000)}`);
  }
  return found;
}

/** "what: output" for assertion messages. */
function shown(s: Step): string {
  return `${s.step} (rc ${s.rc}): ${s.out}`;
}

beforeAll(async () => {
  const images = await ensureSystemdVm();
  const deb =
    process.env.SCHEDCTL_DEB ?? (await run(join(ROOT, "scripts/build-deb.sh"), [])).trim().split("\n").at(-1);
  if (!deb || !existsSync(deb)) throw new Error(`no package to test (scripts/build-deb.sh gave "${deb}")`);
  vm = await runSystemdVm(images, {
    files: [deb],
    script: readFileSync(join(import.meta.dirname, "package-guest.sh"), "utf8"),
    timeoutMs: 1_200_000,
  });
  vm.results.forEach((result, i) => {
    const s = { ...(result as Step), atMs: vm.resultAtMs[i] ?? 0 };
    steps.set(s.step, s);
  });
  const times = [...steps.values()].map((s) => `${s.step}@${(s.atMs / 1000).toFixed(1)}s`).join(" ");
  process.stderr.write(
    `systemd VM: ${(vm.durationMs / 1000).toFixed(1)} s, ${vm.reruns} reruns, steps ${times}\n`,
  );
}, 1_800_000);

describe("the schedctl package on a systemd host", () => {
  it("boots Debian with systemd as PID 1 on the sched_ext kernel and finishes the payload", () => {
    expect(vm.timedOut, vm.console.slice(-3000)).toBe(false);
    expect(vm.crashed, vm.console.slice(-3000)).toBe(false);
    expect(vm.exitCode, vm.console.slice(-3000)).toBe(0);
    const boot = step("boot");
    expect(boot.pid1).toBe("systemd");
    expect(boot.kernel).toEqual({ state: "disabled", ops: "" });
  });

  it("installs with dpkg: group, enabled unit, empty root-only credential file, prebuilt policies", () => {
    expect(step("install").rc, shown(step("install"))).toBe(0);
    const installed = step("installed");
    expect(installed.enabled).toBe("enabled");
    expect(installed.group).toMatch(/^schedctl:x:\d+:/);
    expect(installed.key).toBe("600 root 0");
    expect(Number(installed.prebuilt)).toBeGreaterThanOrEqual(6);
  });

  it("has a unit that systemd-analyze verify finds clean on the installed system", () => {
    const verify = step("verify");
    expect(verify.rc, shown(verify)).toBe(0);
    expect(verify.out.trim()).toBe("");
    expect(step("security").out).toMatch(/Overall exposure level for schedctld\.service: \d+\.\d/);
  });

  it("starts under systemd and reaches active through sd_notify (Type=notify)", () => {
    const active = step("active");
    expect(step("start").rc, shown(step("start"))).toBe(0);
    expect({ state: active.state, sub: active.sub, type: active.type, notify: active.notify }).toEqual({
      state: "active",
      sub: "running",
      type: "notify",
      notify: "main",
    });
    expect(active.watchdog).toBe("20s");
  });

  it("answers schedctl status over the system bus, for root and for an unprivileged user", () => {
    for (const name of ["status-root", "status-user"]) {
      const s = step(name);
      expect(s.rc, shown(s)).toBe(0);
      expect(() => JSON.parse(s.out), shown(s)).not.toThrow();
    }
  });

  it("refuses the unprivileged user's switch and leaves the kernel alone", () => {
    const denied = step("switch-user");
    expect(denied.rc, shown(denied)).not.toBe(0);
    // Refused by the bus policy (the first wall) or by the daemon's own check.
    expect(denied.out).toMatch(/Rejected send message|AccessDenied|not allowed|denied/i);
    expect(step("after-switch-user").state).toBe("disabled");
  });

  it("switches for root, and the kernel shows the policy attached", () => {
    expect(step("switch-root").rc, shown(step("switch-root"))).toBe(0);
    const after = step("after-switch-root");
    expect({ state: after.state, ops: after.ops }).toEqual({ state: "enabled", ops: "schedctl_fifo" });
  });

  it("logs structured audit records to the journal", () => {
    const journal = step("journal") as Step & { fields: string[]; messageIds: string[] };
    expect(journal.fields).toEqual(expect.arrayContaining(["SCHEDCTL_POLICY"]));
    expect(journal.messageIds.length).toBeGreaterThan(0);
  });

  it("restores the kernel default when systemd stops it", () => {
    expect(step("stop").rc, shown(step("stop"))).toBe(0);
    expect(step("after-stop").state).toBe("disabled");
  });

  it("is killed and restarted by the watchdog when it hangs", () => {
    const watchdog = step("watchdog");
    expect(watchdog.state, shown(watchdog)).toBe("active");
    expect(watchdog.after, shown(watchdog)).not.toBe(watchdog.before);
    expect(Number(watchdog.restartsAfter)).toBeGreaterThan(Number(watchdog.restartsBefore));
    expect(watchdog.out).toMatch(/[Ww]atchdog timeout/);
  });

  it("purges without leaving files, units, pinned links or the group behind", () => {
    expect(step("purge").rc, shown(step("purge"))).toBe(0);
    const purged = step("purged");
    expect({ left: purged.left, group: purged.group, found: purged.found, units: purged.units }).toEqual({
      left: "",
      group: "",
      found: "",
      units: "",
    });
    expect(purged.dpkg).toMatch(/not-installed|no packages found/);
  });
});
