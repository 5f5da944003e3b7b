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
    const { verdicts, logger } = this.#deps;
    const fresh = new Map<string, Verdict>();
    const toSandbox: {
      built: BuiltCandidate & { kind: "object" | "process" };
      opsName: string;
      kernelDone: boolean;
    }[] = [];
    const keep = (v: Verdict) => {
      verdicts.putVerdict(v);
      logger.info({ hash: v.hash, policy: v.policy.name, stage: v.stage, passed: v.passed }, "verdict");
      fresh.set(v.hash, v);
    };
    for (const { ref, build } of uniqueByHash(requests)) {
      signal?.throwIfAborted();
      if (verdicts.getVerdict(ref.hash)) continue;
      const built = await build();
      const stat = await checkStatic(built, {
        maxTimeoutMs: this.#deps.options.maxTimeoutMs,
        ...(this.#deps.options.bpftool ? { bpftool: this.#deps.options.bpftool } : {}),
      });
      if (!stat.ok || built.kind === "uncompilable") {
        keep(this.#verdict(ref, "static", false, stat.log));
        continue;
      }
      let kernelDone = false;
      const host = this.#deps.hostKernel;
      if (built.kind === "object" && host?.status().supported) {
        const load = await host.verifyLoad(built.objectPath);
        if (!load.ok) {
          keep(this.#verdict(ref, "kernel", false, `kernel verifier refused it:\n${load.log}`, stat.opsName));
          continue;
        }
        kernelDone = true;
      }
      toSandbox.push({ built, opsName: stat.opsName, kernelDone });
    }
    for (const v of await this.#sandboxStages(toSandbox, signal)) keep(v);
    return requests.map(({ ref }) => verdicts.getVerdict(ref.hash) ?? fresh.get(ref.hash)!);
  }

  async #sandboxStages(
    items: { built: BuiltCandidate & { kind: "object" | "process" }; opsName: string; kernelDone: boolean }[],
    signal: AbortSignal | undefined,
  ): Promise<Verdict[]> {
    if (items.length === 0) return [];
    if (this.#deps.options.dynamic === "probation-only") {
      return items.map(({ built, opsName, kernelDone }) =>
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
    }
    const sandbox = this.#deps.sandbox;
    if (!sandbox) {
      return items.map(({ built, opsName }) =>
        this.#verdict(
          built.ref,
          "dynamic",
          false,
          "no sandbox VM is available: the dynamic stage cannot run",
          opsName,
        ),
      );
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
        // Per candidate: a verify load, the run, teardown; plus the boot.
        timeoutMs: 90_000 + pending.length * (seconds * 1000 + 45_000),
        ...(signal ? { signal } : {}),
      });
      const outcomes = parseVerifyConsole(result.console, guestItems);
      const unchecked: typeof pending = [];
      for (const [i, item] of pending.entries()) {
        const outcome = outcomes.get(guestItems[i]!.hash);
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
    return verdicts;
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
    const { ok, log, figures } = outcome.dynamic;
    return { ...this.#verdict(ref, "dynamic", ok, log, opsName), figures };
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
  if (built.kind === "object") {
    return { hash, kind: "object", guestPath: `/verify/${hash}.bpf.o`, opsName, kernelStage: !kernelDone };
  }
  return {
    hash,
    kind: "process",
    guestPath: `/verify/${hash}-${basename(built.argv[0]!)}`,
    args: built.argv.slice(1),
    opsName,
    // An external scheduler loads its own programs: the kernel verifier runs when it starts.
    kernelStage: false,
  };
}

function uniqueByHash(requests: VerifyRequest[]): VerifyRequest[] {
  return [...new Map(requests.map((r) => [r.ref.hash, r])).values()];
}
