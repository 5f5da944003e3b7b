import { createInterface } from "node:readline";
import { parseArgs } from "node:util";
import { connectBus } from "../../src/dbus/bus.ts";
import { startService } from "../../src/dbus/service.ts";
import { createHost } from "../../src/host/host.ts";
import { createLogger } from "../../src/log/logger.ts";
import { ScriptedBackend } from "./dbus-backend.ts";

// The service in its own process, as the daemon runs it: `node dbus-service-entry.ts --address
// unix:path=... [--host-root DIR]`. Prints "ready" once the name is owned; each stdin line
// "phase CLASS SIGNATURE DRIFT" makes the backend report a phase change (and so a signal).

const { values } = parseArgs({ options: { address: { type: "string" }, "host-root": { type: "string" } } });
const bus = connectBus({ kind: "session", address: values.address });
const backend = new ScriptedBackend();
const service = await startService({
  bus,
  backend,
  host: createHost(values["host-root"] ?? "/"),
  logger: createLogger({ level: "warn" }),
});
process.stdout.write("ready\n");

for await (const line of createInterface({ input: process.stdin })) {
  const [command, ...rest] = line.trim().split(/\s+/);
  if (command === "phase") backend.enterPhase(rest[0] ?? "", rest[1] ?? "", Number(rest[2] ?? 0));
}
// stdin closed: the test is done with us.
await service.close();
bus.disconnect();
