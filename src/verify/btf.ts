import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { z } from "zod";

// What the static rules need from an object's BTF, read with `bpftool -j btf dump file X.o`:
// the kfuncs it references (extern FUNCs) and the struct_ops variables with their layout.

const run = promisify(execFile);

const BtfType = z.looseObject({
  id: z.number(),
  kind: z.string(),
  name: z.string(),
  type_id: z.number().optional(),
  linkage: z.string().optional(),
  members: z.array(z.object({ name: z.string(), bits_offset: z.number() }).loose()).optional(),
  vars: z.array(z.object({ type_id: z.number(), offset: z.number(), size: z.number() })).optional(),
});
const BtfDump = z.object({ types: z.array(BtfType) });

export interface StructOpsVar {
  /** The ELF section holding it (".struct_ops.link" or ".struct_ops"). */
  section: string;
  variable: string;
  /** The struct it instantiates, e.g. "sched_ext_ops". */
  structName: string;
  /** Byte offset of the variable in its section. */
  offset: number;
  /** Byte offsets of the struct's members. */
  memberOffsets: Map<string, number>;
}

export interface ObjectBtf {
  externFuncs: string[];
  structOps: StructOpsVar[];
}

export async function readObjectBtf(objectPath: string, bpftool = "bpftool"): Promise<ObjectBtf> {
  let stdout: string;
  try {
    ({ stdout } = await run(bpftool, ["-j", "btf", "dump", "file", objectPath], { maxBuffer: 256 << 20 }));
  } catch (error) {
    const e = error as NodeJS.ErrnoException & { stderr?: string };
    if (e.code === "ENOENT") throw new Error(`${bpftool} not found: install bpftool >= 7.5`);
    throw new Error(
      `bpftool btf dump ${objectPath} failed (the object has no usable BTF? compile with -g): ${e.stderr ?? e.message}`,
    );
  }
  const parsed = BtfDump.safeParse(JSON.parse(stdout));
  if (!parsed.success)
    throw new Error(`bpftool btf dump ${objectPath}: unexpected output: ${parsed.error.message}`);
  return parseBtf(parsed.data.types);
}

function parseBtf(types: z.infer<typeof BtfType>[]): ObjectBtf {
  const byId = new Map(types.map((t) => [t.id, t]));
  const externFuncs = types.filter((t) => t.kind === "FUNC" && t.linkage === "extern").map((t) => t.name);
  const structOps: StructOpsVar[] = [];
  for (const sec of types) {
    if (sec.kind !== "DATASEC" || !sec.name.startsWith(".struct_ops")) continue;
    for (const v of sec.vars ?? []) {
      const variable = byId.get(v.type_id);
      const struct = resolveStruct(byId, variable?.type_id);
      structOps.push({
        section: sec.name,
        variable: variable?.name ?? "?",
        structName: struct?.name ?? "?",
        offset: v.offset,
        memberOffsets: new Map((struct?.members ?? []).map((m) => [m.name, m.bits_offset / 8])),
      });
    }
  }
  return { externFuncs, structOps };
}

function resolveStruct(byId: Map<number, z.infer<typeof BtfType>>, id: number | undefined) {
  let t = id === undefined ? undefined : byId.get(id);
  // Skip qualifiers and typedefs down to the struct.
  for (let i = 0; t && t.kind !== "STRUCT" && t.type_id !== undefined && i < 16; i++) t = byId.get(t.type_id);
  return t?.kind === "STRUCT" ? t : undefined;
}
