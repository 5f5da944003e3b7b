import { execFile } from "node:child_process";
import { DatagramSender } from "../journal/datagram.ts";
import type { Logger } from "../log/logger.ts";

// The sd_notify protocol: newline-separated VAR=VALUE assignments in one datagram to
// $NOTIFY_SOCKET. Without the variable (not started by systemd with Type=notify) every call
// is a no-op.

export interface Notifier {
  /** READY=1 with a STATUS= line: the first sample is taken and the bus name is owned. */
  ready(status: string): void;
  status(text: string): void;
  /** RELOADING=1 with MONOTONIC_USEC, as systemd wants it for Type=notify-reload units. */
  reloading(): void;
  stopping(): void;
  watchdog(): void;
  /** Half of $WATCHDOG_USEC in ms when the watchdog is enabled for this process. */
  readonly watchdogIntervalMs: number | undefined;
  close(): void;
}

export interface NotifierOptions {
  logger: Logger;
  env?: NodeJS.ProcessEnv;
  pid?: number;
}

export function createNotifier(options: NotifierOptions): Notifier {
  const env = options.env ?? process.env;
  const pid = options.pid ?? process.pid;
  const { logger } = options;
  const socket = env.NOTIFY_SOCKET;
  const send = socket ? sendTo(socket, logger) : undefined;
  const notify = (...lines: string[]) => send?.(lines);
  return {
    ready: (status) => notify("READY=1", `STATUS=${oneLine(status)}`),
    status: (text) => notify(`STATUS=${oneLine(text)}`),
    reloading: () => notify("RELOADING=1", `MONOTONIC_USEC=${monotonicUsec()}`),
    stopping: () => notify("STOPPING=1"),
    watchdog: () => notify("WATCHDOG=1"),
    watchdogIntervalMs: watchdogInterval(env, pid),
    close: () => send?.close(),
  };
}

/** Node's hrtime is CLOCK_MONOTONIC (libuv), the clock systemd compares MONOTONIC_USEC with. */
function monotonicUsec(): string {
  return (process.hrtime.bigint() / 1000n).toString();
}

function oneLine(text: string): string {
  return text.replace(/\s*\n\s*/g, "; ");
}

function watchdogInterval(env: NodeJS.ProcessEnv, pid: number): number | undefined {
  const usec = Number(env.WATCHDOG_USEC);
  if (!Number.isFinite(usec) || usec <= 0) return undefined;
  if (env.WATCHDOG_PID && Number(env.WATCHDOG_PID) !== pid) return undefined;
  return usec / 2000;
}

type Send = ((lines: string[]) => void) & { close(): void };

function sendTo(socket: string, logger: Logger): Send {
  const warn = (error: Error) => logger.warn({ error: error.message, socket }, "sd_notify failed");
  if (socket.startsWith("@")) {
    // An abstract socket: the datagram addon copies paths with strncpy and so cannot name one.
    // systemd-notify can; its messages come from its own pid, so such a unit needs
    // NotifyAccess=all (systemd itself hands services a path socket, /run/systemd/notify).
    const send = (lines: string[]) => {
      execFile("systemd-notify", lines, { env: { NOTIFY_SOCKET: socket } }, (error) => error && warn(error));
    };
    return Object.assign(send, { close: () => undefined });
  }
  const sender = new DatagramSender();
  const send = (lines: string[]) => {
    sender.send(socket, Buffer.from(`${lines.join("\n")}\n`)).catch(warn);
  };
  return Object.assign(send, { close: () => sender.close() });
}
