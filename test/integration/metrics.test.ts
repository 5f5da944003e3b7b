import { type ChildProcess, spawn } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { stopChild } from "../helpers/dbus.ts";
import { freePort } from "../helpers/port.ts";
import { writeCgroup, writeSystem } from "../helpers/proc-tree.ts";
import { runProgram } from "../helpers/run.ts";
import { until } from "../helpers/until.ts";

// schedctld's metrics read by Debian's own tools: the real daemon (observe-only, on a fixture
// host) writes its textfile into a temporary directory and serves its listener on a free port;
// Debian's prometheus-node-exporter reads that directory through its textfile collector and
// serves it, and promtool (from Debian's prometheus) lints what each of them serves.

const DAEMON = join(import.meta.dirname, "../../src/daemon/main.ts");
let dir: string;
let textDir: string;
let daemon: ChildProcess;
let exporter: ChildProcess;
let daemonPort: number;
let exporterPort: number;
let stderr = "";

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "schedctl-metrics-"));
  textDir = join(dir, "node-exporter");
  mkdirSync(textDir);
  const host = join(dir, "host");
  writeSystem(host, { busy: [500, 400], idle: [1500, 1600], ctxt: 9000, forks: 300, running: 2, blocked: 0 });
  writeCgroup(host, "/", { usage: 1_000_000 });
  daemonPort = await freePort();
  writeFileSync(
    join(dir, "schedctl.toml"),
    `[daemon]\nsample_interval_ms = 200\n[metrics]\ntextfile = "${textDir}/schedctl.prom"\nhttp_port = ${daemonPort}\n`,
  );
  daemon = spawn(
    process.execPath,
    [
      DAEMON,
      "--foreground",
      "--observe-only",
      "--bus",
      "none",
      "--config",
      join(dir, "schedctl.toml"),
    ].concat(["--host-root", host, "--state-dir", join(dir, "state")]),
    { stdio: ["ignore", "ignore", "pipe"] },
  );
  daemon.stderr?.on("data", (chunk: Buffer) => {
    stderr += chunk.toString();
  });
  await until(
    "the daemon's textfile after a few samples",
    () => {
      const path = join(textDir, "schedctl.prom");
      return existsSync(path) && / ([3-9]|\d\d+)$/m.test(countLine(readFileSync(path, "utf8")));
    },
    30_000,
    () => stderr.slice(-2000),
  );
  exporterPort = await freePort();
  exporter = spawn(
    "prometheus-node-exporter",
    [
      "--collector.disable-defaults",
      "--collector.textfile",
      `--collector.textfile.directory=${textDir}`,
      `--web.listen-address=127.0.0.1:${exporterPort}`,
    ],
    { stdio: "ignore" },
  );
  await until("node_exporter to serve", () => scrape(exporterPort).catch(() => undefined), 15_000);
}, 60_000);

afterAll(async () => {
  if (exporter) await stopChild(exporter);
  if (daemon) await stopChild(daemon);
  rmSync(dir, { recursive: true, force: true });
});

function countLine(text: string): string {
  return /^schedctl_sample_duration_seconds_count .*$/m.exec(text)?.[0] ?? "";
}

async function scrape(port: number): Promise<string> {
  const response = await fetch(`http://127.0.0.1:${port}/metrics`);
  if (!response.ok) throw new Error(`HTTP ${response.status}`);
  return response.text();
}

async function promtool(text: string) {
  return runProgram("promtool", ["check", "metrics"], { input: text });
}

describe("schedctld's metrics through Debian's node_exporter and promtool", () => {
  it("node_exporter's textfile collector reads the file and serves every schedctl metric; promtool passes it", async () => {
    const served = await scrape(exporterPort);
    expect(served).toMatch(/^node_textfile_scrape_error 0$/m);
    const file = readFileSync(join(textDir, "schedctl.prom"), "utf8");
    // Families with samples: node_exporter leaves out the ones no event has touched yet.
    const names = (text: string) => new Set([...text.matchAll(/^(schedctl_\w+)[{ ]/gm)].map((m) => m[1]));
    expect([...names(file)].length).toBeGreaterThan(10);
    expect(names(served)).toEqual(names(file));
    expect(served).toMatch(/^schedctl_mode_info\{mode="observe"\} 1$/m);
    expect(served).toMatch(/^schedctl_phase_info\{class="\w+",signature="[^"]+"\} 1$/m);
    expect(served).toMatch(/^schedctl_process_resident_memory_bytes [1-9]/m);
    const check = await promtool(served);
    expect(check, check.stdout + check.stderr).toMatchObject({ code: 0, stderr: "" });
  });

  it("replaces the file whole each sample period, world-readable for node_exporter's own user", async () => {
    const path = join(textDir, "schedctl.prom");
    const first = countLine(readFileSync(path, "utf8"));
    await until("a later sample in the file", () => countLine(readFileSync(path, "utf8")) !== first, 10_000);
    expect(statSync(path).mode & 0o777).toBe(0o644);
    // Written beside it and renamed: no partial file is left for the collector (it reads *.prom).
    const check = await promtool(readFileSync(path, "utf8"));
    expect(check.code, check.stdout + check.stderr).toBe(0);
  });

  it("serves the same metrics on its 127.0.0.1 listener, and nothing but GET /metrics", async () => {
    const text = await scrape(daemonPort);
    expect(text).toMatch(/^schedctl_sample_duration_seconds_count [1-9]/m);
    const check = await promtool(text);
    expect(check, check.stdout + check.stderr).toMatchObject({ code: 0, stderr: "" });
    expect((await fetch(`http://127.0.0.1:${daemonPort}/`)).status).toBe(404);
    expect((await fetch(`http://127.0.0.1:${daemonPort}/metrics`, { method: "POST" })).status).toBe(404);
  });
});
