import type { PhaseChange, Sample } from "./types.ts";

/**
 * What the Observe stage keeps: a bounded ring of raw samples and the log of phase changes.
 * Implemented in src/store/ (SQLite) and by in-memory fakes in tests.
 */
export interface ObservationStore {
  /** Appends a sample; the oldest ones beyond the ring's size are dropped. */
  appendSample(sample: Sample): void;
  /** The newest samples, oldest first. */
  recentSamples(limit: number): Sample[];
  sampleCount(): number;
  recordPhaseChange(change: PhaseChange): void;
  /** The newest phase changes, newest first. */
  recentPhaseChanges(limit: number): PhaseChange[];
  /** Phase changes into a phase with this signature, newest first (has this phase been seen?). */
  phaseChangesTo(signature: string, limit: number): PhaseChange[];
}
