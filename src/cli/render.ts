import type {
  DecisionSummary,
  Explanation,
  HistoryEntry,
  PolicyInfo,
  Status,
  Verdict,
} from "../dbus/backend.ts";
import type { Profile } from "../observe/types.ts";
import { forTerminalDeep } from "../text/untrusted.ts";
import { clockTime, duration, percent, type Style, table, timestamp } from "./style.ts";

// What the read commands print: a compact status screen in the manner of `systemctl status`,
// and aligned tables for the lists. Every value from the daemon is cleaned for the terminal on
// entry (cgroup paths, comm, rationales, reasons are hostile), before any colour is added.

const LABEL_WIDTH = "Pressure".length;

export function renderStatus(raw: Status, style: Style, now = Date.now()): string {
  const status = forTerminalDeep(raw);
  const { schedExt, activePolicy: policy, phase, llm } = status;
  const ours = policy !== null && schedExt.state === "enabled";
  const bullet = ours
    ? style.green("●")
    : schedExt.state === "unsupported"
      ? style.red("●")
      : style.yellow("●");
  const since = (ms: number) => `since ${clockTime(ms, now)} (${duration(now - ms)} ago)`;
  const rows: [string, string][] = [];

  const kernel =
    schedExt.state === "unsupported"
      ? style.red("no sched_ext in this kernel")
      : `sched_ext ${colourState(schedExt.state, style)}${schedExt.ops ? `, ops ${schedExt.ops}` : ""}`;
  rows.push(["Kernel", kernel]);
  rows.push([
    "Policy",
    policy
      ? `${style.bold(policy.name)} (${policy.origin}, ${policy.hash.slice(0, 8)}${tunablesText(policy.tunables)}) ${policy.state} ${since(policy.since)}`
      : "none: the kernel's default scheduler runs",
  ]);
  rows.push([
    "Phase",
    phase
      ? `${style.bold(phase.class)}, signature ${phase.signature}, ${since(phase.since)}`
      : "not known yet",
  ]);
  if (status.profile) rows.push(...profileRows(status.profile));
  rows.push([
    "LLM",
    llm.provider === "none"
      ? "not configured"
      : `${llm.provider}, ${llm.state}; ${llm.callsLeftHour} calls left this hour, ${llm.callsLeftDay} today, ${llm.tokensLeftDay} tokens; $${llm.spentUsdToday.toFixed(2)} spent today`,
  ]);
  if (status.fleet && status.fleet.state !== "off")
    rows.push([
      "Fleet",
      `${status.fleet.state === "connected" ? style.green(status.fleet.summary) : style.yellow(status.fleet.summary)}${status.fleet.lastSyncAt ? `; last sync ${clockTime(status.fleet.lastSyncAt, now)} (${duration(now - status.fleet.lastSyncAt)} ago)` : "; never synced"}`,
    ]);
  else if (status.fleet) rows.push(["Fleet", status.fleet.summary]);
  rows.push([
    "Daemon",
    `version ${status.version}, ${status.samples} samples, up ${duration(now - status.startedAt)}`,
  ]);

  // A fixed label column (the widest label), so screens line up whichever rows are present.
  const body = rows.map(([label, value]) => `${label.padStart(LABEL_WIDTH + 2)}: ${value}`);
  const lines = [`${bullet} schedctld - sched_ext autopilot, mode ${style.bold(status.mode)}`, ...body];
  if (status.lastDecisions.length > 0) {
    lines.push("", "Last decisions:", indent(decisionTable(status.lastDecisions, now)));
  }
  return `${lines.join("\n")}\n`;
}

function colourState(state: string, style: Style): string {
  if (state === "enabled") return style.green(state);
  if (state === "disabled") return state;
  return style.yellow(state);
}

function tunablesText(tunables: Record<string, unknown>): string {
  const entries = Object.entries(tunables);
  return entries.length === 0 ? "" : `, ${entries.map(([k, v]) => `${k}=${JSON.stringify(v)}`).join(" ")}`;
}

function profileRows(profile: Profile): [string, string][] {
  const f = profile.features;
  const rows: [string, string][] = [
    [
      "Load",
      `cpu ${percent(f.cpu_util)}, ${f.runnable_per_cpu.toFixed(2)} runnable/cpu, ${Math.round(f.ctxsw_per_sec_per_cpu)} ctxsw/s/cpu, ${Math.round(f.forks_per_sec)} forks/s`,
    ],
    [
      "Pressure",
      `cpu ${percent(f.psi_cpu_some)}, io ${percent(f.psi_io_some)}, memory ${percent(f.psi_memory_some)}${profile.lacks.length ? ` (lacking ${profile.lacks.join(", ")})` : ""}`,
    ],
  ];
  const top = [
    ...profile.topCgroups.slice(0, 1).map((c) => `${c.path} ${percent(c.cpuShare)}`),
    ...profile.topProcesses.slice(0, 2).map((p) => `${p.comm}[${p.pid}] ${percent(p.cpuShare)}`),
  ];
  if (top.length > 0) rows.push(["Busiest", top.join(", ")]);
  return rows;
}

function decisionTable(decisions: DecisionSummary[], now: number): string {
  return table(
    decisions.map((d) => [
      clockTime(d.at, now),
      d.policy,
      d.chooser,
      d.confidence.toFixed(2),
      d.outcome || "pending",
      d.rationale,
    ]),
  );
}

function indent(text: string): string {
  return text
    .split("\n")
    .map((line) => `  ${line}`)
    .join("\n");
}

export function renderPolicies(raw: PolicyInfo[], style: Style, width?: number): string {
  const policies = forTerminalDeep(raw);
  const rows = [["", "NAME", "ORIGIN", "VERDICT", "WORKLOADS", "SUMMARY"].map((h) => style.bold(h))];
  for (const p of policies) {
    const verdict =
      p.verdict === "pass" ? style.green(p.verdict) : p.verdict === "fail" ? style.red(p.verdict) : p.verdict;
    rows.push([
      p.active ? style.green("●") : " ",
      p.name,
      p.origin,
      verdict,
      p.workloads.join(","),
      p.summary,
    ]);
  }
  return `${table(rows, width)}\n`;
}

export function renderHistory(raw: HistoryEntry[], style: Style, width?: number): string {
  const entries = forTerminalDeep(raw);
  if (entries.length === 0) return "no history yet\n";
  const rows = [["TIME", "KIND", "SUMMARY"].map((h) => style.bold(h))];
  for (const e of entries) rows.push([timestamp(e.at), e.kind, e.summary]);
  return `${table(rows, width)}\n`;
}

export function renderExplanation(raw: Explanation, style: Style, now = Date.now()): string {
  const explanation = forTerminalDeep(raw);
  const lines = explanation.lines.map((line) => `${line}`);
  const { decision, verdict, profile, policy } = explanation;
  if (policy)
    lines.unshift(`${style.bold(policy.name)} runs (${policy.state} since ${clockTime(policy.since, now)})`);
  if (decision) {
    lines.push(
      `Decision: ${decision.policy} by ${decision.chooser} at ${clockTime(decision.at, now)}, confidence ${decision.confidence.toFixed(2)}: ${decision.rationale}`,
    );
  }
  if (profile) lines.push(`Triggered by: ${profile.class} profile, signature ${profile.signature}`);
  if (verdict) lines.push(`Verdict: ${verdictLine(verdict, style)}`);
  return `${lines.join("\n")}\n`;
}

/** The verdict's summary lines (its log is printed apart, with forTerminalBlock). */
export function verdictLine(raw: Verdict, style: Style): string {
  const verdict = forTerminalDeep({ ...raw, log: "" });
  const outcome = verdict.passed ? style.green("pass") : style.red("fail");
  const pairs = (o: Record<string, number> | undefined) =>
    Object.entries(o ?? {})
      .map(([k, v]) => `${k}=${Number.isInteger(v) ? v : v.toFixed(3)}`)
      .join(" ");
  const lines = [
    `${verdict.name} ${outcome} at ${verdict.stage} (${verdict.hash.slice(0, 12)})${verdict.admits ? ` for ${verdict.admits.join(", ")}` : ""}`,
  ];
  if (verdict.againstDefault) lines.push(`  against the kernel default: ${pairs(verdict.againstDefault)}`);
  const figures = pairs(verdict.figures);
  if (figures) lines.push(`  figures: ${figures}`);
  if (verdict.baseline) lines.push(`  kernel default, same boot: ${pairs(verdict.baseline)}`);
  if (verdict.compiledAgainst) lines.push(`  compiled against ${verdict.compiledAgainst}`);
  if (verdict.timings) lines.push(`  stage times (ms): ${pairs(verdict.timings)}`);
  return lines.join("\n");
}
