import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { findExecutable, runTool } from "./tools.ts";
import { resolveTunables } from "./tunables.ts";
import type { Manifest, PolicyRef, Tunable, Tunables } from "./types.ts";

/*
 * External policies: the scx schedulers a distribution installs (scx_lavd, scx_bpfland, ...),
 * found on PATH. Each gets a manifest of its own whose tunables are the scheduler's command-line
 * options, read from its `--help` (clap's format: `--slice-us <SLICE_US>  ... [default: 20000]`).
 * They run as supervised child processes (Kernel Loadable kind "process", argv from argvFor()).
 */

export const KNOWN_SCX_SCHEDULERS = [
  "scx_bpfland",
  "scx_cosmos",
  "scx_flash",
  "scx_lavd",
  "scx_layered",
  "scx_p2dq",
  "scx_rustland",
  "scx_rusty",
  "scx_tickless",
  "scx_beerland",
] as const;

/** What each is for, as far as its documentation says; unknown ones are "mixed". */
const WORKLOADS: Record<string, Manifest["workloads"]> = {
  scx_lavd: ["latency", "mixed"],
  scx_bpfland: ["latency", "mixed"],
  scx_flash: ["latency", "mixed"],
  scx_rusty: ["throughput", "mixed"],
  scx_p2dq: ["throughput", "mixed"],
  scx_cosmos: ["mixed", "throughput"],
  scx_rustland: ["latency"],
};

export interface ExternalPolicy {
  manifest: Manifest;
  binary: string;
  /** Ops name the scheduler registers (the binary's name without `scx_`). */
  opsName: string;
  /** Option name -> command-line flag. */
  flags: Record<string, string>;
}

/** Every known scx scheduler on PATH, with the manifest read from its --help. */
export async function discoverExternal(pathEnv = process.env.PATH ?? ""): Promise<ExternalPolicy[]> {
  const found: ExternalPolicy[] = [];
  for (const name of KNOWN_SCX_SCHEDULERS) {
    const binary = findExecutable(name, pathEnv);
    if (!binary) continue;
    const help = await runTool(binary, ["--help"], { timeoutMs: 10_000 });
    found.push(externalPolicy(name, binary, `${help.stdout}\n${help.stderr}`));
  }
  return found;
}

export function externalPolicy(name: string, binary: string, helpText: string): ExternalPolicy {
  const { tunables, flags } = parseHelpOptions(helpText);
  const summary = helpText.trim().split("\n")[0]?.trim() || `${name} (external sched_ext scheduler)`;
  return {
    manifest: {
      name,
      origin: "external",
      summary,
      workloads: WORKLOADS[name] ?? ["mixed"],
      tunables,
      minKernel: "6.12",
    },
    binary,
    opsName: name.replace(/^scx_/, ""),
    flags,
  };
}

const MAX_INT = 2 ** 31 - 1;
const SKIPPED = new Set(["help", "version", "help_stats", "monitor", "stats", "verbose"]);

/** clap-style options: `-s, --slice-us <SLICE_US>  text [default: 5000]`, boolean `--no-x  text`. */
export function parseHelpOptions(help: string): {
  tunables: Record<string, Tunable>;
  flags: Record<string, string>;
} {
  const tunables: Record<string, Tunable> = {};
  const flags: Record<string, string> = {};
  const lines = help.split("\n");
  for (let i = 0; i < lines.length; i++) {
    const m = /^\s*(?:-\w,\s*)?--([a-z][a-z0-9-]*)(?:[ =]<([^>]+)>)?\s*(.*)$/.exec(lines[i]!);
    if (!m) continue;
    const [, flag, valueName, rest] = m as unknown as [string, string, string | undefined, string];
    const name = flag.replaceAll("-", "_");
    if (SKIPPED.has(name)) continue;
    // clap's long help puts the text (and [default: ...]) on the following indented lines
    let text = rest;
    for (let j = i + 1; j < lines.length && !/^\s*-/.test(lines[j]!) && lines[j]!.trim(); j++)
      text += ` ${lines[j]!.trim()}`;
    const description = text.replace(/\s*\[[^\]]*\]/g, "").trim() || flag;
    const defaultText = /\[default: ([^\]]+)\]/.exec(text)?.[1]?.trim();
    const options = /\[possible values: ([^\]]+)\]/
      .exec(text)?.[1]
      ?.split(",")
      .map((s) => s.trim());
    if (!valueName) {
      tunables[name] = { type: "bool", default: false, description };
    } else if (options && options.length > 0) {
      tunables[name] = { type: "enum", options, default: defaultText ?? options[0]!, description };
    } else if (defaultText !== undefined && /^-?\d+$/.test(defaultText)) {
      const value = Number(defaultText);
      tunables[name] = {
        type: "int",
        min: value < 0 ? -MAX_INT : 0,
        max: MAX_INT,
        default: value,
        description,
      };
    } else {
      continue; // free-form values (paths, lists) are not offered as tunables
    }
    flags[name] = `--${flag}`;
  }
  return { tunables, flags };
}

/** The command line that runs this scheduler with these tunables (defaults left off). */
export function argvFor(policy: ExternalPolicy, given: Tunables = {}): string[] {
  const tunables = resolveTunables(policy.manifest, given);
  const argv = [policy.binary];
  for (const [name, value] of Object.entries(tunables)) {
    const spec = policy.manifest.tunables[name]!;
    if (value === spec.default) continue;
    const flag = policy.flags[name]!;
    if (spec.type === "bool") {
      if (value === true) argv.push(flag);
    } else argv.push(flag, String(value));
  }
  return argv;
}

/** The variant's reference: the hash covers the binary's content and the tunables. */
export function externalRef(policy: ExternalPolicy, given: Tunables = {}): PolicyRef {
  const tunables = resolveTunables(policy.manifest, given);
  const hash = createHash("sha256")
    .update("schedctl-external-v1\0")
    .update(readFileSync(policy.binary))
    .update("\0")
    .update(JSON.stringify(argvFor(policy, tunables).slice(1)))
    .digest("hex");
  return { origin: "external", name: policy.manifest.name, tunables, hash };
}
