import { chmodSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { dirname } from "node:path";
import type { DaemonMetrics } from "./registry.ts";

// Where the metrics go: a text file for node_exporter's textfile collector, replaced whole
// (written beside it, then renamed over it, so a scrape never reads half a file), and an HTTP
// listener on 127.0.0.1 that serves the same text at /metrics.

export type TextfileResult = { ok: true } | { ok: false; missingDirectory: boolean; message: string };

/**
 * Writes the metrics to `path` atomically. The collector reads only *.prom, so the file being
 * written is not one; it is made world-readable, since node_exporter runs as its own user and
 * the daemon's umask (0077) would hide it.
 */
export async function writeTextfile(metrics: DaemonMetrics, path: string): Promise<TextfileResult> {
  const text = await metrics.text();
  const partial = `${path}.${process.pid}.tmp`;
  try {
    writeFileSync(partial, text);
    chmodSync(partial, 0o644);
    renameSync(partial, path);
    return { ok: true };
  } catch (error) {
    rmSync(partial, { force: true });
    const code = (error as NodeJS.ErrnoException).code;
    return {
      ok: false,
      missingDirectory: code === "ENOENT",
      message: code === "ENOENT" ? `${dirname(path)} does not exist` : (error as Error).message,
    };
  }
}

export interface MetricsListener {
  port: number;
  close(): Promise<void>;
}

/** Serves GET /metrics on 127.0.0.1:port (0: a free port, for tests); nothing else. */
export async function listenMetrics(metrics: DaemonMetrics, port: number): Promise<MetricsListener> {
  const server: Server = createServer((req, res) => {
    const path = (req.url ?? "").split("?")[0];
    if (req.method !== "GET" || path !== "/metrics") {
      res.writeHead(404, { "content-type": "text/plain" }).end("only GET /metrics here\n");
      return;
    }
    metrics.text().then(
      (text) => res.writeHead(200, { "content-type": metrics.contentType }).end(text),
      (error: Error) => res.writeHead(500, { "content-type": "text/plain" }).end(`${error.message}\n`),
    );
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, "127.0.0.1", () => {
      server.off("error", reject);
      resolve();
    });
  });
  server.unref();
  return {
    port: (server.address() as AddressInfo).port,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
