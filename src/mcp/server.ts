import { McpServer } from "@modelcontextprotocol/sdk/server/mcp.js";
import { StdioServerTransport } from "@modelcontextprotocol/sdk/server/stdio.js";
import { z } from "zod";
import packageJson from "../../package.json" with { type: "json" };
import { ClientError, type ManagerClient } from "../dbus/client.ts";
import { TunableValue } from "../policies/types.ts";
import { forPrompt, toJson } from "../text/untrusted.ts";

// `schedctl mcp`: the daemon's tools for AI agents, over MCP on stdio. A thin client: every tool
// is one D-Bus call, so the daemon keeps every safety check and authorization (the agent acts
// with the uid that started `schedctl mcp`).

type ToolResult = { content: { type: "text"; text: string }[]; isError?: boolean };

async function answer(work: () => Promise<unknown>): Promise<ToolResult> {
  try {
    return { content: [{ type: "text", text: toJson(await work(), 2) }] };
  } catch (error) {
    if (!(error instanceof ClientError)) throw error;
    return {
      content: [{ type: "text", text: `${error.kind}: ${forPrompt(error.message, 4000)}` }],
      isError: true,
    };
  }
}

const policyName = z
  .string()
  .regex(/^[a-z][a-z0-9_-]{0,31}$/)
  .describe("a policy name from list_policies");

export function createMcpServer(client: ManagerClient): McpServer {
  const server = new McpServer({ name: "schedctl", version: packageJson.version });
  const read = { readOnlyHint: true, openWorldHint: false };

  server.registerTool(
    "list_policies",
    {
      description:
        "The sched_ext policies schedctld can deploy: what each is for, its tunables (type, range, default), its verification verdict and whether it runs now.",
      annotations: read,
    },
    () => answer(() => client.policies()),
  );
  server.registerTool(
    "workload_profile",
    {
      description:
        "The host's current workload: its phase (class and signature), the feature rates (CPU use, run-queue delay, context switches, PSI pressure, forks) and the busiest cgroups and processes.",
      annotations: read,
    },
    () =>
      answer(async () => {
        const status = await client.status();
        return { phase: status.phase, profile: status.profile };
      }),
  );
  server.registerTool(
    "system_monitor",
    {
      description:
        "The scheduler's state as the kernel reports it (sched_ext state and attached ops), the active policy and its deployment state, the mode, the LLM budget and the last decisions.",
      annotations: read,
    },
    () =>
      answer(async () => {
        const { profile: _profile, ...rest } = await client.status();
        return rest;
      }),
  );
  server.registerTool(
    "verify_policy",
    {
      description:
        "Verify a catalogue policy (by name) or a policy source file the daemon can read (absolute path): compile, static rules, the kernel's BPF verifier, a sandbox run. Returns the verdict.",
      inputSchema: {
        target: z
          .union([policyName, z.string().regex(/^\//, "an absolute path")])
          .describe("a policy name or an absolute path"),
      },
    },
    ({ target }) => answer(() => client.verifyPolicy(target)),
  );
  server.registerTool(
    "create_and_verify_policy",
    {
      description:
        "Submit the C source of a new sched_ext policy (struct_ops, SCX_OPS_DEFINE). The daemon verifies it fully; when it passes it joins the catalogue as a generated policy that deploy_policy can use.",
      inputSchema: {
        name: policyName.describe("the name for the new policy"),
        source: z
          .string()
          .min(1)
          .max(256 * 1024)
          .describe("the complete BPF C source"),
      },
    },
    ({ name, source }) => answer(() => client.createPolicy(name, source)),
  );
  server.registerTool(
    "deploy_policy",
    {
      description:
        "Deploy a verified policy now, with optional tunables. It runs on probation: if the host gets worse the daemon rolls it back by itself. Needs root or group schedctl.",
      inputSchema: {
        name: policyName,
        tunables: z.record(z.string(), TunableValue).optional().describe("tunable name -> value"),
      },
      annotations: { destructiveHint: false, openWorldHint: false },
    },
    ({ name, tunables }) => answer(() => client.switchPolicy(name, tunables ?? {})),
  );
  server.registerTool(
    "rollback",
    {
      description:
        "Go back to the previous policy, or to the kernel's default scheduler. Needs root or group schedctl.",
      annotations: { openWorldHint: false },
    },
    () => answer(() => client.rollback()),
  );
  server.registerTool(
    "history",
    {
      description:
        "The audit trail, newest first: phase changes, decisions, verifications, deployments, rollbacks.",
      inputSchema: { limit: z.number().int().min(1).max(1000).default(20).describe("how many entries") },
      annotations: read,
    },
    ({ limit }) => answer(() => client.history(limit)),
  );
  return server;
}

/** Serves MCP on standard input/output until the client closes it. */
export async function serveMcp(client: ManagerClient): Promise<void> {
  const server = createMcpServer(client);
  const closed = new Promise<void>((resolve) => {
    server.server.onclose = resolve;
    // The transport does not watch for the end of its input; the client going away is the end.
    process.stdin.once("end", resolve);
  });
  await server.connect(new StdioServerTransport());
  await closed;
}
