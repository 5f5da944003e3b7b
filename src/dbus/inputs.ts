import dbus from "dbus-next";
import { z } from "zod";
import { Tunables } from "../policies/types.ts";
import { Mode } from "./backend.ts";
import { ERROR } from "./names.ts";

// Every argument that arrives over the bus, validated before the daemon sees it. A refusal is
// org.freedesktop.DBus.Error.InvalidArgs with a message naming the argument and what was wrong.

const policyName = z
  .string()
  .regex(
    /^[a-z][a-z0-9_-]{0,31}$/,
    "a policy name is 1-32 characters of a-z, 0-9, '_' or '-', starting with a letter",
  );

/** Tunables travel as a JSON object in a string (busctl users can type it); "" means defaults. */
const tunablesJson = z.string().transform((text, ctx): Tunables => {
  if (text.trim() === "") return {};
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    ctx.addIssue({ code: "custom", message: `not valid JSON (${(error as Error).message})` });
    return z.NEVER;
  }
  const parsed = Tunables.safeParse(value);
  if (!parsed.success) {
    ctx.addIssue({
      code: "custom",
      message: 'a JSON object of name: number | boolean | string | [string], e.g. {"slice_us": 5000}',
    });
    return z.NEVER;
  }
  return parsed.data;
});

const MAX_SOURCE_BYTES = 256 * 1024;

export const ARGUMENTS = {
  GetStatus: { signature: "", schema: z.object({}) },
  ListPolicies: { signature: "", schema: z.object({}) },
  GetHistory: { signature: "u", schema: z.object({ limit: z.number().int().min(1).max(10_000) }) },
  Explain: { signature: "", schema: z.object({}) },
  SetMode: { signature: "s", schema: z.object({ mode: Mode }) },
  SwitchPolicy: { signature: "ss", schema: z.object({ name: policyName, tunables: tunablesJson }) },
  Rollback: { signature: "", schema: z.object({}) },
  VerifyPolicy: {
    signature: "s",
    schema: z.object({
      target: z.union([policyName, z.string().regex(/^\/[^\0]*$/, "an absolute path")], {
        error: "a policy name or an absolute path to a policy source",
      }),
    }),
  },
  CreatePolicy: {
    signature: "ss",
    schema: z.object({
      name: policyName,
      source: z
        .string()
        .min(1, "the source is empty")
        .refine(
          (s) => Buffer.byteLength(s) <= MAX_SOURCE_BYTES,
          `the source is larger than ${MAX_SOURCE_BYTES} bytes`,
        ),
    }),
  },
  Reload: { signature: "", schema: z.object({}) },
} as const;

export type ArgumentName = keyof typeof ARGUMENTS;
export type Arguments<N extends ArgumentName> = z.output<(typeof ARGUMENTS)[N]["schema"]>;

/** The validated arguments, or a DBusError InvalidArgs that says which one was wrong and how. */
export function parseArguments<N extends ArgumentName>(
  method: N,
  raw: Record<string, unknown>,
): Arguments<N> {
  const result = ARGUMENTS[method].schema.safeParse(raw);
  if (result.success) return result.data as Arguments<N>;
  const problems = result.error.issues.map(
    (issue) => `${issue.path.join(".") || "arguments"}: ${issue.message}`,
  );
  throw new dbus.DBusError(ERROR.invalidArgs, `${method}: ${problems.join("; ")}`);
}
