import { execFileSync } from "node:child_process";
import { describe, expect, it } from "vitest";
import { loadConfig } from "../../../src/config/load.ts";
import {
  DEFAULT_DAEMON_SETTINGS,
  daemonArgs,
  daemonConfigToml,
  GUEST_CACHE,
} from "../../../src/demo/daemon.ts";
import { buildDay, buildSchedule, daySeconds, dayUnits } from "../../../src/demo/day.ts";
import { BUILTIN_DAY, loadDayFile } from "../../../src/demo/day-file.ts";
import { guestScript } from "../../../src/demo/guest.ts";
import { dayCgroups } from "../../../src/demo/policies.ts";
import { tempDir, writeTree } from "../../helpers/tmp.ts";

const builtin = loadDayFile(BUILTIN_DAY);

describe("the built-in day", () => {
  it("starts idle, meets each kind of work once, then brings three back in a seeded order", () => {
    const day = buildDay(builtin, { seed: 7, phaseSeconds: 20 });
    expect(day.slice(0, 5).map((p) => p.name)).toEqual(["idle", "latency", "build", "batch", "mixed"]);
    expect(new Set(day.slice(5).map((p) => p.name))).toEqual(new Set(["latency", "build", "batch"]));
    expect(day.slice(5).every((p) => p.recurring)).toBe(true);
    expect(day.slice(0, 5).some((p) => p.recurring)).toBe(false);
    expect(buildDay(builtin, { seed: 7, phaseSeconds: 20 })).toEqual(day);
    const orders = new Set(
      [1, 2, 3, 4, 5, 6, 7, 8].map((seed) =>
        buildDay(builtin, { seed, phaseSeconds: 20 })
          .slice(5)
          .map((p) => p.name)
          .join(),
      ),
    );
    expect(orders.size).toBeGreaterThan(1);
    // The idle phase keeps its own 12 s; the others take the run's length.
    expect(daySeconds(day)).toBe(12 + 7 * 20);
  });

  it("pauses between two phases of work, never after an idle one", () => {
    const day = buildDay(builtin, { seed: 1, phaseSeconds: 15, pauseSeconds: 4, short: true });
    expect(day.map((p) => p.pauseSeconds)).toEqual([0, 0, 4, 4, 4]);
    expect(daySeconds(day)).toBe(12 + 4 * 15 + 3 * 4);
  });

  it("knows every cgroup it makes, parents first, for the probe of their ids", () => {
    expect(dayCgroups(dayUnits(builtin))).toEqual([
      "/system.slice",
      "/system.slice/api.service",
      "/user.slice",
      "/user.slice/hogs.scope",
      "/user.slice/build.scope",
      "/batch.slice",
      "/batch.slice/jobs.service",
    ]);
  });

  it("has each phase once on the short day", () => {
    const day = buildDay(builtin, { seed: 1, phaseSeconds: 15, short: true });
    expect(day.map((p) => p.name)).toEqual(["idle", "latency", "build", "batch", "mixed"]);
  });

  it("interleaves the baseline and the learned day after day 1, learned days sharing day 1's store", () => {
    const runs = buildSchedule(3);
    expect(runs.map((r) => r.mode)).toEqual([
      "baseline",
      "day1",
      "learned",
      "baseline",
      "learned",
      "baseline",
      "learned",
    ]);
    expect(runs.filter((r) => r.mode !== "baseline").every((r) => r.store === "day1")).toBe(true);
    expect(runs.filter((r) => r.mode === "baseline").every((r) => r.store === "fresh")).toBe(true);
    expect(() => buildSchedule(0)).toThrow(/repetitions must be a whole number >= 1, got 0/);
  });
});

describe("the guest script", () => {
  const day = buildDay(builtin, { seed: 3, phaseSeconds: 20 });
  const units = dayUnits(builtin);
  const script = guestScript({
    day,
    units,
    runs: buildSchedule(1),
    dumpScript: "/opt/dump.js",
    daemonStartSeconds: 30,
    eject: { run: 1, phase: 4, afterSeconds: 8 },
  });

  it("is valid POSIX shell", () => {
    const dir = tempDir();
    writeTree(dir, { "day.sh": script });
    expect(() => execFileSync("sh", ["-n", `${dir}/day.sh`])).not.toThrow();
  });

  it("puts each load in its unit's cgroup and marks every phase of every run", () => {
    expect(script).toContain('mkdir -p "$CG/$unit"');
    for (const unit of ["system.slice/api.service", "user.slice/build.scope", "batch.slice/jobs.service"])
      expect(script).toContain(unit);
    expect(script.match(/event\\":\\"phase-start/g)).toHaveLength(day.length * 3);
    expect(script).toMatch(/rounds \$END 0 1 system\.slice\/api\.service \/tmp\/round\.out wakelat/);
    expect(script).toMatch(/rounds \$END 0 2 user\.slice\/build\.scope \/tmp\/round\.out buildsim/);
    expect(script).toMatch(/rounds \$END 0 3 batch\.slice\/jobs\.service \/tmp\/round\.out batchsim/);
    // The hogs last the phase ({seconds}); the mixed phase's build runs again until it ends.
    expect(script).toContain(
      "inunit user.slice/hogs.scope stress-ng --cpu 2 --cpu-load 50 --timeout 20s --quiet",
    );
    expect(script).toMatch(/^again \$END user\.slice\/build\.scope buildsim .* & BG0=\$!$/m);
  });

  it("runs the daemon observing for the baseline and in auto mode otherwise, and injects the ejection where asked", () => {
    expect(script).toMatch(
      /node \S+main\.js --foreground --observe-only --bus none .* --state-dir \/var\/lib\/schedctl-day\/run0/,
    );
    expect(script).toMatch(
      /node \S+main\.js --foreground --bus none .* --state-dir \/var\/lib\/schedctl-day\/day1/,
    );
    expect(script.match(/echo S >\/proc\/sysrq-trigger/g)).toHaveLength(1);
    expect(script).toMatch(/event\\":\\"eject\\",\\"run\\":1,\\"phase\\":4/);
  });

  it("gives the daemon a configuration it accepts", () => {
    const dir = tempDir();
    writeTree(dir, { "schedctl.toml": daemonConfigToml(DEFAULT_DAEMON_SETTINGS) });
    const { config } = loadConfig(`${dir}/schedctl.toml`);
    expect(config.llm.provider).toBe("none");
    expect(config.deploy.probation_seconds).toBe(DEFAULT_DAEMON_SETTINGS.probationSeconds);
    // No clang and no nested qemu in the guest: prebuilt objects, verified by the guest's kernel.
    expect(config.verify).toMatchObject({ cache_dir: GUEST_CACHE, dynamic: "probation-only" });
    expect(config.decide.seed).toBe(DEFAULT_DAEMON_SETTINGS.plannerSeed);
    expect(daemonArgs("learned", "/s")).not.toContain("--observe-only");
  });

  it("runs the scripted model for the LLM runs, and points the daemon at it", () => {
    const withModel = guestScript({
      day,
      units,
      runs: buildSchedule(1),
      dumpScript: "/opt/dump.js",
      daemonStartSeconds: 30,
      model: { script: "/opt/model.js", port: 8808 },
    });
    expect(withModel).toMatch(/^node \/opt\/model\.js 8808 .*& MODEL=\$!$/m);
    expect(withModel).toContain("kill $MODEL");
    expect(script).not.toContain("MODEL");
    const dir = tempDir();
    writeTree(dir, { "schedctl.toml": daemonConfigToml({ ...DEFAULT_DAEMON_SETTINGS, llmPort: 8808 }) });
    expect(loadConfig(`${dir}/schedctl.toml`).config.llm).toMatchObject({
      provider: "openai",
      endpoint: "http://127.0.0.1:8808/v1",
    });
  });
});
