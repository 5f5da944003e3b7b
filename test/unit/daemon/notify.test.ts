import { describe, expect, it } from "vitest";
import { createNotifier } from "../../../src/daemon/notify.ts";
import { createMemoryLogger } from "../../../src/log/logger.ts";
import { bindDatagramSink } from "../../helpers/datagram.ts";
import { tempDir } from "../../helpers/tmp.ts";

describe("sd_notify", () => {
  it("speaks the protocol to $NOTIFY_SOCKET", async () => {
    const sink = bindDatagramSink(tempDir(), "notify");
    const notifier = createNotifier({
      logger: createMemoryLogger(),
      env: { NOTIFY_SOCKET: sink.path, WATCHDOG_USEC: "20000000", WATCHDOG_PID: "4242" },
      pid: 4242,
    });
    try {
      expect(notifier.watchdogIntervalMs).toBe(10_000);
      notifier.ready("phase throughput, policy batch (probation)");
      notifier.watchdog();
      const before = process.hrtime.bigint() / 1000n;
      notifier.reloading();
      const after = process.hrtime.bigint() / 1000n;
      notifier.status("phase idle\npolicy none");
      notifier.stopping();
      const [ready, watchdog, reloading, status, stopping] = (await sink.waitFor(5)).map((b) => b.toString());
      expect(ready).toBe("READY=1\nSTATUS=phase throughput, policy batch (probation)\n");
      expect(watchdog).toBe("WATCHDOG=1\n");
      expect(reloading).toMatch(/^RELOADING=1\nMONOTONIC_USEC=\d+\n$/);
      // CLOCK_MONOTONIC in microseconds, taken when the message was made.
      const usec = BigInt(/MONOTONIC_USEC=(\d+)/.exec(reloading!)![1]!);
      expect(usec >= before && usec <= after).toBe(true);
      expect(status).toBe("STATUS=phase idle; policy none\n");
      expect(stopping).toBe("STOPPING=1\n");
    } finally {
      notifier.close();
      sink.close();
    }
  });

  it("has no watchdog when it is meant for another process or not set", () => {
    const logger = createMemoryLogger();
    expect(
      createNotifier({ logger, env: { WATCHDOG_USEC: "1000000", WATCHDOG_PID: "1" }, pid: 2 })
        .watchdogIntervalMs,
    ).toBe(undefined);
    expect(createNotifier({ logger, env: {} }).watchdogIntervalMs).toBe(undefined);
  });

  it("does nothing without $NOTIFY_SOCKET", () => {
    const logger = createMemoryLogger();
    const notifier = createNotifier({ logger, env: {} });
    notifier.ready("x");
    notifier.stopping();
    expect(logger.records).toEqual([]);
  });
});
