import { describe, expect, it } from "vitest";
import { BOOTED_MARKER } from "../../../src/sandbox/initramfs.ts";
import { qemuCommand } from "../../../src/sandbox/qemu.ts";
import { EXIT_MARKER, RESULT_MARKER, type Sandbox, type VmResult } from "../../../src/sandbox/types.ts";
import { ConsoleParser, runRetryingCrashes } from "../../../src/sandbox/vm.ts";

describe("ConsoleParser", () => {
  it("reads results, the boot time and the exit status, even with kernel text around a marker", () => {
    const parser = new ConsoleParser();
    parser.push("Booting from ROM...", 100);
    parser.push(`${BOOTED_MARKER} 2.31`, 2500);
    parser.push(`${RESULT_MARKER}{"load":"wakelat","p99_us":812}`, 3000);
    parser.push(`[    5.1] sched_ext: msg${RESULT_MARKER}[1,2]`, 3100);
    parser.push(`${RESULT_MARKER}{not json`, 3200);
    parser.push(`${EXIT_MARKER}3`, 4000);
    expect(parser.bootMs).toBe(2500);
    expect(parser.results).toEqual([{ load: "wakelat", p99_us: 812 }, [1, 2], { unparsed: "{not json" }]);
    expect(parser.exitCode).toBe(3);
    expect(parser.crashLine).toBeUndefined();
  });

  it("does not take a userspace trap printed by dmesg for a kernel crash", () => {
    const parser = new ConsoleParser();
    parser.push(
      "[    9.1] traps: node[212] general protection fault ip:7f01 sp:7ffd error:0 in libc.so.6",
      1,
    );
    expect(parser.crashLine).toBeUndefined();
  });

  it("notes the first crash line and ignores an exit marker after it", () => {
    const parser = new ConsoleParser();
    parser.push("[   12.5] Oops: int3: 0000 [#1] PREEMPT SMP NOPTI", 1);
    parser.push("[   12.6] Kernel panic - not syncing: Fatal exception", 2);
    parser.push(`${EXIT_MARKER}0`, 3);
    expect(parser.crashLine).toBe("[   12.5] Oops: int3: 0000 [#1] PREEMPT SMP NOPTI");
    expect(parser.exitCode).toBeUndefined();
  });
});

describe("qemuCommand", () => {
  it("builds a TCG machine by default, with drives and extra arguments for other users", () => {
    const { args } = qemuCommand({
      kernel: "/k/vmlinuz",
      initrd: "/k/initrd",
      append: ["root=/dev/vda", "systemd.unit=multi-user.target"],
      drives: [{ file: "/d/root.img", snapshot: true }],
      extraArgs: ["-netdev", "user,id=n0"],
    });
    const joined = args.join(" ");
    expect(joined).toContain("-accel tcg,thread=multi -smp 2 -m 2048M");
    expect(qemuCommand({ kernel: "/k", tcgThread: "single" }).args.slice(0, 2)).toEqual([
      "-accel",
      "tcg,thread=single",
    ]);
    expect(joined).not.toContain("kvm");
    expect(args[args.indexOf("-append") + 1]).toBe(
      "console=ttyS0 loglevel=1 oops=panic panic=-1 root=/dev/vda systemd.unit=multi-user.target",
    );
    expect(joined).toContain("-drive file=/d/root.img,format=raw,if=virtio,snapshot=on");
    expect(args.slice(-2)).toEqual(["-netdev", "user,id=n0"]);
    expect(qemuCommand({ kernel: "/k", accel: "kvm" }).args.slice(0, 4)).toEqual([
      "-accel",
      "kvm",
      "-cpu",
      "host",
    ]);
  });
});

describe("runRetryingCrashes", () => {
  const result = (crashed: boolean): VmResult => ({
    exitCode: crashed ? undefined : 0,
    results: [],
    console: "",
    timedOut: false,
    crashed,
    durationMs: 1,
  });

  it("reruns crashed boots and counts the reruns", async () => {
    const outcomes = [true, true, false];
    const sandbox: Sandbox = { run: async () => result(outcomes.shift()!) };
    const { result: final, reruns } = await runRetryingCrashes(sandbox, { script: "true", timeoutMs: 1 });
    expect(final.crashed).toBe(false);
    expect(reruns).toBe(2);
  });

  it("gives up after the last attempt and returns the crash", async () => {
    let boots = 0;
    const sandbox: Sandbox = {
      run: async () => {
        boots++;
        return result(true);
      },
    };
    const { result: final, reruns } = await runRetryingCrashes(sandbox, { script: "true", timeoutMs: 1 }, 2);
    expect(final.crashed).toBe(true);
    expect([boots, reruns]).toEqual([2, 1]);
  });
});
