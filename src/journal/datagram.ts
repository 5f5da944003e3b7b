import { createRequire } from "node:module";

// Unix datagram sockets (journald's native socket, $NOTIFY_SOCKET): Node has none of its own,
// so they come from the unix-dgram addon, kept behind this one module.

interface DgramSocket {
  on(event: "error", listener: (error: Error) => void): void;
  send(buffer: Buffer, offset: number, length: number, path: string, callback: (error?: Error) => void): void;
  close(): void;
}

const unixDgram = createRequire(import.meta.url)("unix-dgram") as {
  createSocket(type: "unix_dgram"): DgramSocket;
};

/** A socket for sending datagrams to filesystem paths; the caller closes it. */
export class DatagramSender {
  readonly #socket: DgramSocket;

  constructor() {
    this.#socket = unixDgram.createSocket("unix_dgram");
    // Send errors arrive through the callbacks below; this only keeps stray ones from crashing.
    this.#socket.on("error", () => undefined);
  }

  send(path: string, payload: Buffer): Promise<void> {
    return new Promise((resolve, reject) => {
      this.#socket.send(payload, 0, payload.length, path, (error) => (error ? reject(error) : resolve()));
    });
  }

  close(): void {
    this.#socket.close();
  }
}
