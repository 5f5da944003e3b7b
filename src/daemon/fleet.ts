import type { Config } from "../config/schema.ts";
import { readSecretFile } from "../config/secret.ts";
import type { FleetStatus } from "../dbus/backend.ts";
import type { Outcome } from "../decide/types.ts";
import { fleetIdentity } from "../fleet/identity.ts";
import { describeUrl, FleetLink, NOTHING_SYNCED } from "../fleet/link.ts";
import type { Host } from "../host/host.ts";
import type { Logger } from "../log/logger.ts";

// The fleet joined to the daemon: the link built from [fleet], synced on a timer of its own
// (never in the loop's tick) and right after this host records an outcome, and its state as
// status shows it. A bad [fleet] section leaves the host alone and says why; it never stops it.

export interface Fleet {
  /** The other hosts' outcomes, cached (no query). */
  outcomes(): readonly Outcome[];
  /** A new outcome of ours: sent on a sync of its own, soon. */
  outcomeRecorded(): void;
  status(): FleetStatus;
  /** One sync now (the timer's own, for a caller that must know it happened). */
  sync(): Promise<void>;
  start(): void;
  stop(): Promise<void>;
}

export interface FleetOptions {
  config: Config["fleet"];
  host: Host;
  log: Logger;
  localOutcomesSince: (at: number) => Outcome[];
  manifestOf: (name: string) => unknown;
  now: () => number;
}

export function openFleet(o: FleetOptions): Fleet | undefined {
  const { url, password_file: passwordFile } = o.config;
  if (!url) return undefined;
  const log = o.log.child({ stage: "fleet" });
  let password: string | undefined;
  try {
    password = passwordFile ? readSecretFile(passwordFile, "[fleet] password_file") : undefined;
  } catch (error) {
    const why = (error as Error).message;
    log.error({}, `${why}; not joining the fleet, this host learns alone`);
    return refusedFleet(url, why);
  }
  const link = new FleetLink({
    ...fleetIdentity(o.host, o.config.host_id),
    url,
    password,
    timeoutMs: o.config.timeout_ms,
    localOutcomesSince: o.localOutcomesSince,
    manifestOf: o.manifestOf,
    now: o.now,
    warn: (message) => log.warn({}, message),
  });
  let timer: NodeJS.Timeout | undefined;
  return {
    outcomes: () => link.outcomes(),
    outcomeRecorded: () => void setImmediate(() => void link.sync()),
    status: () => statusOf(link),
    sync: () => link.sync(),
    start() {
      void link.sync();
      timer = setInterval(() => void link.sync(), o.config.sync_interval_ms);
      timer.unref();
    },
    async stop() {
      clearInterval(timer);
      await link.close();
    },
  };
}

export function statusOf(link: FleetLink): FleetStatus {
  const s = link.state();
  const fromFleet = `${s.outcomes} outcome(s), ${s.quarantines} quarantine(s) from ${s.hosts} other host(s), ${s.objects} verified object(s)`;
  const summary =
    s.state === "connected"
      ? `connected to ${s.database} as ${s.hostId} (${s.kernel}, ${s.cpuClass}): ${fromFleet}; ${s.sent} sent`
      : `offline (${s.database}: ${s.lastError}); ${s.pending} outcome(s) to send when it is back${s.lastSyncAt ? `; last known: ${fromFleet}` : ""}`;
  return {
    state: s.state,
    summary,
    database: s.database,
    hostId: s.hostId,
    lastSyncAt: s.lastSyncAt,
    outcomes: s.outcomes,
    quarantines: s.quarantines,
    hosts: s.hosts,
    objects: s.objects,
    sent: s.sent,
    pending: s.pending,
  };
}

/** [fleet] named, but its credentials were refused: off, and status says why. */
function refusedFleet(url: string, why: string): Fleet {
  const status: FleetStatus = {
    state: "off",
    summary: `off: ${why}`,
    database: describeUrl(url),
    ...NOTHING_SYNCED,
  };
  return {
    outcomes: () => [],
    outcomeRecorded: () => undefined,
    status: () => status,
    sync: async () => undefined,
    start: () => undefined,
    stop: async () => undefined,
  };
}

export const NO_FLEET: FleetStatus = {
  state: "off",
  summary: "off: no [fleet] url configured (this host learns alone)",
  ...NOTHING_SYNCED,
};
