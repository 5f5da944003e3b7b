import type { Manifest, Tunable, Tunables, TunableValue } from "./types.ts";

// Checking a policy's tunables against its manifest, and filling in defaults. An unknown name,
// a wrong type or a value out of range is an error naming the policy, the tunable, the value
// and what was allowed.

export class TunableError extends Error {
  override readonly name = "TunableError";
}

/** Every tunable of the manifest, given values checked and the rest at their defaults. */
export function resolveTunables(manifest: Manifest, given: Tunables = {}): Tunables {
  for (const name of Object.keys(given)) {
    if (!(name in manifest.tunables)) {
      const known = Object.keys(manifest.tunables).join(", ") || "none";
      throw new TunableError(`policy ${manifest.name}: unknown tunable "${name}" (known: ${known})`);
    }
  }
  const resolved: Tunables = {};
  for (const [name, spec] of Object.entries(manifest.tunables).sort(([a], [b]) => a.localeCompare(b))) {
    const value = given[name] ?? spec.default;
    checkValue(manifest.name, name, spec, value);
    resolved[name] = value;
  }
  return resolved;
}

function checkValue(policy: string, name: string, spec: Tunable, value: TunableValue): void {
  const where = `policy ${policy}: tunable ${name}=${JSON.stringify(value)}`;
  switch (spec.type) {
    case "int":
      if (typeof value !== "number" || !Number.isInteger(value))
        throw new TunableError(`${where} is not an integer`);
      if (value < spec.min || value > spec.max) {
        throw new TunableError(
          `${where} is out of range [${spec.min}, ${spec.max}]${spec.unit ? ` ${spec.unit}` : ""}`,
        );
      }
      return;
    case "bool":
      if (typeof value !== "boolean") throw new TunableError(`${where} is not a boolean`);
      return;
    case "enum":
      if (typeof value !== "string" || !spec.options.includes(value)) {
        throw new TunableError(`${where} is not one of ${spec.options.join(", ")}`);
      }
      return;
    case "cgroups":
      if (!Array.isArray(value) || value.some((v) => typeof v !== "string" || !v.startsWith("/"))) {
        throw new TunableError(`${where} is not a list of absolute cgroup paths`);
      }
      if (value.length > spec.maxItems)
        throw new TunableError(`${where} has more than ${spec.maxItems} cgroups`);
      return;
  }
}

/** A canonical JSON text of resolved tunables (sorted keys), for hashing and storage. */
export function canonicalTunables(tunables: Tunables): string {
  return JSON.stringify(Object.fromEntries(Object.entries(tunables).sort(([a], [b]) => a.localeCompare(b))));
}
