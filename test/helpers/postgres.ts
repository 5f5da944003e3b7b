import { execFileSync } from "node:child_process";
import { chmodSync, chownSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pg from "pg";
import { parseIntoClientConfig } from "pg-connection-string";
import { freePort } from "./port.ts";

// A throwaway PostgreSQL cluster from Debian's binaries: initdb and pg_ctl in a temporary
// directory, on 127.0.0.1 and a free port, password auth (scram) for TCP. Run as the postgres
// user when we are root (postgres refuses to run as root). Used by the fleet tests and bench.

const BIN = process.env.SCHEDCTL_PG_BIN ?? "/usr/lib/postgresql/15/bin";

export interface PgCluster {
  /** postgres://schedctl@127.0.0.1:PORT/postgres (no password: see passwordFile). */
  url: string;
  /** Root-only file with the user's password, as [fleet] password_file wants it. */
  passwordFile: string;
  /** The server killed at once (no shutdown checkpoint), as a crash or a pulled cable would. */
  kill(): void;
  start(): void;
  /** A fresh database in the cluster, its URL (a test of its own, a fleet of its own). */
  createDatabase(name: string): Promise<string>;
  /** Stops the server and removes everything. */
  destroy(): void;
}

export async function startPgCluster(): Promise<PgCluster> {
  const dir = mkdtempSync(join(tmpdir(), "schedctl-pg-"));
  const data = join(dir, "data");
  const password = `pw-${process.pid}-${Date.now()}`;
  const pwfile = join(dir, "initdb-password");
  writeFileSync(pwfile, `${password}\n`);
  const asRoot = process.getuid?.() === 0;
  if (asRoot) {
    const pg = Number(execFileSync("id", ["-u", "postgres"], { encoding: "utf8" }).trim());
    const gid = Number(execFileSync("id", ["-g", "postgres"], { encoding: "utf8" }).trim());
    chownSync(dir, pg, gid);
    chownSync(pwfile, pg, gid);
  }
  const run = (tool: string, args: string[]) =>
    execFileSync(
      asRoot ? "runuser" : join(BIN, tool),
      asRoot ? ["-u", "postgres", "--", join(BIN, tool), ...args] : args,
      { stdio: ["ignore", "pipe", "pipe"], encoding: "utf8" },
    );
  run("initdb", [
    "-D",
    data,
    "-U",
    "schedctl",
    `--pwfile=${pwfile}`,
    "--auth-host=scram-sha-256",
    "--auth-local=trust",
    "--no-sync",
  ]);
  const port = await freePort();
  const options = `-p ${port} -k ${dir} -c listen_addresses=127.0.0.1 -c fsync=off`;
  const start = () =>
    run("pg_ctl", ["-D", data, "-w", "-t", "30", "-l", join(dir, "log"), "-o", options, "start"]);
  const stop = (mode: string) => {
    try {
      run("pg_ctl", ["-D", data, "-w", "-m", mode, "stop"]);
    } catch {
      // already stopped
    }
  };
  start();
  const passwordFile = join(mkdtempSync(join(tmpdir(), "schedctl-pgpw-")), "fleet-password");
  writeFileSync(passwordFile, `${password}\n`);
  chmodSync(passwordFile, 0o600);
  const url = `postgres://schedctl@127.0.0.1:${port}/postgres`;
  return {
    url,
    passwordFile,
    kill: () => stop("immediate"),
    start,
    async createDatabase(name) {
      const client = new pg.Client({ ...parseIntoClientConfig(url), password });
      await client.connect();
      try {
        await client.query(`CREATE DATABASE ${name.replace(/[^a-z0-9_]/g, "_")}`);
      } finally {
        await client.end();
      }
      return url.replace(/\/postgres$/, `/${name}`);
    },
    destroy() {
      stop("fast");
      rmSync(dir, { recursive: true, force: true });
      rmSync(join(passwordFile, ".."), { recursive: true, force: true });
    },
  };
}
