import { describe, expect, it } from "vitest";
import { type DetectorOptions, PhaseDetector } from "../../../src/observe/detect.ts";
import { FEATURE_NAMES, type Features } from "../../../src/observe/types.ts";

const options: DetectorOptions = { threshold: 4, tolerance: 0.5, minDwell: 5, confirm: 2 };

/** Deterministic noise in [-1, 1). */
function noise(seed: number): () => number {
  let x = seed;
  return () => {
    x = (x * 1103515245 + 12345) % 2147483648;
    return (x / 2147483648) * 2 - 1;
  };
}

function features(values: Partial<Features>): Features {
  const f = Object.fromEntries(FEATURE_NAMES.map((n) => [n, 0])) as Features;
  return { ...f, ctxsw_per_sec_per_cpu: 300, forks_per_sec: 2, ...values };
}

function run(stream: Features[], opts = options) {
  const detector = new PhaseDetector(opts);
  return stream.map((f) => detector.push(f)).flatMap((d) => (d ? [d] : []));
}

describe("PhaseDetector", () => {
  it("reports a step within two samples, with where it began and which features moved", () => {
    const r = noise(1);
    const stream = Array.from({ length: 120 }, (_, i) =>
      features(i < 60 ? { cpu_util: 0.1 + 0.02 * r() } : { cpu_util: 0.9 + 0.02 * r(), runnable_per_cpu: 2 }),
    );
    const detections = run(stream);
    expect(detections).toHaveLength(1);
    const d = detections[0]!;
    expect(d.at - 60).toBeLessThanOrEqual(2);
    expect(d.start).toBe(60);
    expect(d.moved[0]!.feature).toBe("cpu_util");
    expect(d.moved.map((m) => m.feature)).toContain("runnable_per_cpu");
    expect(d.before.cpu_util).toBeCloseTo(0.1, 1);
    expect(d.after.cpu_util).toBeCloseTo(0.9, 1);
    expect(d.drift).toBeGreaterThan(10);
  });

  it("stays quiet over a long noisy steady stretch", () => {
    const r = noise(7);
    const stream = Array.from({ length: 5000 }, () =>
      features({
        cpu_util: 0.5 + 0.05 * r(),
        ctxsw_per_sec_per_cpu: 2000 * (1 + 0.2 * r()),
        forks_per_sec: 5 * (1 + 0.5 * r()),
      }),
    );
    expect(run(stream)).toEqual([]);
  });

  it("ignores a one-sample spike but reports it when confirm is 1", () => {
    const stream = Array.from({ length: 60 }, (_, i) => features({ cpu_util: i === 30 ? 0.95 : 0.1 }));
    expect(run(stream)).toEqual([]);
    expect(run(stream, { ...options, confirm: 1 }).map((d) => d.at)).toEqual([30]);
  });

  it("does not flap on a load that oscillates faster than the dwell", () => {
    const stream = Array.from({ length: 600 }, (_, i) =>
      features({ cpu_util: i < 100 ? 0.05 : Math.floor(i / 3) % 2 ? 0.2 : 0.8 }),
    );
    const detections = run(stream);
    expect(detections).toHaveLength(1);
    expect(detections[0]!.start).toBeGreaterThanOrEqual(99);
  });

  it("reports nothing within the minimum dwell of the last change", () => {
    const stream = Array.from({ length: 80 }, (_, i) =>
      features({ cpu_util: i < 40 ? 0.1 : i < 43 ? 0.9 : 0.5 }),
    );
    const detections = run(stream);
    expect(detections[0]!.start).toBe(40);
    expect(detections.every((d, k) => k === 0 || d.at - detections[k - 1]!.at >= options.minDwell)).toBe(
      true,
    );
  });
});
