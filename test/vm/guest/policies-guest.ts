// Runs inside the sandbox VM (placed at /opt/schedctl/test/vm/guest/): drives the real Kernel
// implementation (src/kernel/loader.ts) against the sched_ext kernel for each policy object the
// host compiled, and reports one RESULT line per policy. Kept small: Node runs ~20x slower here.
//
//   node policies-guest.ts ITEMS.json      ITEMS: { seconds, items: GuestPolicy[] }
import { spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import { createHost } from "../../../src/host/host.ts";
import { AttachError, createKernel } from "../../../src/kernel/loader.ts";
import type { KernelEvent, SchedExtStatus } from "../../../src/kernel/types.ts";

export interface GuestPolicy {
  name: string;
  hash: string;
  objectPath: string;
  opsName: string;
  /** run: attach and run under load; stall: attach and wait for the watchdog; reject: the verifier must refuse it. */
  expect: "run" | "stall" | "reject";
}

const MARKER = "SCHEDCTL-RESULT ";
const report = (value: object) => process.stdout.write(`${MARKER}${JSON.stringify(value)}\n`);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function runLoad(seconds: number): Promise<{ cyclictest: string; stressOk: boolean }> {
  const wait = (file: string, args: string[]) =>
    new Promise<{ code: number | null; out: string }>((resolve) => {
      const child = spawn(file, args, { stdio: ["ignore", "pipe", "pipe"] });
      let out = "";
      child.stdout.on("data", (c: Buffer) => {
        out += c.toString();
      });
      child.stderr.on("data", (c: Buffer) => {
        out += c.toString();
      });
      child.on("close", (code) => resolve({ code, out }));
      child.on("error", (e) => resolve({ code: -1, out: String(e) }));
    });
  return Promise.all([
    wait("stress-ng", ["--cpu", "2", "--timeout", `${seconds}s`, "--quiet"]),
    // SCHED_OTHER threads (no -p): the BPF policy schedules them.
    wait("cyclictest", ["-q", "-t", "2", "-i", "1000", "-D", String(seconds)]),
  ]).then(([stress, cyclic]) => ({ cyclictest: cyclic.out.trim(), stressOk: stress.code === 0 }));
}

async function main(): Promise<void> {
  const { seconds, items } = JSON.parse(readFileSync(process.argv[2]!, "utf8")) as {
    seconds: number;
    items: GuestPolicy[];
  };
  const kernel = createKernel({ host: createHost("/") });
  for (const item of items) {
    const verify = await kernel.verifyLoad(item.objectPath);
    const result: Record<string, unknown> = {
      load: "policy",
      name: item.name,
      verifyOk: verify.ok,
      verifyLog: verify.log.slice(-1500),
    };
    if (item.expect === "reject") {
      try {
        await kernel.attach({
          kind: "object",
          hash: item.hash,
          objectPath: item.objectPath,
          opsName: item.opsName,
        });
        result.attachError = "";
        await kernel.detach();
      } catch (error) {
        result.attachError = (error as Error).message.slice(0, 1500);
      }
      result.after = kernel.status();
      result.pins = kernel.pinnedLinks();
      report(result);
      continue;
    }
    if (!verify.ok) {
      report(result);
      continue;
    }
    try {
      const attachment = await kernel.attach(
        { kind: "object", hash: item.hash, objectPath: item.objectPath, opsName: item.opsName },
        { timeoutMs: 20_000 },
      );
      result.attached = kernel.status();
      result.pinsWhileAttached = kernel.pinnedLinks().length;
      result.handle = attachment.handle;
    } catch (error) {
      result.attachError = (error as Error).message.slice(0, 1500);
      result.reason = error instanceof AttachError ? error.reason : undefined;
    }
    const samples: SchedExtStatus[] = [];
    const events: KernelEvent[] = [];
    if (item.expect === "run") {
      const sampler = setInterval(() => samples.push(kernel.status()), 500);
      const load = await runLoad(seconds);
      clearInterval(sampler);
      result.cyclictest = load.cyclictest.split("\n").slice(-2);
      result.stressOk = load.stressOk;
    } else {
      // the watchdog: wait for the kernel to disable it (timeout_ms + margin)
      for (let i = 0; i < 150 && kernel.status().state !== "disabled"; i++) await sleep(100);
      samples.push(kernel.status());
    }
    result.samples = samples.map((s) => `${s.state}:${s.ops ?? ""}`);
    events.push(...kernel.readEvents());
    try {
      await kernel.detach();
      result.detached = kernel.status();
    } catch (error) {
      result.detachError = (error as Error).message;
    }
    events.push(...kernel.readEvents());
    result.events = events.map((e) => ({ kind: e.kind, ops: e.ops, reason: e.reason }));
    result.pinsAfter = kernel.pinnedLinks();
    report(result);
  }
}

await main();
