import { chmodSync, mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { CircuitBreaker } from "../../../src/decide/llm/breaker.ts";
import { Budget, costUsd } from "../../../src/decide/llm/budget.ts";
import { retryAfterMs } from "../../../src/decide/llm/http.ts";
import { ApiKeyError, readApiKey } from "../../../src/decide/llm/key.ts";
import { tempDir } from "../../helpers/tmp.ts";

describe("API key", () => {
  it("refuses a key file readable by group or others, saying how to fix it", () => {
    const dir = tempDir();
    const path = join(dir, "key");
    writeFileSync(path, "sk-secret\n");
    chmodSync(path, 0o644);
    expect(() => readApiKey({ keyFile: path })).toThrow(ApiKeyError);
    expect(() => readApiKey({ keyFile: path })).toThrow(
      /readable by group or others \(mode 644\); run chmod 600/,
    );
    chmodSync(path, 0o600);
    expect(readApiKey({ keyFile: path })).toBe("sk-secret");
  });

  it("prefers the systemd credential and reports a missing or empty file", () => {
    const dir = tempDir();
    mkdirSync(join(dir, "creds"));
    writeFileSync(join(dir, "creds", "llm-api-key"), "from-credential");
    writeFileSync(join(dir, "key"), "from-file", { mode: 0o600 });
    expect(readApiKey({ credentialsDirectory: join(dir, "creds"), keyFile: join(dir, "key") })).toBe(
      "from-credential",
    );
    expect(readApiKey({ credentialsDirectory: join(dir, "nothing-here"), keyFile: join(dir, "key") })).toBe(
      "from-file",
    );
    expect(() => readApiKey({ keyFile: join(dir, "missing") })).toThrow(/cannot read it: ENOENT/);
    writeFileSync(join(dir, "empty"), "  \n", { mode: 0o600 });
    expect(() => readApiKey({ keyFile: join(dir, "empty") })).toThrow(/empty/);
    expect(readApiKey({})).toBeUndefined();
  });

  it("treats the empty credential the package installs as no credential", () => {
    const dir = tempDir();
    mkdirSync(join(dir, "creds"));
    writeFileSync(join(dir, "creds", "llm-api-key"), "");
    writeFileSync(join(dir, "key"), "from-file", { mode: 0o600 });
    const credentialsDirectory = join(dir, "creds");
    expect(readApiKey({ credentialsDirectory, keyFile: join(dir, "key") })).toBe("from-file");
    expect(readApiKey({ credentialsDirectory })).toBeUndefined();
  });
});

describe("budget", () => {
  const limits = {
    callsPerHour: 2,
    callsPerDay: 3,
    tokensPerCall: 1000,
    tokensPerDay: 5000,
    costPerDayUsd: 1,
  };

  it("refuses once calls per hour or day, tokens per day or cost per day are spent", () => {
    let usage = { calls: 0, tokens: 0, costUsd: 0 };
    const budget = new Budget(
      limits,
      () => usage,
      () => 0,
    );
    expect(budget.refusal(100)).toBeUndefined();
    expect(budget.answerTokens(100)).toBe(900);
    expect(budget.refusal(900)).toMatch(/leaves no room for an answer within tokens_per_call=1000/);
    usage = { calls: 2, tokens: 0, costUsd: 0 };
    expect(budget.refusal(100)).toBe("calls_per_hour=2 reached");
    usage = { calls: 1, tokens: 4950, costUsd: 0 };
    expect(budget.refusal(100)).toBe("tokens_per_day=5000 reached");
    usage = { calls: 1, tokens: 0, costUsd: 1.5 };
    expect(budget.refusal(100)).toBe("cost_per_day_usd=1 reached");
  });

  it("prices tokens per million", () => {
    expect(costUsd({ inputPerMtok: 3, outputPerMtok: 15 }, 1_000_000, 100_000)).toBeCloseTo(4.5);
  });
});

describe("circuit breaker", () => {
  it("opens after consecutive failures, lets one trial through after the cooldown", () => {
    let now = 0;
    const breaker = new CircuitBreaker(2, 1000, () => now);
    breaker.failure();
    expect(breaker.allows()).toBe(true);
    breaker.failure();
    expect(breaker.state).toBe("open");
    now = 1000;
    expect(breaker.state).toBe("half-open");
    breaker.failure();
    expect(breaker.state).toBe("open");
    now = 2000;
    breaker.success();
    expect(breaker.state).toBe("closed");
  });
});

describe("Retry-After", () => {
  it("reads seconds and HTTP dates", () => {
    expect(retryAfterMs("2")).toBe(2000);
    expect(retryAfterMs(new Date(10_000).toUTCString(), 4_000)).toBe(6000);
    expect(retryAfterMs("soon")).toBeUndefined();
    expect(retryAfterMs(null)).toBeUndefined();
  });
});
