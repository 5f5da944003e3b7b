import { z } from "zod";

// What a policy is, for every stage: its manifest (what it is for, what can be tuned) and a
// reference to one concrete variant (name + tunables + content hash).

export const PolicyOrigin = z.enum(["builtin", "external", "generated"]);
export type PolicyOrigin = z.infer<typeof PolicyOrigin>;

/** Workload classes a policy is meant for (the same labels as observe's WorkloadClass). */
export const PolicyWorkload = z.enum(["idle", "throughput", "latency", "io", "memory", "mixed"]);
export type PolicyWorkload = z.infer<typeof PolicyWorkload>;

export const Tunable = z.discriminatedUnion("type", [
  z.object({
    type: z.literal("int"),
    min: z.number().int(),
    max: z.number().int(),
    default: z.number().int(),
    unit: z.string().optional(),
    description: z.string(),
  }),
  z.object({ type: z.literal("bool"), default: z.boolean(), description: z.string() }),
  z.object({
    type: z.literal("enum"),
    options: z.array(z.string()).min(1),
    default: z.string(),
    description: z.string(),
  }),
  z.object({
    type: z.literal("cgroups"),
    /** Up to this many cgroup paths (relative to the cgroup2 mount). */
    maxItems: z.number().int().positive(),
    default: z.array(z.string()),
    description: z.string(),
  }),
]);
export type Tunable = z.infer<typeof Tunable>;

export const TunableValue = z.union([z.number(), z.boolean(), z.string(), z.array(z.string())]);
export type TunableValue = z.infer<typeof TunableValue>;
export const Tunables = z.record(z.string(), TunableValue);
export type Tunables = z.infer<typeof Tunables>;

export const Manifest = z.object({
  name: z.string().regex(/^[a-z][a-z0-9_-]{0,31}$/),
  origin: PolicyOrigin,
  summary: z.string(),
  workloads: z.array(PolicyWorkload),
  tunables: z.record(z.string().regex(/^[a-z][a-z0-9_]*$/), Tunable),
  /** Oldest kernel it runs on, "MAJOR.MINOR". */
  minKernel: z.string().regex(/^\d+\.\d+$/),
});
export type Manifest = z.infer<typeof Manifest>;

/** One concrete variant: everything needed to build it again and to find its verdict. */
export const PolicyRef = z.object({
  origin: PolicyOrigin,
  name: z.string(),
  tunables: Tunables,
  /** sha256 (hex) of the source (or binary) together with the tunables. */
  hash: z.string().regex(/^[0-9a-f]{64}$/),
});
export type PolicyRef = z.infer<typeof PolicyRef>;
