import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { defaultConfig } from "../../../src/config/schema.ts";
import { DaemonManager } from "../../../src/daemon/manager.ts";
import { createNotifier } from "../../../src/daemon/notify.ts";
import { ManualClock } from "../../../src/host/clock.ts";
import { createHost } from "../../../src/host/host.ts";
import { openJournal } from "../../../src/journal/journal.ts";
import { createMemoryLogger } from "../../../src/log/logger.ts";
import { bindDatagramSink } from "../../helpers/datagram.ts";
import { tempDir } from "../../helpers/tmp.ts";

describe("the daemon's watchdog", () => {
  it("pings while the loop ticks and stops when the loop hangs", async () => {
    const dir = tempDir();
    const sink = bindDatagramSink(dir, "notify");
    const logger = createMemoryLogger();
    // WATCHDOG_USEC 100 ms: a ping every 50 ms.
    const notifier = createNotifier({ logger, env: { NOTIFY_SOCKET: sink.path, WATCHDOG_USEC: "100000" } });
    const clock = new ManualClock(1_000_000);
    const manager = new DaemonManager({
      host: createHost(dir),
      clock,
      log: logger,
      journal: openJournal({ logger, socketPath: join(dir, "no-journald") }),
      notifier,
      store: undefined,
      state: () => ({
        ticks: 1,
        skippedTicks: 0,
        lastSampleMs: undefined,
        lastSampleAt: undefined,
        profile: undefined,
        phase: undefined,
        phaseChanges: 0,
        lacks: [],
      }),
      config: defaultConfig(),
      loadConfig: defaultConfig,
      version: "test",
    });
    const pings = () => sink.received.filter((b) => b.toString() === "WATCHDOG=1\n").length;
    try {
      manager.busReady();
      manager.startWatchdog(1000);
      manager.onSample();
      await sink.waitFor(1);
      expect(sink.received[0]?.toString()).toBe(
        "READY=1\nSTATUS=observe; phase unknown; scheduler no sched_ext\n",
      );
      await sink.waitFor(3);
      expect(pings()).toBeGreaterThanOrEqual(2);
      // The loop stops ticking: after 3 sample intervals and one ping interval, no more pings.
      clock.advance(3 * 1000 + 50 + 1);
      await new Promise((r) => setTimeout(r, 120));
      const stalled = pings();
      await new Promise((r) => setTimeout(r, 200));
      expect(pings()).toBe(stalled);
      // It ticks again: the pings resume.
      manager.onSample();
      await sink.waitFor(sink.received.length + 1);
      expect(pings()).toBeGreaterThan(stalled);
      // Stopping ends the pings and says so.
      manager.onStop();
      const stopping = () => sink.received.findIndex((b) => b.toString() === "STOPPING=1\n");
      while (stopping() < 0) await new Promise((r) => setTimeout(r, 10));
      await new Promise((r) => setTimeout(r, 120));
      expect(stopping()).toBe(sink.received.length - 1);
    } finally {
      manager.onStop();
      notifier.close();
      sink.close();
    }
  });
});
