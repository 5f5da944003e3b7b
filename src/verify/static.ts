import { accessSync, constants, statSync } from "node:fs";
import { readObjectBtf, type StructOpsVar } from "./btf.ts";
import { type ElfSection, helperCalls, readElfSections, SHF_EXECINSTR } from "./elf.ts";
import { ALLOWED_HELPERS, GPL_LICENCES, kfuncAllowed, OPS_NAME_PREFIX } from "./rules.ts";
import type { BuiltCandidate } from "./types.ts";

// Stage 1: what can be decided without a kernel. Rules are checked on the compiled object
// (its sections, BTF and call instructions), so a macro or a cast in the source cannot hide
// a forbidden helper; the source itself is checked only for what the object cannot show.

export interface StaticOptions {
  maxTimeoutMs: number;
  bpftool?: string;
}

export type StaticResult = { ok: true; opsName: string; log: string } | { ok: false; log: string };

const PROGRAM_SECTION = /^struct_ops(\.s)?\/[A-Za-z0-9_]+$/;

export async function checkStatic(candidate: BuiltCandidate, options: StaticOptions): Promise<StaticResult> {
  switch (candidate.kind) {
    case "uncompilable":
      return { ok: false, log: `does not compile:\n${candidate.log}` };
    case "process":
      return checkExecutable(candidate.argv, candidate.opsName);
    case "object": {
      const problems = [...sourceProblems(candidate.source)];
      let opsName: string | undefined;
      try {
        const result = await objectProblems(candidate.objectPath, options);
        problems.push(...result.problems);
        opsName = result.opsName;
      } catch (error) {
        problems.push((error as Error).message);
      }
      if (problems.length > 0 || opsName === undefined) {
        return { ok: false, log: `static rules refused ${candidate.ref.name}:\n- ${problems.join("\n- ")}` };
      }
      return { ok: true, opsName, log: `static rules passed (ops ${opsName})` };
    }
  }
}

function checkExecutable(argv: string[], opsName: string): StaticResult {
  const binary = argv[0];
  if (!binary) return { ok: false, log: "external scheduler has an empty command line" };
  try {
    if (!statSync(binary).isFile()) return { ok: false, log: `${binary}: not a regular file` };
    accessSync(binary, constants.X_OK);
  } catch (error) {
    return { ok: false, log: `${binary}: not executable: ${(error as Error).message}` };
  }
  return { ok: true, opsName, log: `external scheduler ${binary} is executable` };
}

/** Rules only the source shows: no inline assembly, headers only from the include path. */
export function* sourceProblems(source: string): Generator<string> {
  const lines = source.split("\n");
  for (const [i, line] of lines.entries()) {
    const include = /^\s*#\s*include\s*[<"]([^>"]*)[>"]/.exec(line);
    if (include && (include[1]!.startsWith("/") || include[1]!.includes(".."))) {
      yield `line ${i + 1}: #include "${include[1]}" reaches outside the include path (include only vmlinux.h, schedctl.h and libbpf's <bpf/...> headers)`;
    }
    if (/\b(asm|__asm__|__asm)\b/.test(line))
      yield `line ${i + 1}: inline assembly is not allowed (write it in C; the verifier checks what clang emits)`;
  }
}

async function objectProblems(
  objectPath: string,
  options: StaticOptions,
): Promise<{ problems: string[]; opsName: string | undefined }> {
  const problems: string[] = [];
  const sections = readElfSections(objectPath);
  const programs = sections.filter((s) => (s.flags & SHF_EXECINSTR) !== 0 && s.data.length > 0);
  for (const s of programs) {
    if (s.name !== ".text" && !PROGRAM_SECTION.test(s.name)) {
      problems.push(
        `program section "${s.name}" is not a struct_ops program (use SEC("struct_ops/<name>") or SEC("struct_ops.s/<name>"))`,
      );
    }
    for (const id of helperCalls(s.data)) {
      if (!ALLOWED_HELPERS.has(id))
        problems.push(
          `${s.name}: calls BPF helper #${id}, which is not allow-listed (a scheduler needs no helper that reaches outside scheduling: remove the call)`,
        );
    }
  }
  if (!programs.some((s) => PROGRAM_SECTION.test(s.name)))
    problems.push(
      'no struct_ops program (define the callbacks with SEC("struct_ops/<name>") and BPF_PROG, or schedctl.h\'s SCX_OP)',
    );

  const licence = sections.find((s) => s.name === "license");
  const licenceText = licence ? cString(licence.data, 0, licence.data.length) : undefined;
  if (licenceText === undefined)
    problems.push('no "license" section (declare char _license[] SEC("license") = "GPL")');
  else if (!GPL_LICENCES.has(licenceText)) problems.push(`licence "${licenceText}" is not GPL-compatible`);

  const btf = await readObjectBtf(objectPath, options.bpftool);
  for (const name of btf.externFuncs) {
    if (!kfuncAllowed(name))
      problems.push(
        `references kfunc ${name}, which is not allow-listed (use the scx_bpf_* and bpf_cpumask_* kfuncs)`,
      );
  }
  const ops = checkStructOps(btf.structOps, sections, options.maxTimeoutMs, problems);
  return { problems, opsName: ops };
}

function checkStructOps(
  vars: StructOpsVar[],
  sections: ElfSection[],
  maxTimeoutMs: number,
  problems: string[],
): string | undefined {
  if (vars.length !== 1) {
    const names = vars.map((v) => `${v.variable} (${v.structName})`).join(", ") || "none";
    problems.push(`the object must hold exactly one struct_ops map, found ${vars.length}: ${names}`);
    return undefined;
  }
  const ops = vars[0]!;
  if (ops.structName !== "sched_ext_ops") {
    problems.push(
      `struct_ops map ${ops.variable} is a ${ops.structName}, not a sched_ext_ops (declare it as struct sched_ext_ops)`,
    );
    return undefined;
  }
  if (ops.section !== ".struct_ops.link") {
    problems.push(
      `struct_ops map ${ops.variable} must be in SEC(".struct_ops.link") (attached through a pinned link)`,
    );
  }
  const data = sections.find((s) => s.name === ops.section)?.data;
  const nameAt = ops.memberOffsets.get("name");
  const timeoutAt = ops.memberOffsets.get("timeout_ms");
  if (!data || nameAt === undefined || timeoutAt === undefined) {
    problems.push(`cannot read ${ops.variable}'s name and timeout_ms from the object`);
    return undefined;
  }
  const name = cString(data, ops.offset + nameAt, ops.offset + nameAt + 128);
  if (!name.startsWith(OPS_NAME_PREFIX) || !/^[a-z0-9_]+$/.test(name)) {
    problems.push(
      `ops name "${name}" must start with "${OPS_NAME_PREFIX}" and use only [a-z0-9_] (set .name = "${OPS_NAME_PREFIX}<policy>" in the ops table)`,
    );
  }
  const timeoutMs = data.readUInt32LE(ops.offset + timeoutAt);
  if (timeoutMs === 0)
    problems.push(
      `.timeout_ms is not set (the kernel would use its 30 s default): add .timeout_ms = 5000 (at most ${maxTimeoutMs}) to the ops table`,
    );
  else if (timeoutMs > maxTimeoutMs)
    problems.push(
      `.timeout_ms = ${timeoutMs} exceeds the maximum ${maxTimeoutMs}: lower it in the ops table`,
    );
  return name;
}

function cString(data: Buffer, start: number, end: number): string {
  const nul = data.indexOf(0, start);
  return data.toString("latin1", start, nul < 0 || nul > end ? end : nul);
}
