import type { Config } from "../config/schema.ts";
import { kpiRatio } from "../deploy/kpis.ts";
import type { ControllerState } from "../deploy/types.ts";
import type { Logger } from "../log/logger.ts";
import { listenMetrics, type MetricsListener, writeTextfile } from "../metrics/export.ts";
import type { DaemonMetrics, DaemonSnapshot } from "../metrics/registry.ts";
import type { LoopHandler, LoopState } from "./loop.ts";

// The daemon's metrics at the loop: every sample the state gauges are read from the loop and the
// deployment controller, then the text file is replaced; the HTTP listener, when configured,
// serves the same registry between samples. The counters are fed by the stages (wiring.ts).

export interface MetricsHandlerOptions {
  config: Config["metrics"];
  metrics: DaemonMetrics;
  log: Logger;
  state: () => Readonly<LoopState>;
  mode: () => string;
  /** The deployment controller's state and the clock's now; undefined when the daemon only observes. */
  deploy: (() => { state: ControllerState; now: number }) | undefined;
}

export class MetricsHandler implements LoopHandler {
  readonly name = "metrics";
  readonly #o: MetricsHandlerOptions;
  #listener: MetricsListener | undefined;
  /** The textfile's last failure, said once until it works again. */
  #failing: string | undefined;

  constructor(options: MetricsHandlerOptions) {
    this.#o = options;
  }

  /** Starts the HTTP listener when [metrics] http_port asks for one; a port in use is logged, not fatal. */
  async start(): Promise<void> {
    const { config, metrics, log } = this.#o;
    if (config.http_port === 0) return;
    try {
      this.#listener = await listenMetrics(metrics, config.http_port);
      log.info(
        { port: this.#listener.port },
        `metrics served at http://127.0.0.1:${this.#listener.port}/metrics`,
      );
    } catch (error) {
      log.warn(
        { port: config.http_port },
        `cannot serve metrics on 127.0.0.1:${config.http_port}: ${(error as Error).message}`,
      );
    }
  }

  async onSample(): Promise<void> {
    const { metrics, state, config } = this.#o;
    const loop = state();
    if (loop.lastSampleMs !== undefined) metrics.sampled(loop.lastSampleMs / 1000);
    metrics.observe(this.#snapshot(loop), loop.phaseChanges);
    if (config.textfile === "off") return;
    const written = await writeTextfile(metrics, config.textfile);
    this.#report(written.ok ? undefined : written);
  }

  async onStop(): Promise<void> {
    await this.#listener?.close();
  }

  #snapshot(loop: Readonly<LoopState>): DaemonSnapshot {
    const deploy = this.#o.deploy?.();
    const probation = deploy?.state.phase === "probation" ? deploy.state.probation : undefined;
    return {
      mode: this.#o.mode(),
      phase: loop.phase,
      deploy: deploy && {
        phase: deploy.state.phase,
        policy: deploy.state.current && {
          name: deploy.state.current.ref.name,
          hash: deploy.state.current.ref.hash,
        },
        probation: probation && {
          cgroup: probation.cgroup,
          kpiRatio:
            probation.samples.length > 0
              ? kpiRatio(probation.baseline, probation.samples, probation.cgroupKpi)
              : undefined,
          secondsLeft: (probation.until - deploy.now) / 1000,
        },
      },
    };
  }

  #report(failure: { missingDirectory: boolean; message: string } | undefined): void {
    const { log, config } = this.#o;
    if (!failure) {
      if (this.#failing) log.info({ path: config.textfile }, `metrics written to ${config.textfile} again`);
      this.#failing = undefined;
      return;
    }
    if (this.#failing === failure.message) return;
    this.#failing = failure.message;
    // No node_exporter on this host is a normal set-up, not a fault.
    log[failure.missingDirectory ? "info" : "warn"](
      { path: config.textfile },
      `not writing metrics to ${config.textfile}: ${failure.message} (install prometheus-node-exporter, or set [metrics] textfile = "off")`,
    );
  }
}
