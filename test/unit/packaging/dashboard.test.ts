import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { z } from "zod";
import { DaemonMetrics } from "../../../src/metrics/registry.ts";
import { runProgram } from "../../helpers/run.ts";

// The Grafana dashboard the package ships (etc/grafana/schedctl.json, installed under
// /usr/share/schedctl/grafana): it parses, every panel queries something, every query names only
// metrics schedctld's registry exports, and promtool (Debian's prometheus) parses each query.

const ROOT = join(import.meta.dirname, "../../..");
const Target = z.object({ refId: z.string(), expr: z.string().min(1), legendFormat: z.string() });
const Dashboard = z.object({
  title: z.string(),
  uid: z.string(),
  panels: z
    .array(
      z.object({
        id: z.number().int(),
        title: z.string().min(1),
        type: z.string(),
        targets: z.array(Target).min(1),
      }),
    )
    .min(1),
  templating: z.object({ list: z.array(z.object({ name: z.string(), definition: z.string() })) }),
});

const board = Dashboard.parse(JSON.parse(readFileSync(join(ROOT, "etc/grafana/schedctl.json"), "utf8")));
const queries = [
  ...board.panels.flatMap((p) => p.targets.map((t) => ({ where: `${p.title} ${t.refId}`, expr: t.expr }))),
  ...board.templating.list.map((v) => ({ where: `variable ${v.name}`, expr: v.definition })),
];
const metricsIn = (expr: string) => [...expr.matchAll(/\bschedctl_\w+/g)].map((m) => m[0]);

describe("the shipped Grafana dashboard", () => {
  it("asks only for metrics the registry exports, each query at least one", async () => {
    const exported = new Set(await new DaemonMetrics().names());
    for (const { where, expr } of queries) {
      expect(metricsIn(expr), where).not.toEqual([]);
      for (const name of metricsIn(expr)) expect(exported.has(name), `${where}: ${name}`).toBe(true);
    }
    expect(new Set(board.panels.map((p) => p.id)).size).toBe(board.panels.length);
  });

  it("has queries promtool parses, Grafana's variables filled in as Grafana would", async () => {
    const dir = mkdtempSync(join(tmpdir(), "schedctl-dashboard-"));
    try {
      const rules = board.panels.flatMap((p) =>
        p.targets.map((t, i) => ({
          record: `schedctl:panel_${p.id}_${i}`,
          expr: t.expr.replaceAll("$__rate_interval", "5m").replaceAll("$instance", ".*"),
        })),
      );
      const file = join(dir, "rules.yml");
      // YAML is a superset of JSON: the rule file needs no YAML writer.
      writeFileSync(file, JSON.stringify({ groups: [{ name: "schedctl-dashboard", rules }] }));
      const check = await runProgram("promtool", ["check", "rules", file]);
      expect(check.code, check.stdout + check.stderr).toBe(0);
      expect(check.stdout).toContain(`${rules.length} rules found`);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("is installed by the package under /usr/share/schedctl", () => {
    const install = readFileSync(join(ROOT, "debian/schedctl.install"), "utf8");
    expect(install).toMatch(/^etc\/grafana\/schedctl\.json usr\/share\/schedctl\/grafana$/m);
  });
});
