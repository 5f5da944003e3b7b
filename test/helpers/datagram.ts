import { createRequire } from "node:module";
import { join } from "node:path";

// A real unix datagram socket bound in a test directory, standing where journald's socket or
// systemd's $NOTIFY_SOCKET would be, keeping every datagram it receives.

interface BoundSocket {
  on(event: "message", listener: (buffer: Buffer) => void): void;
  bind(path: string): void;
  close(): void;
}

const unixDgram = createRequire(import.meta.url)("unix-dgram") as {
  createSocket(type: "unix_dgram"): BoundSocket;
};

export interface DatagramSink {
  path: string;
  received: Buffer[];
  /** Resolves once at least `count` datagrams arrived. */
  waitFor(count: number, timeoutMs?: number): Promise<Buffer[]>;
  close(): void;
}

export function bindDatagramSink(dir: string, name = "socket"): DatagramSink {
  const path = join(dir, name);
  const received: Buffer[] = [];
  const socket = unixDgram.createSocket("unix_dgram");
  socket.on("message", (buffer) => received.push(Buffer.from(buffer)));
  socket.bind(path);
  return {
    path,
    received,
    async waitFor(count, timeoutMs = 5000) {
      const deadline = Date.now() + timeoutMs;
      while (received.length < count) {
        if (Date.now() > deadline) throw new Error(`expected ${count} datagrams, got ${received.length}`);
        await new Promise((r) => setTimeout(r, 10));
      }
      return received;
    },
    close: () => socket.close(),
  };
}
