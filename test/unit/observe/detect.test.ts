import { describe, expect, it } from "vitest";
import { defaultConfig } from "../../../src/config/schema.ts";
import { pipelineOptions } from "../../../src/daemon/options.ts";
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
    // The spike is a phase of its own then, and its end (held through the dwell) another change.
    const spiky = run(stream, { ...options, confirm: 1 });
    expect(spiky.map((d) => d.start)).toEqual([30, 31]);
    expect(spiky[1]!.at).toBe(30 + options.minDwell);
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

describe("PhaseDetector with the built-in options", () => {
  const builtIn = pipelineOptions(defaultConfig()).detect;
  const r = noise(11);
  const jitter = (x: number, rel: number) => x * (1 + rel * r());
  const cpuBatch = () =>
    features({ cpu_util: jitter(1, 0.02), ctxsw_per_sec_per_cpu: jitter(40, 0.2), forks_per_sec: 0 });
  const halfBatch = () =>
    features({ cpu_util: jitter(0.5, 0.04), ctxsw_per_sec_per_cpu: jitter(40, 0.2), forks_per_sec: 0 });
  const compile = () =>
    features({
      cpu_util: jitter(0.97, 0.02),
      ctxsw_per_sec_per_cpu: jitter(1100, 0.15),
      forks_per_sec: jitter(280, 0.2),
      runnable_per_cpu: jitter(1.2, 0.3),
    });
  const idle = () =>
    features({
      cpu_util: jitter(0.03, 0.3),
      ctxsw_per_sec_per_cpu: jitter(150, 0.2),
      forks_per_sec: jitter(2, 0.5),
    });

  it("finds a compile that starts k samples after a detected change, for every k from 2 to 30", () => {
    for (let k = 2; k <= 30; k++) {
      const stream = [
        ...Array.from({ length: 40 }, cpuBatch),
        ...Array.from({ length: k }, halfBatch),
        ...Array.from({ length: 60 }, compile),
      ];
      const onset = 40 + k;
      const found = run(stream, builtIn).filter((d) => d.at >= onset && d.after.forks_per_sec > 100);
      expect(found, `k=${k}`).toHaveLength(1);
      expect(found[0]!.start, `k=${k}`).toBeGreaterThanOrEqual(onset - 1);
    }
  });

  it("confirms onsets and ends within two samples of the first, partial window", () => {
    // A boundary just before a sample: the first window holds a tenth of the new phase.
    const mix = (a: Features, b: Features, w: number) =>
      Object.fromEntries(FEATURE_NAMES.map((n) => [n, (1 - w) * a[n] + w * b[n]])) as Features;
    const stream = [
      ...Array.from({ length: 40 }, idle),
      mix(idle(), compile(), 0.1),
      ...Array.from({ length: 39 }, compile),
      mix(compile(), idle(), 0.1),
      ...Array.from({ length: 39 }, idle),
    ];
    const detections = run(stream, builtIn);
    expect(detections.map((d) => d.at)).toEqual([42, 82]);
    expect(detections.map((d) => d.start)).toEqual([40, 80]);
  });

  it("keeps a load flipping every 5 samples one phase", () => {
    const stream = [
      ...Array.from({ length: 40 }, idle),
      ...Array.from({ length: 200 }, (_, i) => (Math.floor(i / 5) % 2 ? idle() : cpuBatch())),
    ];
    expect(run(stream, builtIn).map((d) => d.start)).toEqual([40]);
  });

  it("does not report a 3-sample dip during an I/O phase", () => {
    const io = (dip: boolean) =>
      features({
        cpu_util: jitter(dip ? 0.12 : 0.25, 0.1),
        psi_io_some: jitter(dip ? 0.25 : 0.55, 0.1),
        blocked_per_cpu: jitter(dip ? 0.3 : 0.8, 0.3),
        ctxsw_per_sec_per_cpu: jitter(900, 0.15),
      });
    const stream = Array.from({ length: 150 }, (_, i) => io((i >= 70 && i < 73) || (i >= 110 && i < 113)));
    expect(run(stream, builtIn)).toEqual([]);
  });

  it("reports a moderate shift that holds, a little later than a large one", () => {
    const stream = Array.from({ length: 120 }, (_, i) =>
      features({
        cpu_util: jitter(i < 60 ? 0.4 : 0.55, 0.03),
        ctxsw_per_sec_per_cpu: jitter(i < 60 ? 300 : 800, 0.1),
      }),
    );
    const detections = run(stream, builtIn);
    expect(detections).toHaveLength(1);
    expect(detections[0]!.start).toBe(60);
    expect(detections[0]!.at - 60).toBe(builtIn.confirm);
  });

  it("finds a change three samples after a change, once the dwell is over", () => {
    const stream = [
      ...Array.from({ length: 40 }, idle),
      ...Array.from({ length: 3 }, cpuBatch),
      ...Array.from({ length: 40 }, compile),
    ];
    const detections = run(stream, builtIn);
    expect(detections.map((d) => d.start)).toEqual([40, 43]);
    expect(detections[1]!.after.forks_per_sec).toBeGreaterThan(100);
    // Held through the dwell (3 samples from the first detection), it is still on time.
    expect(detections[1]!.at - 43).toBeLessThanOrEqual(2);
  });
});
