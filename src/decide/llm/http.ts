import { LlmCallError } from "./types.ts";

// One POST of JSON, with the failure kinds the client's retry logic needs.

const MAX_ERROR_BODY = 300;

export async function postJson(
  url: string,
  headers: Record<string, string>,
  body: unknown,
  signal: AbortSignal,
): Promise<unknown> {
  let response: Response;
  try {
    response = await fetch(url, {
      method: "POST",
      headers: { "content-type": "application/json", ...headers },
      body: JSON.stringify(body),
      signal,
    });
  } catch (error) {
    throw transportError(error, url, signal);
  }
  let text: string;
  try {
    text = await response.text();
  } catch (error) {
    throw transportError(error, url, signal);
  }
  if (!response.ok) {
    throw new LlmCallError(
      "http",
      `${url}: HTTP ${response.status}: ${text.slice(0, MAX_ERROR_BODY)}`,
      response.status,
      retryAfterMs(response.headers.get("retry-after")),
    );
  }
  try {
    return JSON.parse(text);
  } catch {
    throw new LlmCallError(
      "protocol",
      `${url}: the response body is not JSON: ${text.slice(0, MAX_ERROR_BODY)}`,
    );
  }
}

function transportError(error: unknown, url: string, signal: AbortSignal): LlmCallError {
  const reason: unknown = signal.aborted ? signal.reason : undefined;
  if (reason instanceof DOMException && reason.name === "TimeoutError") {
    return new LlmCallError("timeout", `${url}: no reply before the timeout`);
  }
  if (signal.aborted) return new LlmCallError("aborted", `${url}: cancelled`);
  return new LlmCallError("network", `${url}: ${(error as Error).message}`);
}

/** Retry-After is either delta-seconds or an HTTP date. */
export function retryAfterMs(value: string | null, now = Date.now()): number | undefined {
  if (value === null) return undefined;
  const seconds = Number(value.trim());
  if (Number.isFinite(seconds) && seconds >= 0) return seconds * 1000;
  const date = Date.parse(value);
  return Number.isNaN(date) ? undefined : Math.max(0, date - now);
}
