import { join } from "node:path";
import { expect, it } from "vitest";
import { RESULT_MARKER } from "../../src/sandbox/types.ts";
import { tempDir, writeTree } from "../helpers/tmp.ts";
import { consoleTail, describeVm, resultsOf, runInVm } from "../helpers/vm.ts";

describeVm("the sched_ext sandbox VM", () => {
  it("boots the sched_ext kernel and runs each load generator, reporting JSON", async () => {
    const result = await runInVm({
      node: false,
      timeoutMs: 120_000,
      script: `
        set -e
        echo "${RESULT_MARKER}{\\"load\\":\\"state\\",\\"state\\":\\"$(cat /sys/kernel/sched_ext/state)\\",\\"bpffs\\":$(grep -c ' /sys/fs/bpf bpf ' /proc/mounts),\\"cgroup2\\":$(grep -c ' /sys/fs/cgroup cgroup2 ' /proc/mounts)}"
        bpftool version | head -1
        wakelat --seconds=2 --workers=2 --work-us=200
        buildsim --units=12 --jobs=2 --work-us=5000
        batchsim --tasks=10 --short-ms=10 --long-ms=100
        cpuhog --workers=3 --seconds=2
        stress-ng --cpu 1 --timeout 1s --quiet
        cyclictest -q -D 1 -i 1000 >/dev/null
        hackbench -g 1 -l 10 >/dev/null
      `,
    });
    const tail = consoleTail(result);
    expect(result.crashed, tail).toBe(false);
    expect(result.exitCode, tail).toBe(0);
    expect(resultsOf(result, "state")).toEqual([{ load: "state", state: "disabled", bpffs: 1, cgroup2: 1 }]);
    expect(result.console).toMatch(/bpftool v7\.(\d\d|[5-9])/);

    const [wakelat] = resultsOf<{
      requests: number;
      rps: number;
      p50_us: number;
      p99_us: number;
      p999_us: number;
    }>(result, "wakelat");
    expect(wakelat?.requests).toBeGreaterThan(0);
    expect(wakelat?.rps).toBeGreaterThan(0);
    expect(wakelat!.p50_us).toBeLessThanOrEqual(wakelat!.p99_us);
    expect(wakelat!.p99_us).toBeLessThanOrEqual(wakelat!.p999_us);

    const [build] = resultsOf<{ units: number; failed: number; makespan_ms: number }>(result, "buildsim");
    expect(build).toMatchObject({ units: 12, failed: 0 });
    expect(build!.makespan_ms).toBeGreaterThan(0);

    const [batch] = resultsOf<{
      mean_completion_ms: number;
      long_completion_ms: number;
      makespan_ms: number;
    }>(result, "batchsim");
    expect(batch!.mean_completion_ms).toBeGreaterThan(0);
    expect(batch!.long_completion_ms).toBeLessThanOrEqual(batch!.makespan_ms);

    const [hog] = resultsOf<{ units: number[]; min: number }>(result, "cpuhog");
    expect(hog!.units).toHaveLength(3);
    expect(hog!.min, "every worker made progress").toBeGreaterThan(0);
  });

  it("carries the Node runtime, the project and the run's files into the guest", async () => {
    const dir = tempDir();
    writeTree(dir, { "extra/data.json": '{"load":"file","ok":true}' });
    const result = await runInVm({
      timeoutMs: 150_000,
      files: [{ hostPath: join(dir, "extra"), guestPath: "/srv/extra" }],
      script: `echo "${RESULT_MARKER}$(cat /srv/extra/data.json)"
        node -e 'import("/opt/schedctl/src/sandbox/types.ts").then((m) => console.log(m.RESULT_MARKER + JSON.stringify({ load: "node", version: process.version, zod: typeof require("zod").z })))'`,
    });
    expect(result.exitCode, consoleTail(result)).toBe(0);
    expect(resultsOf(result, "node")).toEqual([{ load: "node", version: process.version, zod: "object" }]);
    expect(resultsOf(result, "file")).toEqual([{ load: "file", ok: true }]);
  });

  it("kills qemu when the run times out", async () => {
    let pid: number | undefined;
    const result = await runInVm({
      node: false,
      timeoutMs: 12_000,
      script: "sleep 600",
      onSpawn: (p) => {
        pid = p;
      },
    });
    expect(result.timedOut).toBe(true);
    expect(result.crashed).toBe(false);
    expect(result.exitCode).toBeUndefined();
    expect(pid).toBeDefined();
    expect(() => process.kill(pid!, 0), "qemu is gone").toThrow(/ESRCH/);
  });

  it("stops qemu when the caller aborts the run", async () => {
    const controller = new AbortController();
    let pid: number | undefined;
    const run = runInVm({
      node: false,
      timeoutMs: 120_000,
      script: "echo waiting; sleep 600",
      signal: controller.signal,
      onSpawn: (p) => {
        pid = p;
      },
      onLine: (line) => {
        if (line === "waiting") controller.abort(new Error("caller gave up"));
      },
    });
    await expect(run).rejects.toThrow("caller gave up");
    expect(() => process.kill(pid!, 0), "qemu is gone").toThrow(/ESRCH/);
  });

  it("reports a guest kernel crash as crashed", async () => {
    const result = await runInVm(
      { node: false, timeoutMs: 60_000, script: "echo c >/proc/sysrq-trigger; sleep 30" },
      1,
    );
    expect(result.crashed, consoleTail(result)).toBe(true);
    expect(result.timedOut).toBe(false);
    expect(result.exitCode).toBeUndefined();
    expect(result.crashLine).toMatch(/Kernel panic|sysrq/i);
    expect(result.reruns).toBe(0); // one attempt allowed
  });
});
