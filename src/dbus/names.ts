// The bus names every side agrees on: the service, its clients (CLI, MCP) and the policy file.

export const BUS_NAME = "org.schedctl1";
export const OBJECT_PATH = "/org/schedctl1";
export const INTERFACE = "org.schedctl1.Manager";

export const ERROR = {
  invalidArgs: "org.freedesktop.DBus.Error.InvalidArgs",
  accessDenied: "org.freedesktop.DBus.Error.AccessDenied",
  /** The name is not on the bus: the daemon is not running. */
  serviceUnknown: "org.freedesktop.DBus.Error.ServiceUnknown",
  nameHasNoOwner: "org.freedesktop.DBus.Error.NameHasNoOwner",
  noSuchPolicy: "org.schedctl1.Error.NoSuchPolicy",
  refused: "org.schedctl1.Error.Refused",
  failed: "org.schedctl1.Error.Failed",
} as const;
