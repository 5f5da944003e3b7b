// Waiting in tests on something another process does: poll a probe until it gives a value.

/** Polls `probe` until it returns a value (not undefined or false); throws naming `what` on timeout. */
export async function until<T>(
  what: string,
  probe: () => T | undefined | false | Promise<T | undefined | false>,
  timeoutMs = 15_000,
  detail: () => string = () => "",
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined && value !== false) return value;
    if (Date.now() > deadline)
      throw new Error(`timed out waiting for ${what}${detail() ? `\n${detail()}` : ""}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
