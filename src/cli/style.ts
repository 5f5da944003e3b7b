// Terminal output: colour only on a terminal and never with NO_COLOR (https://no-color.org),
// times as a person reads them, aligned columns.

export interface Style {
  bold(text: string): string;
  dim(text: string): string;
  green(text: string): string;
  yellow(text: string): string;
  red(text: string): string;
}

export function styleFor(stream: { isTTY?: boolean }, env: NodeJS.ProcessEnv = process.env): Style {
  const on = Boolean(stream.isTTY) && !env.NO_COLOR && env.TERM !== "dumb";
  const wrap = (code: string) => (text: string) => (on ? `\x1b[${code}m${text}\x1b[0m` : text);
  return { bold: wrap("1"), dim: wrap("2"), green: wrap("32"), yellow: wrap("33"), red: wrap("31") };
}

/** "14:22:51", with the date in front when it is not today. */
export function clockTime(ms: number, now = Date.now()): string {
  const at = new Date(ms);
  const time = at.toTimeString().slice(0, 8);
  return at.toDateString() === new Date(now).toDateString() ? time : `${isoDate(at)} ${time}`;
}

export function timestamp(ms: number): string {
  const at = new Date(ms);
  return `${isoDate(at)} ${at.toTimeString().slice(0, 8)}`;
}

function isoDate(at: Date): string {
  const pad = (n: number) => String(n).padStart(2, "0");
  return `${at.getFullYear()}-${pad(at.getMonth() + 1)}-${pad(at.getDate())}`;
}

/** "45s", "12min", "3h 5min", "2 days". */
export function duration(ms: number): string {
  const s = Math.max(0, Math.round(ms / 1000));
  if (s < 60) return `${s}s`;
  const min = Math.floor(s / 60);
  if (min < 60) return `${min}min`;
  const h = Math.floor(min / 60);
  if (h < 48) return min % 60 ? `${h}h ${min % 60}min` : `${h}h`;
  return `${Math.floor(h / 24)} days`;
}

/**
 * Columns padded to their widest cell; the last column is not padded, and is cut with "…" when
 * a line would pass maxWidth (a terminal's width), as systemctl does.
 */
export function table(rows: string[][], maxWidth = Number.POSITIVE_INFINITY): string {
  const widths: number[] = [];
  for (const row of rows) {
    row.forEach((cell, i) => {
      widths[i] = Math.max(widths[i] ?? 0, plainLength(cell));
    });
  }
  return rows
    .map((row) => {
      const head = row
        .slice(0, -1)
        .map((cell, i) => `${cell}${" ".repeat((widths[i] ?? 0) - plainLength(cell))}  `)
        .join("");
      const room = maxWidth - plainLength(head);
      let last = row.at(-1) ?? "";
      if (plainLength(last) > room) last = `${last.slice(0, Math.max(0, room - 1))}…`;
      return `${head}${last}`.trimEnd();
    })
    .join("\n");
}

/** Length as shown on screen (escape sequences take no room). */
export function plainLength(text: string): number {
  // biome-ignore lint/suspicious/noControlCharactersInRegex: matching the escape sequences is the point
  return text.replace(/\x1b\[[0-9;]*m/g, "").length;
}

export function percent(fraction: number): string {
  return `${Math.round(fraction * 100)}%`;
}
