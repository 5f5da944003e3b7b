import type { Config } from "../config/schema.ts";
import type { Clock } from "../host/clock.ts";
import type { Logger } from "../log/logger.ts";
import type { Manifest } from "../policies/types.ts";
import { Decider } from "./decider.ts";
import { createLlm } from "./llm/index.ts";
import { type Random, seededRandom } from "./random.ts";
import type { CandidateVerifier, DecideStore } from "./types.ts";

// The Decide stage as the daemon builds it: one call, real LLM client (or none) from [llm].

export interface DecideWiring {
  config: Config;
  store: DecideStore;
  /** The policy repository's manifests, read at every decision. */
  catalogue: () => readonly Manifest[];
  /** verify's real implementation; without it the LLM may only pick repository policies. */
  verifier?: CandidateVerifier;
  clock: Clock;
  logger: Logger;
  /** $CREDENTIALS_DIRECTORY, where systemd puts the llm-api-key credential. */
  credentialsDirectory?: string | undefined;
  random?: Random;
}

export function createDecider(w: DecideWiring): Decider {
  const logger = w.logger.child({ stage: "decide" });
  const llm = createLlm(w.config.llm, {
    audit: w.store,
    now: () => w.clock.now(),
    monotonic: () => w.clock.monotonic(),
    sleep: (ms, signal) => w.clock.sleep(ms, signal),
    logger,
    credentialsDirectory: w.credentialsDirectory,
  });
  if ("disabled" in llm)
    logger.info({ llm: llm.disabled }, "LLM not in use: the local planner decides alone");
  return new Decider({
    decide: w.config.decide,
    llmConfig: w.config.llm,
    quarantineAfter: w.config.deploy.quarantine_after,
    catalogue: w.catalogue,
    store: w.store,
    llm: "client" in llm ? llm.client : llm,
    verifier: w.verifier,
    random: w.random ?? seededRandom(w.clock.now()),
    now: () => w.clock.now(),
    logger,
  });
}

export { Decider, type LlmStatus, type StoredDecision } from "./decider.ts";
export * from "./types.ts";
