import { type ChildProcess, spawn } from "node:child_process";
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";

// A private dbus-daemon for tests, in a temp directory every user may enter (tests also call
// it as an unprivileged uid). "open": anyone may own and call anything, so the service's own
// checks are what is tested; "system": default-deny like /etc/dbus-1/system.conf, with the
// given policy files included, so those files are what is tested.

export interface PrivateBus {
  address: string;
  stop(): Promise<void>;
}

export interface BusOptions {
  policy: "open" | "system";
  include?: string[];
}

const OPEN_POLICY = `
  <policy context="default">
    <allow user="*"/>
    <allow own="*"/>
    <allow send_destination="*"/>
    <allow receive_sender="*"/>
  </policy>`;

// The shape of Debian's system.conf: deny owning and calling, allow replies, signals and the
// bus driver itself.
const SYSTEM_POLICY = `
  <policy context="default">
    <allow user="*"/>
    <deny own="*"/>
    <deny send_type="method_call"/>
    <allow send_type="signal"/>
    <allow send_requested_reply="true" send_type="method_return"/>
    <allow send_requested_reply="true" send_type="error"/>
    <allow receive_type="method_call"/>
    <allow receive_type="method_return"/>
    <allow receive_type="error"/>
    <allow receive_type="signal"/>
    <allow send_destination="org.freedesktop.DBus" send_interface="org.freedesktop.DBus"/>
    <allow send_destination="org.freedesktop.DBus" send_interface="org.freedesktop.DBus.Introspectable"/>
    <allow send_destination="org.freedesktop.DBus" send_interface="org.freedesktop.DBus.Properties"/>
  </policy>`;

export async function startPrivateBus(options: BusOptions): Promise<PrivateBus> {
  const dir = mkdtempSync(join(tmpdir(), "schedctl-bus-"));
  chmodSync(dir, 0o755);
  const includes = (options.include ?? []).map((file) => `  <include>${file}</include>`).join("\n");
  writeFileSync(
    join(dir, "bus.conf"),
    `<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-BUS Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>schedctl-test</type>
  <listen>unix:path=${join(dir, "bus")}</listen>
  <auth>EXTERNAL</auth>
${options.policy === "open" ? OPEN_POLICY : SYSTEM_POLICY}
${includes}
</busconfig>
`,
  );
  const daemon = spawn(
    "dbus-daemon",
    [`--config-file=${join(dir, "bus.conf")}`, "--nofork", "--print-address=1"],
    {
      stdio: ["ignore", "pipe", "inherit"],
    },
  );
  const address = await firstLine(daemon, "dbus-daemon");
  return {
    address,
    async stop() {
      await stopChild(daemon);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Resolves with the child's first line of output; rejects if it exits first. */
export function firstLine(child: ChildProcess, what: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const lines = createInterface({ input: child.stdout! });
    lines.once("line", (line) => {
      lines.close();
      resolve(line.trim());
    });
    child.once("exit", (code) => reject(new Error(`${what} exited (${code}) before it was ready`)));
  });
}

export function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    child.once("exit", () => resolve());
    child.kill("SIGTERM");
  });
}

const DAEMON = join(import.meta.dirname, "../../src/daemon/main.ts");

/** The real schedctld, observe-only, serving `bus`: the service the integration tests talk to. */
export function spawnObservingDaemon(o: {
  bus: PrivateBus;
  config: string;
  stateDir: string;
  /** Default: the real host's /proc and /sys. */
  hostRoot?: string;
  stderr?: "pipe" | "inherit" | "ignore";
  env?: NodeJS.ProcessEnv;
}): ChildProcess {
  const args = [DAEMON, "--foreground", "--observe-only", "--config", o.config];
  if (o.hostRoot) args.push("--host-root", o.hostRoot);
  args.push("--state-dir", o.stateDir, "--bus", "session", "--bus-address", o.bus.address);
  return spawn(process.execPath, args, {
    stdio: ["ignore", "ignore", o.stderr ?? "pipe"],
    ...(o.env ? { env: o.env } : {}),
  });
}
