// hackbench (Debian's rt-tests): groups of senders and receivers passing messages over sockets,
// a wake-up-heavy load; the command line and its report read into the run's time.

export function hackbenchArgs(o: { groups: number; loops: number }): string[] {
  return [`--groups=${o.groups}`, `--loops=${o.loops}`];
}

/** Seconds the run took, from hackbench's `Time: S` line. */
export function parseHackbench(text: string): number {
  const match = /^Time: (\d+(?:\.\d+)?)\s*$/m.exec(text);
  if (!match) throw new Error(`hackbench printed no "Time:" line: ${JSON.stringify(text.slice(-200))}`);
  return Number(match[1]);
}
