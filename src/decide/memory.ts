import type { WorkloadClass } from "../observe/types.ts";
import type {
  Consultation,
  ConsultationStatus,
  DecideStore,
  Decision,
  LlmCallRecord,
  LlmUsage,
  Outcome,
} from "./types.ts";

// DecideStore kept in memory: for tests, benchmarks, and runs without a state database.

export class MemoryDecideStore implements DecideStore {
  readonly decisions: Decision[] = [];
  readonly outcomes: Outcome[] = [];
  readonly consultations: Consultation[] = [];
  readonly calls: LlmCallRecord[] = [];

  addDecision(decision: Decision): number {
    return this.decisions.push(structuredClone(decision));
  }

  addOutcome(outcome: Outcome): void {
    this.outcomes.push(structuredClone(outcome));
  }

  outcomesForSignature(signature: string): Outcome[] {
    return this.outcomes.filter((o) => o.signature === signature);
  }

  outcomesForClass(workloadClass: WorkloadClass): Outcome[] {
    return this.outcomes.filter((o) => o.class === workloadClass);
  }

  startConsultation(signature: string, at: number): number {
    const id = this.consultations.length + 1;
    this.consultations.push({ id, signature, startedAt: at, status: "running" });
    return id;
  }

  finishConsultation(
    id: number,
    result: { status: ConsultationStatus; goal?: string; decision?: Decision; rationale: string },
  ): void {
    const c = this.#consultation(id);
    Object.assign(c, structuredClone(result));
  }

  setConsultationOutcome(id: number, outcome: string): void {
    this.#consultation(id).outcome = outcome;
  }

  consultationFor(signature: string): Consultation | undefined {
    return this.consultations.findLast((c) => c.signature === signature);
  }

  addCall(call: LlmCallRecord): void {
    this.calls.push({ ...call });
  }

  usageSince(sinceMs: number): LlmUsage {
    const ok = this.calls.filter((c) => c.at >= sinceMs && c.result === "ok");
    return {
      calls: ok.length,
      tokens: ok.reduce((s, c) => s + c.inputTokens + c.outputTokens, 0),
      costUsd: ok.reduce((s, c) => s + c.costUsd, 0),
    };
  }

  #consultation(id: number): Consultation {
    const c = this.consultations[id - 1];
    if (!c) throw new Error(`no consultation ${id}`);
    return c;
  }
}
