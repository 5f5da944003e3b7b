import type { ManagerBackend } from "../dbus/backend.ts";
import { BusAddressError, type BusChoice, connectBus } from "../dbus/bus.ts";
import { NameTakenError, startService } from "../dbus/service.ts";
import type { Host } from "../host/host.ts";
import type { Logger } from "../log/logger.ts";

export interface RunningBus {
  close(): Promise<void>;
}

/**
 * Puts the manager on the bus. Without a reachable bus the daemon goes on observing (and says
 * so): its work matters more than its interface. A name owned by someone else is fatal: two
 * daemons must never both drive the kernel's scheduler.
 */
export async function startBus(
  choice: BusChoice,
  backend: ManagerBackend,
  host: Host,
  log: Logger,
): Promise<RunningBus | undefined> {
  let bus: ReturnType<typeof connectBus>;
  try {
    bus = connectBus(choice);
  } catch (error) {
    if (!(error instanceof BusAddressError)) throw error;
    log.error({}, `${error.message}; going on without D-Bus`);
    return undefined;
  }
  const where = choice.address ?? `the ${choice.kind} bus`;
  let onError: (error: Error) => void = () => undefined;
  const failed = new Promise<never>((_, reject) => {
    onError = reject;
    bus.once("error", onError);
  });
  try {
    const service = await Promise.race([startService({ bus, backend, host, logger: log }), failed]);
    bus.off("error", onError);
    bus.on("error", (error: Error) =>
      log.error({ error: error.message }, `lost ${where}; D-Bus is gone until restart`),
    );
    return {
      async close() {
        await service.close();
        bus.disconnect();
      },
    };
  } catch (error) {
    bus.disconnect();
    if (error instanceof NameTakenError) throw error;
    log.error({ error: String(error) }, `cannot reach ${where}; going on without D-Bus`);
    return undefined;
  }
}
