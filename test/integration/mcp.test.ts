import { type ChildProcess, spawn } from "node:child_process";
import { join } from "node:path";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StdioClientTransport } from "@modelcontextprotocol/sdk/client/stdio.js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { firstLine, type PrivateBus, startPrivateBus, stopChild } from "../helpers/dbus.ts";

// The SDK's own MCP client drives `schedctl mcp`, which reaches the running service over D-Bus.

const CLI = join(import.meta.dirname, "../../src/cli/main.ts");
const ENTRY = join(import.meta.dirname, "dbus-service-entry.ts");

let bus: PrivateBus;
let service: ChildProcess;
let client: Client;

beforeAll(async () => {
  bus = await startPrivateBus({ policy: "open" });
  service = spawn(process.execPath, [ENTRY, "--address", bus.address], { stdio: ["pipe", "pipe", "ignore"] });
  expect(await firstLine(service, "the service")).toBe("ready");
  service.stdin!.write("phase latency lat-9e2 6.25\n");
  client = new Client({ name: "schedctl-test", version: "0.0.0" });
  await client.connect(
    new StdioClientTransport({
      command: process.execPath,
      args: [CLI, "mcp", "--address", bus.address],
      stderr: "pipe",
    }),
  );
});

afterAll(async () => {
  await client?.close();
  service?.stdin?.end();
  if (service) await stopChild(service);
  await bus?.stop();
});

async function callJson(name: string, args: Record<string, unknown> = {}) {
  const result = await client.callTool({ name, arguments: args });
  const [content] = result.content as { type: string; text: string }[];
  if (result.isError) throw new Error(content?.text);
  return JSON.parse(content!.text);
}

describe("schedctl mcp", () => {
  it("lists the tools with their input schemas", async () => {
    const { tools } = await client.listTools();
    expect(tools.map((t) => t.name).sort()).toEqual([
      "create_and_verify_policy",
      "deploy_policy",
      "history",
      "list_policies",
      "rollback",
      "system_monitor",
      "verify_policy",
      "workload_profile",
    ]);
    const deploy = tools.find((t) => t.name === "deploy_policy")!;
    expect(deploy.inputSchema).toMatchObject({ type: "object", required: ["name"] });
  });

  it("reads policies, the workload profile and the system state", async () => {
    expect((await callJson("list_policies")).map((p: { name: string }) => p.name)).toEqual([
      "simple",
      "batch",
    ]);
    expect(await callJson("workload_profile")).toMatchObject({
      phase: { class: "latency", signature: "lat-9e2" },
      profile: { features: { cpu_util: 0.92 } },
    });
    const monitor = await callJson("system_monitor");
    expect(monitor).toMatchObject({ mode: "auto", schedExt: { state: "disabled" } });
    expect(monitor).not.toHaveProperty("profile");
  });

  it("verifies, creates, deploys and rolls back through the daemon", async () => {
    expect(await callJson("verify_policy", { target: "batch" })).toMatchObject({
      name: "batch",
      passed: true,
    });
    expect(
      await callJson("create_and_verify_policy", {
        name: "agent_one",
        source: 'SCX_OPS_DEFINE(a, .name = "a");',
      }),
    ).toMatchObject({ name: "agent_one", passed: true });
    expect(await callJson("deploy_policy", { name: "batch" })).toMatchObject({
      policy: "batch",
      state: "probation",
    });
    expect(await callJson("rollback")).toMatchObject({ from: "batch", to: null });
    const history = await callJson("history", { limit: 3 });
    expect(history.map((h: { kind: string }) => h.kind)).toEqual(["rollback", "deploy", "verification"]);
  });

  it("hands the daemon's refusals back as tool errors", async () => {
    const result = await client.callTool({ name: "deploy_policy", arguments: { name: "nosuch" } });
    expect(result.isError).toBe(true);
    expect((result.content as { text: string }[])[0]!.text).toBe(
      'not-found: no policy named "nosuch" (see ListPolicies)',
    );
  });

  it("leaves authorization to the daemon: an unprivileged agent may read but not deploy", async () => {
    const agent = new Client({ name: "schedctl-test-nobody", version: "0.0.0" });
    await agent.connect(
      new StdioClientTransport({
        command: "setpriv",
        args: [
          "--reuid=65534",
          "--regid=65534",
          "--clear-groups",
          process.execPath,
          CLI,
          "mcp",
          "--address",
          bus.address,
        ],
        env: { PATH: process.env.PATH ?? "/usr/bin:/bin" },
        stderr: "pipe",
      }),
    );
    try {
      const read = await agent.callTool({ name: "list_policies", arguments: {} });
      expect(read.isError).toBeFalsy();
      const deploy = await agent.callTool({ name: "deploy_policy", arguments: { name: "simple" } });
      expect(deploy.isError).toBe(true);
      expect((deploy.content as { text: string }[])[0]!.text).toMatch(
        /^denied: SwitchPolicy needs root or group "schedctl": .*uid 65534/,
      );
    } finally {
      await agent.close();
    }
  });

  it("refuses malformed input before it reaches the daemon", async () => {
    const result = await client.callTool({ name: "deploy_policy", arguments: { name: "Not A Name" } });
    expect(result.isError).toBe(true);
    expect((result.content as { text: string }[])[0]!.text).toMatch(/Input validation error/);
  });
});
