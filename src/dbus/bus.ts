import dbus from "dbus-next";

export type BusKind = "system" | "session";

export interface BusChoice {
  kind: BusKind;
  /** An explicit address (unix:path=...); otherwise the kind's usual one. */
  address?: string | undefined;
}

export type MessageBus = dbus.MessageBus;

const SYSTEM_BUS_DEFAULT = "unix:path=/run/dbus/system_bus_socket";

export class BusAddressError extends Error {
  override readonly name = "BusAddressError";
}

/**
 * Connects to a bus. The system bus honours DBUS_SYSTEM_BUS_ADDRESS and the session bus
 * DBUS_SESSION_BUS_ADDRESS, as every D-Bus client does; an explicit address wins over both.
 */
export function connectBus(choice: BusChoice): MessageBus {
  const address =
    choice.address ||
    (choice.kind === "system"
      ? process.env.DBUS_SYSTEM_BUS_ADDRESS || SYSTEM_BUS_DEFAULT
      : process.env.DBUS_SESSION_BUS_ADDRESS);
  if (!address) throw new BusAddressError("no session bus: DBUS_SESSION_BUS_ADDRESS is not set");
  return dbus.sessionBus({ busAddress: socketAddress(address) });
}

/**
 * dbus-next opens unix:path= and unix:abstract= addresses through its optional `usocket`
 * addon, which crashes on Node >= 23 (it calls the removed util.isError). Its own
 * `unix:socket=` form uses Node's net module instead, which reaches both kinds of socket.
 */
export function socketAddress(address: string): string {
  return address
    .split(";")
    .map((entry) => {
      const [transport, params = ""] = splitOnce(entry, ":");
      if (transport !== "unix") return entry;
      for (const pair of params.split(",")) {
        const [key, value = ""] = splitOnce(pair, "=");
        if (key === "path") return `unix:socket=${decodeURIComponent(value)}`;
        if (key === "abstract") return `unix:socket=\0${decodeURIComponent(value)}`;
      }
      return entry;
    })
    .join(";");
}

function splitOnce(text: string, separator: string): [string, string | undefined] {
  const at = text.indexOf(separator);
  return at < 0 ? [text, undefined] : [text.slice(0, at), text.slice(at + 1)];
}
