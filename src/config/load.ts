import { readdirSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { parse as parseToml } from "smol-toml";
import type { z } from "zod";
import { Config } from "./schema.ts";

export const DEFAULT_CONFIG_DIR = "/etc/schedctl";
export const MAIN_FILE = "schedctl.toml";
export const DROP_IN_DIR = "conf.d";

export class ConfigError extends Error {
  override readonly name = "ConfigError";
}

type Table = Record<string, unknown>;

export interface LoadedConfig {
  config: Config;
  /** The files read, in the order they were applied. */
  files: string[];
}

/**
 * Loads the main file and then conf.d/*.toml in lexical order; later files win key by key.
 * A missing main file or drop-in directory is fine (built-in defaults apply). `path` may name a
 * directory (holding schedctl.toml and conf.d/) or a single file.
 */
export function loadConfig(path: string = DEFAULT_CONFIG_DIR): LoadedConfig {
  const files = configFiles(path);
  const merged: Table = {};
  const origin = new Map<string, string>();
  const texts = new Map<string, string>();
  for (const file of files) {
    const text = readText(file);
    texts.set(file, text);
    mergeInto(merged, parseTable(file, text), file, origin, []);
  }
  const result = Config.safeParse(merged);
  if (!result.success) {
    throw new ConfigError(describeIssues(result.error, origin, files, texts));
  }
  return { config: result.data, files };
}

function configFiles(path: string): string[] {
  if (path.endsWith(".toml")) {
    if (!exists(path)) throw new ConfigError(`${path}: no such file`);
    return [path];
  }
  const files: string[] = [];
  const main = join(path, MAIN_FILE);
  if (exists(main)) files.push(main);
  const dropIns = join(path, DROP_IN_DIR);
  let names: string[] = [];
  try {
    names = readdirSync(dropIns);
  } catch (error) {
    if (!isMissing(error)) throw new ConfigError(`${dropIns}: ${(error as Error).message}`);
  }
  for (const name of names.filter((n) => n.endsWith(".toml")).sort()) files.push(join(dropIns, name));
  return files;
}

function readText(file: string): string {
  try {
    return readFileSync(file, "utf8");
  } catch (error) {
    throw new ConfigError(`${file}: cannot read: ${(error as Error).message}`);
  }
}

function parseTable(file: string, text: string): Table {
  try {
    return parseToml(text) as Table;
  } catch (error) {
    const { line, column, message } = tomlErrorAt(error);
    const at = line === undefined ? "" : `:${line}:${column}`;
    throw new ConfigError(`${file}${at}: not valid TOML: ${message}`);
  }
}

/** Where smol-toml's parse error points (1-based; no line when it names none) and its first line. */
export function tomlErrorAt(error: unknown): { line?: number; column: number; message: string } {
  const { line, column } = error as { line?: number; column?: number };
  const message = (error as Error).message.split("\n")[0]!;
  return line === undefined ? { column: 1, message } : { line, column: column ?? 1, message };
}

/**
 * Where a dotted key is written in a file, as "line:column" (1-based): its `key = value` line
 * under its [table] header, or the header itself for a table. Undefined when it is not found
 * (a key in an inline table, say): the message then names the file and key alone.
 */
function keyPosition(text: string, key: string): string | undefined {
  let table = "";
  const lines = text.split("\n");
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i] ?? "";
    const header = /^\s*\[+\s*([^\]]+?)\s*\]+/.exec(line);
    if (header) {
      table = (header[1] ?? "").replace(/\s*\.\s*/g, ".").replaceAll('"', "");
      if (table === key) return `${i + 1}:${line.indexOf("[") + 1}`;
      continue;
    }
    const assignment = /^(\s*)([A-Za-z0-9_."-]+?)\s*=/.exec(line);
    if (!assignment) continue;
    const name = (assignment[2] ?? "").replace(/\s*\.\s*/g, ".").replaceAll('"', "");
    const full = table ? `${table}.${name}` : name;
    if (full === key || key.startsWith(`${full}.`)) return `${i + 1}:${(assignment[1] ?? "").length + 1}`;
  }
  return undefined;
}

function mergeInto(target: Table, source: Table, file: string, origin: Map<string, string>, at: string[]) {
  for (const [key, value] of Object.entries(source)) {
    const path = [...at, key];
    const existing = target[key];
    if (isTable(value) && isTable(existing)) {
      mergeInto(existing, value, file, origin, path);
    } else if (isTable(value)) {
      target[key] = {};
      mergeInto(target[key] as Table, value, file, origin, path);
    } else {
      target[key] = value;
      origin.set(path.join("."), file);
    }
  }
}

/** One line per issue: "FILE:LINE:COLUMN: KEY: what is wrong" (the position where it is known). */
function describeIssues(
  error: z.ZodError,
  origin: Map<string, string>,
  files: string[],
  texts: Map<string, string>,
): string {
  const at = (file: string, key: string) => {
    const position = keyPosition(texts.get(file) ?? "", key);
    return position ? `${file}:${position}` : file;
  };
  return error.issues
    .map((issue) => {
      const key = issue.path.map(String).join(".");
      const file = originOf(key, origin) ?? files.at(-1) ?? "built-in defaults";
      if (issue.code === "unrecognized_keys") {
        const keys = issue.keys.map((k) => (key ? `${key}.${k}` : k));
        const where = originOf(keys[0] ?? key, origin) ?? file;
        return `${at(where, keys[0] ?? key)}: unknown key ${keys.join(", ")}`;
      }
      return `${at(file, key)}: ${key || "(top level)"}: ${issue.message}`;
    })
    .join("\n");
}

/** The file that set this key, or for a table key the file that set any key inside it. */
function originOf(key: string, origin: Map<string, string>): string | undefined {
  const direct = origin.get(key);
  if (direct) return direct;
  for (const [k, file] of origin) if (k.startsWith(`${key}.`)) return file;
  return undefined;
}

function isTable(value: unknown): value is Table {
  return typeof value === "object" && value !== null && !Array.isArray(value) && !(value instanceof Date);
}

function exists(path: string): boolean {
  try {
    return statSync(path).isFile();
  } catch (error) {
    if (isMissing(error)) return false;
    throw new ConfigError(`${path}: ${(error as Error).message}`);
  }
}

function isMissing(error: unknown): boolean {
  return (error as NodeJS.ErrnoException).code === "ENOENT";
}
