// journald's native protocol: one datagram of fields. A value without a newline is written
// "KEY=value\n"; one with a newline (or any binary) as "KEY\n", its length as a 64-bit
// little-endian integer, the bytes, then "\n". Keys are A-Z, 0-9 and '_', not starting with '_'
// (those are trusted fields journald sets itself).

const KEY = /^[A-Z0-9][A-Z0-9_]{0,63}$/;

export type JournalFields = Record<string, string | number | undefined>;

export function encodeNative(fields: JournalFields): Buffer {
  const parts: Buffer[] = [];
  for (const [key, raw] of Object.entries(fields)) {
    if (raw === undefined) continue;
    if (!KEY.test(key)) throw new Error(`journal field name ${JSON.stringify(key)} is not A-Z, 0-9 and '_'`);
    const value = Buffer.from(String(raw), "utf8");
    if (value.includes(0x0a)) {
      const length = Buffer.alloc(8);
      length.writeBigUInt64LE(BigInt(value.length));
      parts.push(Buffer.from(`${key}\n`), length, value, Buffer.from("\n"));
    } else {
      parts.push(Buffer.from(`${key}=`), value, Buffer.from("\n"));
    }
  }
  return Buffer.concat(parts);
}
