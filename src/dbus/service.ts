import dbus from "dbus-next";
import type { Host } from "../host/host.ts";
import type { Logger } from "../log/logger.ts";
import { toJson } from "../text/untrusted.ts";
import { authorizeChange } from "./auth.ts";
import { BackendError, type LlmBudget, type ManagerBackend, type ManagerProperties } from "./backend.ts";
import type { MessageBus } from "./bus.ts";
import { ARGUMENTS, type ArgumentName, type Arguments, parseArguments } from "./inputs.ts";
import { BUS_NAME, ERROR, INTERFACE, OBJECT_PATH } from "./names.ts";

// The org.schedctl1.Manager object: properties with PropertiesChanged, read methods open to
// everyone, changing methods for root and the control group, and the daemon's signals.
// Complex results are JSON documents (the schemas in backend.ts), so `busctl call` shows them
// readably and every client parses them with the same zod schemas.

type DbusMessage = dbus.Message;

const { Interface } = dbus.interface;
const { Variant, DBusError, Message } = dbus;

/** Methods that change something; everything else on the interface is a read. */
export const CHANGING = new Set<string>([
  "SetMode",
  "SwitchPolicy",
  "Rollback",
  "VerifyPolicy",
  "CreatePolicy",
  "Reload",
]);

/** Another process owns org.schedctl1 already (a second schedctld must not run). */
export class NameTakenError extends Error {
  override readonly name = "NameTakenError";
}

export interface ServiceOptions {
  bus: MessageBus;
  backend: ManagerBackend;
  /** Where the group database (/etc/passwd, /etc/group) is read for authorization. */
  host: Host;
  logger: Logger;
}

export interface RunningService {
  /** Publishes what changed since the last call (the backend's events also trigger it). */
  publish(): void;
  close(): Promise<void>;
}

class ManagerInterface extends Interface {
  readonly #options: ServiceOptions;
  #caller: DbusMessage | undefined;

  constructor(options: ServiceOptions) {
    super(INTERFACE);
    this.#options = options;
  }

  /** Remembers the call being dispatched: dbus-next hands methods their arguments only. */
  capture(message: DbusMessage): void {
    this.#caller = message;
  }

  get Mode(): string {
    return this.#props().mode;
  }
  get ActivePolicy(): string {
    return this.#props().activePolicy;
  }
  get Phase(): string {
    return this.#props().phase;
  }
  get SchedExtState(): string {
    return this.#props().schedExtState;
  }
  get LlmBudget(): Record<string, dbus.Variant> {
    return budgetVariant(this.#props().llmBudget);
  }
  get Version(): string {
    return this.#props().version;
  }

  GetStatus(): string {
    return read(() => this.#options.backend.status());
  }
  ListPolicies(): string {
    return read(() => this.#options.backend.listPolicies());
  }
  GetHistory(limit: number): string {
    const args = parseArguments("GetHistory", { limit });
    return read(() => this.#options.backend.history(args.limit));
  }
  Explain(): string {
    return read(() => this.#options.backend.explain());
  }
  SetMode(mode: string): Promise<void> {
    return this.#change("SetMode", { mode }, (a) => this.#options.backend.setMode(a.mode));
  }
  SwitchPolicy(name: string, tunables: string): Promise<string> {
    return this.#change("SwitchPolicy", { name, tunables }, async (a) =>
      toJson(await this.#options.backend.switchPolicy(a.name, a.tunables)),
    );
  }
  Rollback(): Promise<string> {
    return this.#change("Rollback", {}, async () => toJson(await this.#options.backend.rollback()));
  }
  VerifyPolicy(target: string): Promise<string> {
    return this.#change("VerifyPolicy", { target }, async (a) =>
      toJson(await this.#options.backend.verifyPolicy(a.target)),
    );
  }
  CreatePolicy(name: string, source: string): Promise<string> {
    return this.#change("CreatePolicy", { name, source }, async (a) =>
      toJson(await this.#options.backend.createPolicy(a.name, a.source)),
    );
  }
  Reload(): Promise<void> {
    return this.#change("Reload", {}, () => this.#options.backend.reload());
  }

  // Signals: calling one emits it with the returned body.
  PhaseChanged(phase: string, signature: string, drift: number): [string, string, number] {
    return [phase, signature, drift];
  }
  PolicyChanged(policy: string, hash: string, reason: string): [string, string, string] {
    return [policy, hash, reason];
  }
  RolledBack(from: string, to: string, reason: string): [string, string, string] {
    return [from, to, reason];
  }

  /** dbus-next names every argument arg_N; introspection should say what each one is. */
  $introspect(): IntrospectXml {
    const xml = (Interface.prototype as unknown as { $introspect(): IntrospectXml }).$introspect.call(this);
    for (const member of [...(xml.method ?? []), ...(xml.signal ?? [])]) {
      const names = ARGUMENT_NAMES[member.$.name] ?? [];
      member.arg.forEach((arg, i) => {
        const name = names[i];
        if (name) arg.$.name = name;
      });
    }
    return xml;
  }

  #props(): ManagerProperties {
    return this.#options.backend.properties();
  }

  /** Authorizes the captured caller, validates the arguments, runs the change, maps errors. */
  async #change<N extends ArgumentName, R>(
    method: N,
    raw: Record<string, unknown>,
    run: (args: Arguments<N>) => Promise<R>,
  ): Promise<R> {
    const message = this.#caller;
    this.#caller = undefined;
    const { bus, host, logger } = this.#options;
    const sender = message?.sender ?? "";
    const uid = await callerUid(bus, sender);
    const decision = authorizeChange(host, uid);
    if (!decision.allowed) {
      logger.warn({ method, uid, sender }, "refused a change: caller not authorized");
      throw new DBusError(ERROR.accessDenied, `${method} needs root or group "schedctl": ${decision.reason}`);
    }
    const args = parseArguments(method, raw);
    logger.info({ method, uid, sender }, "change requested over D-Bus");
    try {
      return await run(args);
    } catch (error) {
      throw toDbusError(error);
    }
  }
}

ManagerInterface.configureMembers({
  properties: {
    Mode: { signature: "s", access: "read" },
    ActivePolicy: { signature: "s", access: "read" },
    Phase: { signature: "s", access: "read" },
    SchedExtState: { signature: "s", access: "read" },
    LlmBudget: { signature: "a{sv}", access: "read" },
    Version: { signature: "s", access: "read" },
  },
  methods: {
    GetStatus: { inSignature: "", outSignature: "s" },
    ListPolicies: { inSignature: "", outSignature: "s" },
    GetHistory: { inSignature: "u", outSignature: "s" },
    Explain: { inSignature: "", outSignature: "s" },
    SetMode: { inSignature: "s", outSignature: "" },
    SwitchPolicy: { inSignature: "ss", outSignature: "s" },
    Rollback: { inSignature: "", outSignature: "s" },
    VerifyPolicy: { inSignature: "s", outSignature: "s" },
    CreatePolicy: { inSignature: "ss", outSignature: "s" },
    Reload: { inSignature: "", outSignature: "" },
  },
  signals: {
    PhaseChanged: { signature: "ssd" },
    PolicyChanged: { signature: "sss" },
    RolledBack: { signature: "sss" },
  },
});

interface IntrospectXml {
  method?: { $: { name: string }; arg: { $: { name?: string } }[] }[];
  signal?: { $: { name: string }; arg: { $: { name?: string } }[] }[];
}

/** Argument names in signature order (in-arguments first, then out). */
const ARGUMENT_NAMES: Record<string, string[]> = {
  GetStatus: ["status_json"],
  ListPolicies: ["policies_json"],
  GetHistory: ["limit", "history_json"],
  Explain: ["explanation_json"],
  SetMode: ["mode"],
  SwitchPolicy: ["name", "tunables_json", "result_json"],
  Rollback: ["result_json"],
  VerifyPolicy: ["name_or_path", "verdict_json"],
  CreatePolicy: ["name", "source", "verdict_json"],
  PhaseChanged: ["phase", "signature", "drift"],
  PolicyChanged: ["policy", "hash", "reason"],
  RolledBack: ["from", "to", "reason"],
};

/** The in-signature of each method, for refusing a call with the wrong argument types. */
const SIGNATURES: Record<string, string> = Object.fromEntries(
  Object.entries(ARGUMENTS).map(([method, spec]) => [method, spec.signature]),
);

function budgetVariant(budget: LlmBudget): Record<string, dbus.Variant> {
  return {
    Provider: new Variant("s", budget.provider),
    State: new Variant("s", budget.state),
    CallsLeftHour: new Variant("i", budget.callsLeftHour),
    CallsLeftDay: new Variant("i", budget.callsLeftDay),
    TokensLeftDay: new Variant("i", budget.tokensLeftDay),
    SpentUsdToday: new Variant("d", budget.spentUsdToday),
  };
}

const PROPERTY_KEYS: Record<keyof ManagerProperties, string> = {
  mode: "Mode",
  activePolicy: "ActivePolicy",
  phase: "Phase",
  schedExtState: "SchedExtState",
  llmBudget: "LlmBudget",
  version: "Version",
};

async function callerUid(bus: MessageBus, sender: string): Promise<number> {
  const reply = await bus.call(
    new Message({
      destination: "org.freedesktop.DBus",
      path: "/org/freedesktop/DBus",
      interface: "org.freedesktop.DBus",
      member: "GetConnectionUnixUser",
      signature: "s",
      body: [sender],
    }),
  );
  const uid = reply?.body[0];
  if (typeof uid !== "number")
    throw new DBusError(ERROR.accessDenied, "the bus did not tell who the caller is");
  return uid;
}

/** A read's JSON document; a failure becomes a D-Bus error with its message (never a stack trace). */
function read(document: () => unknown): string {
  try {
    return toJson(document());
  } catch (error) {
    throw toDbusError(error);
  }
}

function toDbusError(error: unknown): Error {
  if (error instanceof DBusError) return error;
  if (error instanceof BackendError) {
    const name = {
      invalid: ERROR.invalidArgs,
      "not-found": ERROR.noSuchPolicy,
      refused: ERROR.refused,
      failed: ERROR.failed,
    }[error.kind];
    return new DBusError(name, error.message);
  }
  return new DBusError(ERROR.failed, error instanceof Error ? error.message : String(error));
}

/**
 * Exports the object, then takes the name: a client that sees the name can call at once.
 * Throws when another process owns the name already.
 */
export async function startService(options: ServiceOptions): Promise<RunningService> {
  const { bus, backend, logger } = options;
  const iface = new ManagerInterface(options);
  const dispatch = (message: DbusMessage): boolean => {
    if (message.path !== OBJECT_PATH || message.interface !== INTERFACE) return false;
    const expected = SIGNATURES[message.member];
    if (expected !== undefined && (message.signature ?? "") !== expected) {
      const got = message.signature || "no arguments";
      bus.send(
        (Message.newError as unknown as (m: DbusMessage, name: string, text: string) => DbusMessage)(
          message,
          ERROR.invalidArgs,
          `${message.member} takes (${expected || "no arguments"}), got (${got})`,
        ),
      );
      return true;
    }
    if (CHANGING.has(message.member)) iface.capture(message);
    return false;
  };
  bus.addMethodHandler(dispatch);
  bus.export(OBJECT_PATH, iface);

  let published = backend.properties();
  const publish = () => {
    const now = backend.properties();
    const changed: Record<string, unknown> = {};
    for (const key of Object.keys(PROPERTY_KEYS) as (keyof ManagerProperties)[]) {
      if (JSON.stringify(now[key]) === JSON.stringify(published[key])) continue;
      changed[PROPERTY_KEYS[key]] = key === "llmBudget" ? budgetVariant(now.llmBudget) : now[key];
    }
    published = now;
    if (Object.keys(changed).length > 0) Interface.emitPropertiesChanged(iface, changed, []);
  };
  const unsubscribe = backend.subscribe((event) => {
    publish();
    if (event.type === "phase-changed") iface.PhaseChanged(event.phase, event.signature, event.drift);
    else if (event.type === "policy-changed") iface.PolicyChanged(event.policy, event.hash, event.reason);
    else if (event.type === "rolled-back") iface.RolledBack(event.from, event.to, event.reason);
  });

  const reply = await bus.requestName(BUS_NAME, dbus.NameFlag.DO_NOT_QUEUE);
  if (reply !== dbus.RequestNameReply.PRIMARY_OWNER && reply !== dbus.RequestNameReply.ALREADY_OWNER) {
    unsubscribe();
    bus.unexport(OBJECT_PATH, iface);
    bus.removeMethodHandler(dispatch);
    throw new NameTakenError(`${BUS_NAME} is already owned on this bus: is another schedctld running?`);
  }
  logger.info({ name: BUS_NAME, path: OBJECT_PATH }, "D-Bus service ready");

  return {
    publish,
    async close() {
      unsubscribe();
      await bus.releaseName(BUS_NAME).catch(() => undefined);
      bus.unexport(OBJECT_PATH, iface);
      bus.removeMethodHandler(dispatch);
    },
  };
}
