// A circuit breaker: after `threshold` consecutive failed calls the LLM is left alone for
// `cooldownMs`; then one trial call decides whether it closes again.

export type BreakerState = "closed" | "open" | "half-open";

export class CircuitBreaker {
  readonly #threshold: number;
  readonly #cooldownMs: number;
  readonly #now: () => number;
  #failures = 0;
  #openedAt: number | undefined;

  constructor(threshold: number, cooldownMs: number, now: () => number) {
    this.#threshold = threshold;
    this.#cooldownMs = cooldownMs;
    this.#now = now;
  }

  get state(): BreakerState {
    if (this.#openedAt === undefined) return "closed";
    return this.#now() - this.#openedAt >= this.#cooldownMs ? "half-open" : "open";
  }

  /** Monotonic ms at which an open breaker lets a trial call through. */
  get retryAt(): number | undefined {
    return this.#openedAt === undefined ? undefined : this.#openedAt + this.#cooldownMs;
  }

  allows(): boolean {
    return this.state !== "open";
  }

  success(): void {
    this.#failures = 0;
    this.#openedAt = undefined;
  }

  failure(): void {
    this.#failures++;
    if (this.state === "half-open" || this.#failures >= this.#threshold) this.#openedAt = this.#now();
  }
}
