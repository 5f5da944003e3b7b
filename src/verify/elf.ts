import { readFileSync } from "node:fs";

// Just enough of ELF64 (little-endian, as clang -target bpf writes it) to read an object's
// sections: names, flags and contents. Used by the static rules on compiled policies.

export interface ElfSection {
  name: string;
  type: number;
  flags: number;
  data: Buffer;
}

export const SHF_EXECINSTR = 0x4;
export const SHT_PROGBITS = 1;

export class ElfError extends Error {
  override readonly name = "ElfError";
}

export function readElfSections(path: string): ElfSection[] {
  const file = readFileSync(path);
  if (file.length < 64 || file.readUInt32BE(0) !== 0x7f454c46) throw new ElfError(`${path}: not an ELF file`);
  if (file[4] !== 2 || file[5] !== 1) throw new ElfError(`${path}: not a little-endian ELF64 object`);
  const shoff = Number(file.readBigUInt64LE(0x28));
  const shentsize = file.readUInt16LE(0x3a);
  const shnum = file.readUInt16LE(0x3c);
  const shstrndx = file.readUInt16LE(0x3e);
  if (shoff + shnum * shentsize > file.length) throw new ElfError(`${path}: section table out of bounds`);
  const raw = Array.from({ length: shnum }, (_, i) => {
    const at = shoff + i * shentsize;
    const offset = Number(file.readBigUInt64LE(at + 0x18));
    const size = Number(file.readBigUInt64LE(at + 0x20));
    const type = file.readUInt32LE(at + 4);
    const nobits = type === 8;
    return {
      nameOffset: file.readUInt32LE(at),
      type,
      flags: Number(file.readBigUInt64LE(at + 8)),
      data: nobits ? Buffer.alloc(0) : file.subarray(offset, offset + size),
    };
  });
  const names = raw[shstrndx]?.data ?? Buffer.alloc(0);
  return raw.map((s) => {
    const end = names.indexOf(0, s.nameOffset);
    return {
      name: names.toString("latin1", s.nameOffset, end < 0 ? undefined : end),
      type: s.type,
      flags: s.flags,
      data: s.data,
    };
  });
}

/** BPF helper ids called from a program section (call with src_reg 0; kfunc and local calls use 1 or 2). */
export function helperCalls(code: Buffer): number[] {
  const ids: number[] = [];
  for (let at = 0; at + 8 <= code.length; at += 8) {
    const opcode = code[at]!;
    if (opcode === 0x18) {
      at += 8; // ld_imm64 spans two slots
      continue;
    }
    if (opcode === 0x85 && code[at + 1]! >> 4 === 0) ids.push(code.readInt32LE(at + 4));
  }
  return ids;
}
