import { readFileSync, statSync } from "node:fs";
import { basename, resolve } from "node:path";
import { parseArgs } from "node:util";
import { Mode } from "../dbus/backend.ts";
import { BusAddressError, type BusKind } from "../dbus/bus.ts";
import { ClientError, type ClientErrorKind, ManagerClient } from "../dbus/client.ts";
import type { Tunables } from "../policies/types.ts";
import { forTerminal, forTerminalBlock, toJson } from "../text/untrusted.ts";
import { renderExplanation, renderHistory, renderPolicies, renderStatus, verdictLine } from "./render.ts";
import { styleFor } from "./style.ts";

// The commands that talk to schedctld. They reach it only over D-Bus, so they work the same
// for root and for any user, and every check (authorization, safety) stays in the daemon.

/** Exit statuses, documented in docs/cli.md and schedctl(1). */
export const EXIT = {
  ok: 0,
  failed: 1,
  usage: 2,
  notRunning: 3,
  denied: 4,
  noSuchPolicy: 5,
  verificationFailed: 6,
} as const;

const EXIT_OF_KIND: Record<ClientErrorKind, number> = {
  "no-bus": EXIT.notRunning,
  "not-running": EXIT.notRunning,
  denied: EXIT.denied,
  invalid: EXIT.usage,
  "not-found": EXIT.noSuchPolicy,
  refused: EXIT.failed,
  failed: EXIT.failed,
};

export function exitCodeOf(kind: ClientErrorKind): number {
  return EXIT_OF_KIND[kind];
}

export class ArgumentError extends Error {
  override readonly name = "ArgumentError";
}

const BUS_OPTIONS = {
  bus: { type: "string", default: "system" },
  address: { type: "string" },
  json: { type: "boolean", default: false },
} as const;

const BUS_USAGE = "[--bus system|session] [--address ADDRESS]";

interface Parsed {
  positionals: string[];
  json: boolean;
  values: Record<string, string | boolean | undefined>;
  client: ManagerClient;
}

function open(
  args: string[],
  extra: Record<string, { type: "string" | "boolean"; short?: string }> = {},
): Parsed {
  const { values, positionals } = parseArgs({
    args,
    options: { ...BUS_OPTIONS, ...extra },
    allowPositionals: true,
    strict: true,
  });
  const bus = values.bus as string;
  if (bus !== "system" && bus !== "session")
    throw new ArgumentError(`--bus: expected system or session, got "${bus}"`);
  const client = new ManagerClient({ kind: bus as BusKind, address: values.address as string | undefined });
  return { positionals, json: values.json === true, values, client };
}

const out = (text: string) => process.stdout.write(text);
const style = () => styleFor(process.stdout);
/** The terminal's width, to cut long lines; unlimited into a pipe or file. */
const width = () => (process.stdout.isTTY ? process.stdout.columns : undefined);
const json = (value: unknown) => out(`${toJson(value, 2)}\n`);

async function withClient(parsed: Parsed, run: (p: Parsed) => Promise<number>): Promise<number> {
  try {
    return await run(parsed);
  } finally {
    parsed.client.close();
  }
}

export interface DaemonCommand {
  usage: string;
  summary: string;
  run(args: string[]): Promise<number>;
}

export const DAEMON_COMMANDS: Record<string, DaemonCommand> = {
  status: {
    usage: `schedctl status [--json] ${BUS_USAGE}`,
    summary: "mode, the kernel's sched_ext state, the policy, the phase and the last decisions",
    run: (args) =>
      withClient(open(args), async ({ client, json: asJson }) => {
        const status = await client.status();
        if (asJson) json(status);
        else out(renderStatus(status, style()));
        return EXIT.ok;
      }),
  },
  policies: {
    usage: `schedctl policies [--json] ${BUS_USAGE}`,
    summary: "the policies the daemon can deploy, with their verdicts",
    run: (args) =>
      withClient(open(args), async ({ client, json: asJson }) => {
        const policies = await client.policies();
        if (asJson) json(policies);
        else out(renderPolicies(policies, style(), width()));
        return EXIT.ok;
      }),
  },
  history: {
    usage: `schedctl history [-n COUNT] [--json] ${BUS_USAGE}`,
    summary: "phase changes, decisions, verifications, deployments and rollbacks, newest first",
    run: (args) =>
      withClient(
        open(args, { lines: { type: "string", short: "n" } }),
        async ({ client, json: asJson, values }) => {
          const count = Number(values.lines ?? 20);
          if (!Number.isInteger(count) || count < 1)
            throw new ArgumentError(`-n: expected a positive count, got "${values.lines}"`);
          const entries = await client.history(count);
          if (asJson) json(entries);
          else out(renderHistory(entries, style(), width()));
          return EXIT.ok;
        },
      ),
  },
  explain: {
    usage: `schedctl explain [--json] ${BUS_USAGE}`,
    summary: "why the current policy runs: the profile, the decision and its verdict",
    run: (args) =>
      withClient(open(args), async ({ client, json: asJson }) => {
        const explanation = await client.explain();
        if (asJson) json(explanation);
        else out(renderExplanation(explanation, style()));
        return EXIT.ok;
      }),
  },
  switch: {
    usage: `schedctl switch POLICY [TUNABLE=VALUE...] [--json] ${BUS_USAGE}`,
    summary: "verify (if needed) and deploy POLICY now, on probation",
    run: (args) =>
      withClient(open(args), async ({ client, json: asJson, positionals }) => {
        const [name, ...assignments] = positionals;
        if (!name) throw new ArgumentError("which policy? (see schedctl policies)");
        const result = await client.switchPolicy(name, parseTunables(assignments));
        if (asJson) json(result);
        else out(`${forTerminal(result.message)}\n`);
        return EXIT.ok;
      }),
  },
  rollback: {
    usage: `schedctl rollback [--json] ${BUS_USAGE}`,
    summary: "go back to the previous policy (or the kernel default)",
    run: (args) =>
      withClient(open(args), async ({ client, json: asJson }) => {
        const result = await client.rollback();
        if (asJson) json(result);
        else
          out(
            `rolled back: ${forTerminal(result.from ?? "kernel default")} -> ${forTerminal(result.to ?? "kernel default")} (${forTerminal(result.reason)})\n`,
          );
        return EXIT.ok;
      }),
  },
  mode: {
    usage: `schedctl mode [auto|observe|manual] [--json] ${BUS_USAGE}`,
    summary:
      "show or set the mode: auto deploys on its own, observe never touches the kernel, manual on request",
    run: (args) =>
      withClient(open(args), async ({ client, json: asJson, positionals }) => {
        const [wanted] = positionals;
        if (wanted !== undefined) {
          const mode = Mode.safeParse(wanted);
          if (!mode.success)
            throw new ArgumentError(`mode: expected auto, observe or manual, got "${wanted}"`);
          await client.setMode(mode.data);
        }
        const { mode } = await client.status();
        if (asJson) json({ mode });
        else out(`${forTerminal(mode)}\n`);
        return EXIT.ok;
      }),
  },
  verify: {
    usage: `schedctl verify FILE|POLICY [--json] ${BUS_USAGE}`,
    summary: "compile and verify a policy source (or a catalogue policy) in the daemon",
    run: (args) =>
      withClient(open(args), async ({ client, json: asJson, positionals }) => {
        const [target] = positionals;
        if (!target) throw new ArgumentError("which file or policy?");
        const verdict = isFile(target)
          ? await client.createPolicy(policyNameOf(target), readFileSync(target, "utf8"))
          : await client.verifyPolicy(target.includes("/") ? resolve(target) : target);
        if (asJson) json(verdict);
        else {
          out(`${verdictLine(verdict, style())}\n`);
          if (!verdict.passed && verdict.log) out(`${forTerminalBlock(verdict.log.trimEnd())}\n`);
        }
        return verdict.passed ? EXIT.ok : EXIT.verificationFailed;
      }),
  },
  mcp: {
    usage: `schedctl mcp ${BUS_USAGE}`,
    summary: "serve the daemon's tools to AI agents over MCP on standard input/output",
    run: (args) =>
      withClient(open(args), async ({ client }) => {
        // Loaded here: the MCP SDK is large and no other command needs it.
        const { serveMcp } = await import("../mcp/server.ts");
        await serveMcp(client);
        return EXIT.ok;
      }),
  },
  reload: {
    usage: `schedctl reload ${BUS_USAGE}`,
    summary: "make the daemon re-read its configuration",
    run: (args) =>
      withClient(open(args), async ({ client }) => {
        await client.reload();
        return EXIT.ok;
      }),
  },
};

/** TUNABLE=VALUE: VALUE is read as JSON when it is (numbers, true/false, ["a","b"]), else text. */
export function parseTunables(assignments: string[]): Tunables {
  const tunables: Tunables = {};
  for (const assignment of assignments) {
    const at = assignment.indexOf("=");
    if (at <= 0) throw new ArgumentError(`"${assignment}": expected TUNABLE=VALUE`);
    const text = assignment.slice(at + 1);
    let value: unknown = text;
    try {
      value = JSON.parse(text);
    } catch {
      // not JSON: a plain string such as an enum option
    }
    if (
      !(typeof value === "number" || typeof value === "boolean" || typeof value === "string") &&
      !(Array.isArray(value) && value.every((v) => typeof v === "string"))
    ) {
      throw new ArgumentError(`"${assignment}": a value is a number, true/false, text or ["a","b"]`);
    }
    tunables[assignment.slice(0, at)] = value as Tunables[string];
  }
  return tunables;
}

function isFile(path: string): boolean {
  try {
    return statSync(path).isFile();
  } catch {
    return false;
  }
}

/** "my_policy.bpf.c" -> "my_policy": the name the daemon will know it by. */
function policyNameOf(path: string): string {
  return basename(path)
    .replace(/\.bpf\.c$|\.c$/, "")
    .toLowerCase()
    .replace(/[^a-z0-9_-]/g, "_");
}

/** The message and exit status for an error from a daemon command; undefined for others. */
export function daemonErrorExit(command: string, usage: string, error: unknown): number | undefined {
  const say = (text: string) => process.stderr.write(`schedctl ${command}: ${forTerminalBlock(text)}\n`);
  if (error instanceof ArgumentError) {
    say(`${error.message}\nusage: ${usage}`);
    return EXIT.usage;
  }
  if (error instanceof BusAddressError) {
    say(error.message);
    return EXIT.notRunning;
  }
  if (!(error instanceof ClientError)) return undefined;
  const hint = {
    "not-running": "; start it with: systemctl start schedctld",
    denied: "; run it as root or as a member of group schedctl",
  }[error.kind as string];
  say(`${error.message}${hint ?? ""}`);
  return exitCodeOf(error.kind);
}
