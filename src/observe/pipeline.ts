import { type Detection, type DetectorOptions, PhaseDetector } from "./detect.ts";
import { phaseSignature, type SignatureState } from "./signature.ts";
import type { PhaseChange, Profile, Sample } from "./types.ts";
import { type Window, WindowBuilder, type WindowOptions } from "./window.ts";

export interface PipelineOptions {
  window: WindowOptions;
  detect: DetectorOptions;
}

export interface PipelineStep {
  profile: Profile;
  /** Set when this window starts a new phase (also for the very first phase). */
  change?: PhaseChange;
}

/** Mean share of the busy CPU time that makes a cgroup a phase's leader. */
const DOMINANT_SHARE = 0.25;
/** Windows after which a phase's signature is held by hysteresis rather than recomputed. */
const SETTLE_WINDOWS = 20;
/** Windows kept to rebuild a new phase's cgroup shares from the windows that began it. */
const RECENT = 64;

/**
 * The Observe stage as one pure, stateful step: Samples in (live or from a trace, the same way),
 * Profiles and PhaseChanges out. A Profile's class and signature are those of the phase its
 * window belongs to, computed from the phase's mean, so they hold still while the phase lasts.
 */
export class ObservePipeline {
  readonly #windows: WindowBuilder;
  readonly #detector: PhaseDetector;
  readonly #recent: Window[] = [];
  #phase: SignatureState | undefined;
  #shares = new Map<string, number>();
  #phaseWindows = 0;
  #last: Profile | undefined;
  #challenger: { path: string | undefined; run: number } = { path: undefined, run: 0 };
  #windowIndex = -1;
  readonly #confirm: number;

  constructor(options: PipelineOptions) {
    this.#windows = new WindowBuilder(options.window);
    this.#detector = new PhaseDetector(options.detect);
    this.#confirm = options.detect.confirm;
  }

  /** The latest profile, if any. */
  get current(): Profile | undefined {
    return this.#last;
  }

  push(sample: Sample): PipelineStep | undefined {
    const window = this.#windows.push(sample);
    if (!window) return undefined;
    this.#windowIndex++;
    this.#recent.push(window);
    if (this.#recent.length > RECENT) this.#recent.shift();
    const detection = this.#detector.push(window.features) ?? this.#dominantChanged(window);
    if (!this.#phase) {
      this.#startPhase([window]);
      const profile = this.#profile(window);
      return { profile, change: { at: window.at, to: profile, drift: 0, moved: [] } };
    }
    if (!detection) {
      this.#addShares(window);
      // While the phase is young its mean is still moving: quantise it afresh each window (a
      // level chosen from the first noisy windows must not be locked in by the hysteresis).
      const young = this.#phaseWindows < SETTLE_WINDOWS;
      this.#phase = phaseSignature(
        this.#detector.phaseMean,
        this.#meanShares(),
        young ? undefined : this.#phase,
      );
      return { profile: this.#profile(window) };
    }
    // The ended phase as its last window showed it (the windows since `start` are the new one's),
    // with the phase's mean features.
    const lastOld = this.#recent.at(-(detection.at - detection.start + 2));
    const from: Profile = {
      ...(lastOld ?? this.#last!),
      features: detection.before,
      class: this.#phase.class,
      signature: this.#phase.signature,
    };
    this.#startPhase(this.#recent.slice(-(detection.at - detection.start + 1)));
    const profile = this.#profile(window);
    return {
      profile,
      change: { at: window.at, from, to: profile, drift: detection.drift, moved: detection.moved },
    };
  }

  /**
   * A phase is also over when another cgroup takes the lead for `confirm` windows in a row, even
   * if the totals look alike (one stress job replaced by another of the same size).
   */
  #dominantChanged(window: Window): Detection | undefined {
    const leader = window.topCgroups[0];
    const own = this.#dominant();
    if (!own || !leader || leader.cpuShare < DOMINANT_SHARE || leader.path === own) {
      this.#challenger = { path: undefined, run: 0 };
      return undefined;
    }
    this.#challenger =
      this.#challenger.path === leader.path
        ? { path: leader.path, run: this.#challenger.run + 1 }
        : { path: leader.path, run: 1 };
    if (this.#challenger.run < this.#confirm) return undefined;
    const detection = this.#detector.forceChange(this.#windowIndex - this.#challenger.run + 1);
    if (detection) this.#challenger = { path: undefined, run: 0 };
    return detection;
  }

  /** The cgroup that leads the current phase (mean share at least DOMINANT_SHARE), if any. */
  #dominant(): string | undefined {
    let best: [string, number] | undefined;
    for (const entry of this.#meanShares()) if (!best || entry[1] > best[1]) best = entry;
    return best && best[1] >= DOMINANT_SHARE ? best[0] : undefined;
  }

  #startPhase(windows: Window[]): void {
    this.#shares = new Map();
    this.#phaseWindows = 0;
    for (const w of windows) this.#addShares(w);
    this.#phase = phaseSignature(this.#detector.phaseMean, this.#meanShares());
  }

  #addShares(window: Window): void {
    this.#phaseWindows++;
    for (const c of window.topCgroups) this.#shares.set(c.path, (this.#shares.get(c.path) ?? 0) + c.cpuShare);
  }

  #meanShares(): Map<string, number> {
    const n = Math.max(1, this.#phaseWindows);
    return new Map([...this.#shares].map(([path, sum]) => [path, sum / n]));
  }

  #profile(window: Window): Profile {
    const profile: Profile = { ...window, class: this.#phase!.class, signature: this.#phase!.signature };
    this.#last = profile;
    return profile;
  }
}
