import { basename } from "node:path";
import type { Clock } from "../host/clock.ts";
import type { Kernel } from "../kernel/types.ts";
import type { Logger } from "../log/logger.ts";
import type { PolicyRef } from "../policies/types.ts";
import type { Sandbox, VmFile } from "../sandbox/types.ts";
import { buildVerifyScript, type GuestItem, type GuestOutcome, parseVerifyConsole } from "./guest.ts";
import { checkStatic } from "./static.ts";
import {
  type BuiltCandidate,
  type DefaultThresholds,
  excerpt,
  type Verdict,
  type VerdictStore,
  type VerifyRequest,
  type VerifyStage,
} from "./types.ts";

// The Execution Verifier: static rules, the kernel's verifier, a sandbox run; stop at the first
// failure. Verdicts are cached by content hash and never recomputed. The kernel-verifier and
// dynamic stages of every candidate in one call share a single VM boot.

export interface VerifierOptions {
  maxTimeoutMs: number;
  sandboxSeconds: number;
  bpftool?: string;
  /**
   * "sandbox" (default): the dynamic stage runs in the sandbox VM. "probation-only": for hosts
   * with no sandbox, a candidate the host's own kernel verifier accepted passes without a
   * sandbox run, and its verdict says so; deploy then attaches it only under the probation guard.
   */
  dynamic?: "sandbox" | "probation-only";
  /** Where the dynamic stage fails a candidate against the kernel default's run. */
  againstDefault: DefaultThresholds;
}

/** The verdict log of a candidate passed without a sandbox run (verify.dynamic = "probation-only"). */
export const PROBATION_ONLY_LOG =
  'dynamic stage not run: verify.dynamic = "probation-only" (no sandbox VM on this host); the kernel verifier accepted it, and it is attached only under the probation guard';

export interface VerifierDeps {
  verdicts: VerdictStore;
  /** The host's kernel; its verify-only load is used when it has sched_ext. */
  hostKernel: Kernel | undefined;
  /** The sandbox VM; without one, the dynamic stage fails (a candidate is never passed untested). */
  sandbox: Sandbox | undefined;
  clock: Clock;
  logger: Logger;
  options: VerifierOptions;
}

/** A guest crash (an emulator fault under TCG) is retried this many times for the candidates it left unchecked. */
const CRASH_RERUNS = 2;

export class Verifier {
  readonly #deps: VerifierDeps;

  constructor(deps: VerifierDeps) {
    this.#deps = deps;
  }

  /**
   * The verdict for each request, in order: cached ones as they are, the rest computed (one VM
   * boot). An abort stops the sandbox VM and throws; verdicts reached before it are kept, and an
   * interrupted run is no verdict at all (it was not the candidate's fault).
   */
  async verify(requests: VerifyRequest[], signal?: AbortSignal): Promise<Verdict[]> {
    const { verdicts, logger, clock } = this.#deps;
    const fresh = new Map<string, Verdict>();
    const toSandbox: {
      built: BuiltCandidate & { kind: "object" | "process" };
      opsName: string;
      kernelDone: boolean;
    }[] = [];
    // What each candidate's verdict says besides the outcome: its stages' times, its vmlinux.h.
    const extras = new Map<string, Pick<Verdict, "timings" | "compiledAgainst">>();
    const keep = (v: Verdict) => {
      const verdict = { ...v, ...extras.get(v.hash) };
      verdicts.putVerdict(verdict);
      logger.info(
        { hash: v.hash, policy: v.policy.name, stage: v.stage, passed: v.passed, timings: verdict.timings },
        "verdict",
      );
      fresh.set(v.hash, verdict);
    };
    const since = (start: number) => Math.round(clock.monotonic() - start);
    for (const { ref, build } of uniqueByHash(requests)) {
      signal?.throwIfAborted();
      if (verdicts.getVerdict(ref.hash)) continue;
      let start = clock.monotonic();
      const built = await build();
      const timings: NonNullable<Verdict["timings"]> = { compileMs: since(start), staticMs: 0 };
      extras.set(ref.hash, {
        timings,
        ...(built.kind === "object" && built.compiledAgainst
          ? { compiledAgainst: built.compiledAgainst }
          : {}),
      });
      start = clock.monotonic();
      const stat = await checkStatic(built, {
        maxTimeoutMs: this.#deps.options.maxTimeoutMs,
        ...(this.#deps.options.bpftool ? { bpftool: this.#deps.options.bpftool } : {}),
      });
      timings.staticMs = since(start);
      if (!stat.ok || built.kind === "uncompilable") {
        keep(this.#verdict(ref, "static", false, stat.log));
        continue;
      }
      let kernelDone = false;
      const host = this.#deps.hostKernel;
      if (built.kind === "object" && host?.status().supported) {
        start = clock.monotonic();
        const load = await host.verifyLoad(built.objectPath);
        timings.kernelMs = since(start);
        if (!load.ok) {
          keep(this.#verdict(ref, "kernel", false, `kernel verifier refused it:\n${load.log}`, stat.opsName));
          continue;
        }
        kernelDone = true;
      }
      toSandbox.push({ built, opsName: stat.opsName, kernelDone });
    }
    const { verdicts: sandboxed, kernelMs, vmMs } = await this.#sandboxStages(toSandbox, signal);
    for (const { built } of toSandbox) {
      const timings = extras.get(built.ref.hash)?.timings;
      if (!timings) continue;
      timings.sandboxMs = vmMs;
      const inGuest = kernelMs.get(built.ref.hash);
      if (inGuest !== undefined) timings.kernelMs = inGuest;
    }
    for (const v of sandboxed) keep(v);
    return requests.map(({ ref }) => verdicts.getVerdict(ref.hash) ?? fresh.get(ref.hash)!);
  }

  async #sandboxStages(
    items: { built: BuiltCandidate & { kind: "object" | "process" }; opsName: string; kernelDone: boolean }[],
    signal: AbortSignal | undefined,
  ): Promise<{ verdicts: Verdict[]; kernelMs: Map<string, number>; vmMs: number }> {
    const kernelMs = new Map<string, number>();
    // The guests' own run time: a wait for another run's VM to finish is not verification's cost.
    let vmMs = 0;
    if (items.length === 0) return { verdicts: [], kernelMs, vmMs };
    if (this.#deps.options.dynamic === "probation-only") {
      const verdicts = items.map(({ built, opsName, kernelDone }) =>
        kernelDone
          ? this.#verdict(built.ref, "kernel", true, PROBATION_ONLY_LOG, opsName)
          : this.#verdict(
              built.ref,
              "kernel",
              false,
              "the host's kernel cannot verify it (no sched_ext, or an external scheduler) and no sandbox runs here",
              opsName,
            ),
      );
      return { verdicts, kernelMs, vmMs };
    }
    const sandbox = this.#deps.sandbox;
    if (!sandbox) {
      const verdicts = items.map(({ built, opsName }) =>
        this.#verdict(
          built.ref,
          "dynamic",
          false,
          "no sandbox VM is available: the dynamic stage cannot run",
          opsName,
        ),
      );
      return { verdicts, kernelMs, vmMs };
    }
    const verdicts: Verdict[] = [];
    let pending = items;
    for (let attempt = 0; pending.length > 0; attempt++) {
      const guestItems = pending.map(({ built, opsName, kernelDone }) =>
        toGuestItem(built, opsName, kernelDone),
      );
      const files: VmFile[] = pending.map(({ built }, i) => ({
        guestPath: guestItems[i]!.guestPath,
        hostPath: built.kind === "object" ? built.objectPath : built.argv[0]!,
      }));
      const seconds = this.#deps.options.sandboxSeconds;
      const result = await sandbox.run({
        script: buildVerifyScript(guestItems, seconds),
        // plain sh and bpftool: the guest needs no Node (a smaller initramfs, a quicker boot)
        node: false,
        files,
        // Per candidate: a verify load, the run, teardown; plus the boot and the default's two runs.
        timeoutMs: 90_000 + (pending.length + 2) * (seconds * 1000 + 45_000),
        ...(signal ? { signal } : {}),
      });
      vmMs += result.durationMs;
      const outcomes = parseVerifyConsole(result.console, guestItems, this.#deps.options.againstDefault);
      const unchecked: typeof pending = [];
      for (const [i, item] of pending.entries()) {
        const outcome = outcomes.get(guestItems[i]!.hash);
        if (outcome?.kernel?.ms !== undefined) kernelMs.set(item.built.ref.hash, outcome.kernel.ms);
        const verdict = this.#fromOutcome(item.built.ref, item.opsName, outcome);
        if (verdict) verdicts.push(verdict);
        else unchecked.push(item);
      }
      if (unchecked.length > 0 && result.crashed && attempt < CRASH_RERUNS) {
        this.#deps.logger.warn(
          { attempt, unchecked: unchecked.length },
          "sandbox guest crashed; rerunning the rest",
        );
        pending = unchecked;
        continue;
      }
      const why = result.timedOut
        ? "timed out"
        : result.crashed
          ? "crashed"
          : `ended (exit ${result.exitCode})`;
      for (const item of unchecked) {
        verdicts.push(
          this.#verdict(
            item.built.ref,
            item.kernelDone ? "dynamic" : "kernel",
            false,
            `the sandbox VM ${why} before this candidate was checked:\n${excerpt(result.console, 3000)}`,
            item.opsName,
          ),
        );
      }
      break;
    }
    return { verdicts, kernelMs, vmMs };
  }

  #fromOutcome(ref: PolicyRef, opsName: string, outcome: GuestOutcome | undefined): Verdict | undefined {
    if (outcome?.kernel && !outcome.kernel.ok) {
      return this.#verdict(
        ref,
        "kernel",
        false,
        `kernel verifier refused it:\n${outcome.kernel.log}`,
        opsName,
      );
    }
    if (!outcome?.dynamic) return undefined;
    const { ok, log, figures, baseline, againstDefault, admits } = outcome.dynamic;
    return {
      ...this.#verdict(ref, "dynamic", ok, log, opsName),
      figures,
      ...(baseline ? { baseline } : {}),
      ...(againstDefault ? { againstDefault } : {}),
      ...(admits ? { admits } : {}),
    };
  }

  #verdict(ref: PolicyRef, stage: VerifyStage, passed: boolean, log: string, opsName?: string): Verdict {
    return {
      hash: ref.hash,
      policy: ref,
      stage,
      passed,
      log: excerpt(log),
      ...(opsName ? { opsName } : {}),
      at: this.#deps.clock.now(),
    };
  }
}

function toGuestItem(
  built: BuiltCandidate & { kind: "object" | "process" },
  opsName: string,
  kernelDone: boolean,
): GuestItem {
  const hash = built.ref.hash;
  const workloads = built.workloads ?? ["mixed"];
  if (built.kind === "object") {
    return {
      hash,
      kind: "object",
      guestPath: `/verify/${hash}.bpf.o`,
      opsName,
      kernelStage: !kernelDone,
      workloads,
    };
  }
  return {
    hash,
    kind: "process",
    guestPath: `/verify/${hash}-${basename(built.argv[0]!)}`,
    args: built.argv.slice(1),
    opsName,
    // An external scheduler loads its own programs: the kernel verifier runs when it starts.
    kernelStage: false,
    workloads,
  };
}

function uniqueByHash(requests: VerifyRequest[]): VerifyRequest[] {
  return [...new Map(requests.map((r) => [r.ref.hash, r])).values()];
}
