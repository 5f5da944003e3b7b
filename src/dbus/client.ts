import dbus from "dbus-next";
import type { z } from "zod";
import type { Tunables } from "../policies/types.ts";
import {
  Explanation,
  HistoryEntry,
  type Mode,
  PolicyInfo,
  RollbackResult,
  Status,
  SwitchResult,
  Verdict,
} from "./backend.ts";
import { type BusChoice, connectBus, type MessageBus } from "./bus.ts";
import { BUS_NAME, ERROR, INTERFACE, OBJECT_PATH } from "./names.ts";

// The daemon seen from the CLI and the MCP server: one typed call per method, results parsed
// with the same schemas the service serialised, bus errors turned into a few kinds a caller
// can act on (the CLI maps them to exit codes).

export type ClientErrorKind =
  | "no-bus"
  | "not-running"
  | "denied"
  | "invalid"
  | "not-found"
  | "refused"
  | "failed";

export class ClientError extends Error {
  override readonly name = "ClientError";
  readonly kind: ClientErrorKind;

  constructor(kind: ClientErrorKind, message: string) {
    super(message);
    this.kind = kind;
  }
}

const KIND_OF_ERROR: Record<string, ClientErrorKind> = {
  [ERROR.serviceUnknown]: "not-running",
  [ERROR.nameHasNoOwner]: "not-running",
  [ERROR.accessDenied]: "denied",
  [ERROR.invalidArgs]: "invalid",
  [ERROR.noSuchPolicy]: "not-found",
  [ERROR.refused]: "refused",
};

export class ManagerClient {
  readonly #bus: MessageBus;
  readonly #where: string;
  #broken: Error | undefined;

  constructor(choice: BusChoice) {
    this.#where = choice.address ?? `the ${choice.kind} bus`;
    this.#bus = connectBus(choice);
    // A missing socket surfaces as an error event, never as a rejected call: remember it.
    this.#bus.on("error", (error: Error) => {
      this.#broken = error;
    });
  }

  status(): Promise<Status> {
    return this.#document(Status, "GetStatus", "", []);
  }
  policies(): Promise<PolicyInfo[]> {
    return this.#document(PolicyInfo.array(), "ListPolicies", "", []);
  }
  history(limit: number): Promise<HistoryEntry[]> {
    return this.#document(HistoryEntry.array(), "GetHistory", "u", [limit]);
  }
  explain(): Promise<Explanation> {
    return this.#document(Explanation, "Explain", "", []);
  }
  async setMode(mode: Mode): Promise<void> {
    await this.#call("SetMode", "s", [mode]);
  }
  switchPolicy(name: string, tunables: Tunables): Promise<SwitchResult> {
    const json = Object.keys(tunables).length === 0 ? "" : JSON.stringify(tunables);
    return this.#document(SwitchResult, "SwitchPolicy", "ss", [name, json]);
  }
  rollback(): Promise<RollbackResult> {
    return this.#document(RollbackResult, "Rollback", "", []);
  }
  verifyPolicy(target: string): Promise<Verdict> {
    return this.#document(Verdict, "VerifyPolicy", "s", [target]);
  }
  createPolicy(name: string, source: string): Promise<Verdict> {
    return this.#document(Verdict, "CreatePolicy", "ss", [name, source]);
  }
  async reload(): Promise<void> {
    await this.#call("Reload", "", []);
  }

  close(): void {
    this.#bus.disconnect();
  }

  async #document<S extends z.ZodType>(schema: S, member: string, signature: string, body: unknown[]) {
    const reply = await this.#call(member, signature, body);
    const parsed = schema.safeParse(JSON.parse(String(reply[0])));
    if (!parsed.success) {
      throw new ClientError("failed", `${member}: the daemon's answer does not match this client's schema`);
    }
    return parsed.data as z.output<S>;
  }

  async #call(member: string, signature: string, body: unknown[]): Promise<unknown[]> {
    const message = new dbus.Message({
      destination: BUS_NAME,
      path: OBJECT_PATH,
      interface: INTERFACE,
      member,
      signature,
      body,
    });
    let onError: ((error: Error) => void) | undefined;
    const failed = new Promise<never>((_, reject) => {
      onError = reject;
      if (this.#broken) reject(this.#broken);
      this.#bus.on("error", onError);
    });
    try {
      const reply = await Promise.race([this.#bus.call(message), failed]);
      return reply?.body ?? [];
    } catch (error) {
      throw this.#explain(error);
    } finally {
      if (onError) this.#bus.off("error", onError);
    }
  }

  #explain(error: unknown): ClientError {
    if (error instanceof dbus.DBusError) {
      const kind = KIND_OF_ERROR[error.type] ?? "failed";
      if (kind === "not-running") {
        return new ClientError(kind, `schedctld is not running (${BUS_NAME} is not on ${this.#where})`);
      }
      return new ClientError(kind, error.text || error.type);
    }
    const e = error as NodeJS.ErrnoException;
    return new ClientError("no-bus", `cannot connect to ${this.#where}: ${e.code ?? e.message}`);
  }
}
