// Wake-up latency percentiles from a distribution of (microseconds, count) pairs: the tools
// report theirs as histograms (cyclictest) or as one sample per wake-up (rt-app's logs).

export interface WakeupLatency {
  /** Wake-ups measured. */
  samples: number;
  p50Us: number;
  p99Us: number;
  maxUs: number;
}

/** Nearest-rank percentiles; `counts` maps a latency in microseconds to how often it was seen. */
export function latencyFromCounts(counts: ReadonlyMap<number, number>): WakeupLatency {
  const sorted = [...counts.entries()].filter(([, n]) => n > 0).sort(([a], [b]) => a - b);
  const samples = sorted.reduce((sum, [, n]) => sum + n, 0);
  const maxUs = sorted.at(-1)?.[0] ?? 0;
  const percentile = (q: number) => {
    const rank = Math.ceil(q * samples);
    let seen = 0;
    for (const [us, n] of sorted) {
      seen += n;
      if (seen >= rank) return us;
    }
    return maxUs;
  };
  return { samples, p50Us: percentile(0.5), p99Us: percentile(0.99), maxUs };
}
