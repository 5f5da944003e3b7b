import type { DaemonMetrics } from "../../src/metrics/registry.ts";

// Reading schedctld's registry in tests: one sample's value by metric name and labels.

/** The value of `name` with exactly these labels (undefined: no such sample). */
export async function metricValue(
  metrics: DaemonMetrics,
  name: string,
  labels: Record<string, string> = {},
): Promise<number | undefined> {
  const metric = metrics.registry.getSingleMetric(name);
  if (!metric) throw new Error(`the registry has no metric ${name}`);
  const { values } = await metric.get();
  const wanted = JSON.stringify(Object.entries(labels).sort());
  return values.find((v) => JSON.stringify(Object.entries(v.labels).sort()) === wanted)?.value;
}
