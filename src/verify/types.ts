import { z } from "zod";
import { PolicyRef, PolicyWorkload } from "../policies/types.ts";

// The Execution Verifier's record. A candidate passes the stages in order and stops at the
// first failure; the verdict is keyed by the candidate's content hash and never recomputed.

export const VerifyStage = z.enum(["static", "kernel", "dynamic"]);
export type VerifyStage = z.infer<typeof VerifyStage>;

export const SandboxFigures = z.object({
  seconds: z.number(),
  /** Load workers that ran, and the fewest / mean iterations any of them made. */
  workers: z.number().int(),
  /** Each worker's iterations (CPU hogs, then the fork loop). */
  progress: z.array(z.number()).default([]),
  minProgress: z.number(),
  meanProgress: z.number(),
  /** Jain's fairness index of the workers' progress: 1 when equal, 1/n when one got it all. */
  jainIndex: z.number().default(0),
  /** Total worker work units per second (throughput under the policy). */
  opsPerSec: z.number(),
  /** Wake-up latency of SCHED_OTHER request/response threads (wakelat), microseconds. */
  latencyP50Us: z.number(),
  latencyP99Us: z.number(),
  requestsPerSec: z.number(),
  /** Wake-up latency of cyclictest's SCHED_OTHER threads (a third-party benchmark), microseconds. */
  cyclictestP50Us: z.number().default(0),
  cyclictestP99Us: z.number().default(0),
  cyclictestMaxUs: z.number().default(0),
  /** The kernel reported the scheduler enabled, with this ops name, at the end of the run. */
  stillEnabled: z.boolean(),
  ejectReason: z.string().optional(),
});
export type SandboxFigures = z.infer<typeof SandboxFigures>;

/** A candidate's run against the kernel default's run of the same loads, in the same boot. */
export const AgainstDefault = z.object({
  /** The worst worker's share of the work, over its share under the default. */
  minShareRatio: z.number(),
  latencyP99Ratio: z.number(),
  cyclictestP99Ratio: z.number(),
  throughputRatio: z.number(),
  /** The fork/exec loop's progress over the default's (reported, not judged). */
  forkRatio: z.number(),
});
export type AgainstDefault = z.infer<typeof AgainstDefault>;

/** Where a candidate fails against the default (the configuration's verify.against_default). */
export interface DefaultThresholds {
  minWorkerShare: number;
  maxP99Ratio: number;
  minThroughputRatio: number;
}

export const Verdict = z.object({
  hash: z.string().regex(/^[0-9a-f]{64}$/),
  policy: PolicyRef,
  /** The last stage attempted: the failing one, or "dynamic" when all passed. */
  stage: VerifyStage,
  passed: z.boolean(),
  /** Why it failed (or what was checked), with the relevant compiler/verifier/kernel log lines. */
  log: z.string().max(8000),
  opsName: z.string().optional(),
  figures: SandboxFigures.optional(),
  /** The same loads under the kernel default in the same boot, and the candidate against them. */
  baseline: SandboxFigures.optional(),
  againstDefault: AgainstDefault.optional(),
  /** The claimed workloads the run against the default bore out (absent: not judged so). */
  admits: z.array(PolicyWorkload).optional(),
  /** The kernel whose vmlinux.h the object was compiled against, when not the host's own. */
  compiledAgainst: z.string().optional(),
  /** Each stage's time in ms; sandboxMs is the VM runs' own time, shared by the candidates they checked. */
  timings: z
    .object({
      compileMs: z.number(),
      staticMs: z.number(),
      kernelMs: z.number().optional(),
      sandboxMs: z.number().optional(),
    })
    .optional(),
  /** Wall-clock ms when the verdict was reached. */
  at: z.number(),
});
export type Verdict = z.infer<typeof Verdict>;

/** What verify needs to remember: verdicts by content hash (store/ implements it). */
export interface VerdictStore {
  getVerdict(hash: string): Verdict | undefined;
  putVerdict(verdict: Verdict): void;
}

/** A candidate as the verifier receives it: compiled already, or a reason it did not compile. */
export type BuiltCandidate =
  | {
      kind: "object";
      ref: PolicyRef;
      /** The C source (for the source rules); the object is what is loaded. */
      source: string;
      objectPath: string;
      /** The kernel whose vmlinux.h it was compiled against, when not the host's own. */
      compiledAgainst?: string;
      /** The manifest's claims (default: mixed, the strictest). */
      workloads?: PolicyWorkload[];
    }
  | { kind: "process"; ref: PolicyRef; argv: string[]; opsName: string; workloads?: PolicyWorkload[] }
  | { kind: "uncompilable"; ref: PolicyRef; log: string };

/** A candidate to verify: its reference (the cache key) and how to build it if no verdict is cached. */
export interface VerifyRequest {
  ref: PolicyRef;
  /** Compiles (or locates) it; a compile failure is a value, not an exception. */
  build: () => Promise<BuiltCandidate>;
}

/** Keeps the verdict log within its bound, keeping the head and the tail (where errors are). */
export function excerpt(text: string, max = 6000): string {
  if (text.length <= max) return text;
  const head = Math.floor(max / 3);
  return `${text.slice(0, head)}\n[... ${text.length - max} characters left out ...]\n${text.slice(-(max - head))}`;
}
