import { readFileSync } from "node:fs";
import { Manifest } from "./types.ts";

// Reading a policy manifest (NAME.json beside NAME.bpf.c) with errors that say which file and
// which field is wrong.

export class ManifestError extends Error {
  override readonly name = "ManifestError";
}

export function parseManifest(text: string, where: string): Manifest {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (error) {
    throw new ManifestError(`${where}: not valid JSON: ${(error as Error).message}`);
  }
  const parsed = Manifest.safeParse(raw);
  if (!parsed.success) {
    const issues = parsed.error.issues.map((i) => `${i.path.join(".") || "(root)"}: ${i.message}`);
    throw new ManifestError(`${where}: invalid manifest: ${issues.join("; ")}`);
  }
  for (const [name, spec] of Object.entries(parsed.data.tunables)) {
    const bad =
      (spec.type === "int" && (spec.min > spec.max || spec.default < spec.min || spec.default > spec.max)) ||
      (spec.type === "enum" && !spec.options.includes(spec.default)) ||
      (spec.type === "cgroups" && spec.default.length > spec.maxItems);
    if (bad) throw new ManifestError(`${where}: tunable ${name}: default outside its own range or options`);
  }
  return parsed.data;
}

export function readManifest(path: string): Manifest {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (error) {
    throw new ManifestError(`${path}: cannot read: ${(error as Error).message}`);
  }
  return parseManifest(text, path);
}
