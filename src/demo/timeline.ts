import type { Metric } from "../sandbox/tools/parser.ts";
import type { PhaseRecord, PolicySpan, RunRecord } from "./kpi.ts";

// The day as a picture: the phases over time, the scheduler the kernel ran (the default run and
// the autopilot run), and one KPI round by round for both (the day's first phase of work's, in
// every phase that measures it). Pure: a model in, SVG text out; the caller writes it (and
// converts it to PNG where it can).

export interface TimelineModel {
  title: string;
  subtitle: string;
  /** Seconds shown on the x axis. */
  duration: number;
  phases: { name: string; idle: boolean; from: number; to: number }[];
  lanes: { label: string; spans: PolicySpan[]; markers: { t: number; label: string }[] }[];
  series: { label: string; color: string; points: { t: number; value: number }[] }[];
  /** Unit of the series' values, for the axis. */
  unit: string;
  /** What the series are, for the axis. */
  measure: string;
}

const IDLE_COLOUR = "#eeeeee";
/** Phases of work take these in the order the day first meets them. */
const PHASE_COLOURS = ["#fde2c8", "#d6e8f7", "#dff2d8", "#eadcf5", "#fff3b0", "#d9f0f0", "#f5d6e0"];

/** The KPI the picture follows: its name and meaning, and which phases measure it. */
export interface PictureKpi extends Metric {
  /** The phase it is the KPI of. */
  of: string;
  metric: string;
  /** The phases (by index) whose rounds carry it. */
  phases: ReadonlySet<number>;
}
const POLICY_COLOURS = ["#4e79a7", "#f28e2b", "#59a14f", "#b07aa1", "#76b7b2", "#edc948", "#9c755f"];
export const DEFAULT_COLOUR = "#bab0ac";
export const AUTOPILOT_COLOUR = "#2a6fdb";

/** The model for one default run against one autopilot run, times from each run's first phase. */
export function timelineModel(
  baseline: RunRecord,
  autopilot: RunRecord,
  subtitle: string,
  kpi: PictureKpi,
  idle: ReadonlySet<number>,
): TimelineModel {
  // Microseconds read better as milliseconds on a log axis.
  const us = kpi.metric.endsWith("_us");
  const origin = (run: RunRecord) => run.phases[0]?.start ?? run.start;
  const shift = (run: RunRecord, t: number) => t - origin(run);
  const duration = Math.max(
    ...[baseline, autopilot].map((r) => shift(r, r.phases.at(-1)?.end ?? r.start)),
    1,
  );
  const lane = (run: RunRecord, label: string) => ({
    label,
    spans: run.policies.map((s) => ({ ...s, from: shift(run, s.from), to: shift(run, s.to) })),
    markers: [
      ...run.ejections.map((t) => ({ t: shift(run, t), label: "ejected" })),
      ...run.daemon
        .filter((d) => d.event === "rollback")
        .map((d) => ({ t: shift(run, d.t), label: "rollback" })),
    ],
  });
  const points = (run: RunRecord) =>
    run.phases.flatMap((p: PhaseRecord) =>
      kpi.phases.has(p.phase)
        ? p.rounds.flatMap((r) => {
            const v = r.figures[kpi.metric];
            return v === undefined ? [] : [{ t: shift(run, r.end), value: us ? v / 1000 : v }];
          })
        : [],
    );
  const what = `${kpi.of} ${us ? kpi.label.replace(/ us$/, "") : kpi.label}`;
  return {
    title: "schedctl autopilot: a day of workloads on the sched_ext kernel",
    subtitle,
    duration,
    phases: baseline.phases.map((p) => ({
      name: p.name,
      idle: idle.has(p.phase),
      from: shift(baseline, p.start),
      to: shift(baseline, p.end),
    })),
    lanes: [lane(baseline, "kernel default"), lane(autopilot, "autopilot")],
    series: [
      { label: `${what}, kernel default`, color: DEFAULT_COLOUR, points: points(baseline) },
      { label: `${what}, autopilot`, color: AUTOPILOT_COLOUR, points: points(autopilot) },
    ],
    unit: us ? "ms" : (kpi.label.split(" ").at(-1) ?? ""),
    measure: `${what}${kpi.better === "higher" ? ", higher is better" : ""}`,
  };
}

const esc = (s: string) =>
  s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;");
const r1 = (v: number) => Math.round(v * 10) / 10;

export function renderTimeline(model: TimelineModel): string {
  const width = 1000;
  const left = 130;
  const right = 20;
  const plotW = width - left - right;
  const x = (t: number) => r1(left + (Math.min(Math.max(t, 0), model.duration) / model.duration) * plotW);
  const out: string[] = [];
  let y = 0;
  out.push(`<text x="${left}" y="28" font-size="18" font-weight="bold">${esc(model.title)}</text>`);
  // The subtitle's clauses (split at "; ") go on lines of their own.
  const sub = model.subtitle.split("; ");
  sub.forEach((line, i) => {
    out.push(`<text x="${left}" y="${48 + 15 * i}" font-size="12" fill="#555">${esc(line)}</text>`);
  });
  y = 64 + 15 * (sub.length - 1);

  // Phases.
  out.push(`<text x="${left - 8}" y="${y + 17}" text-anchor="end" font-size="12">phase</text>`);
  const phaseColours = new Map<string, string>();
  for (const p of model.phases) {
    if (!p.idle && !phaseColours.has(p.name))
      phaseColours.set(p.name, PHASE_COLOURS[phaseColours.size % PHASE_COLOURS.length]!);
    const fill = p.idle ? IDLE_COLOUR : phaseColours.get(p.name)!;
    out.push(
      `<rect x="${x(p.from)}" y="${y}" width="${r1(x(p.to) - x(p.from))}" height="26" fill="${fill}" stroke="#999" stroke-width="0.5"/>`,
      `<text x="${r1((x(p.from) + x(p.to)) / 2)}" y="${y + 17}" text-anchor="middle" font-size="12">${esc(p.name)}</text>`,
    );
  }
  y += 38;

  // Policy lanes.
  const colours = new Map<string, string>([["default", DEFAULT_COLOUR]]);
  const colourOf = (policy: string) => {
    if (!colours.has(policy))
      colours.set(policy, POLICY_COLOURS[(colours.size - 1) % POLICY_COLOURS.length]!);
    return colours.get(policy)!;
  };
  for (const lane of model.lanes) {
    out.push(
      `<text x="${left - 8}" y="${y + 15}" text-anchor="end" font-size="12">${esc(lane.label)}</text>`,
    );
    for (const s of lane.spans) {
      const w = x(s.to) - x(s.from);
      out.push(`<rect x="${x(s.from)}" y="${y}" width="${r1(w)}" height="22" fill="${colourOf(s.policy)}"/>`);
      if (w > 8 + 6.5 * shortName(s.policy).length)
        out.push(
          `<text x="${r1(x(s.from) + 4)}" y="${y + 15}" font-size="11" fill="#fff">${esc(shortName(s.policy))}</text>`,
        );
    }
    for (const m of lane.markers) {
      const mx = x(m.t);
      out.push(
        `<path d="M${mx - 5},${y - 6} L${mx + 5},${y - 6} L${mx},${y + 2} Z" fill="#d62728"><title>${esc(m.label)}</title></path>`,
      );
    }
    y += 32;
  }

  // Latency chart, log scale.
  const chartTop = y + 10;
  const chartH = 200;
  const all = model.series.flatMap((s) => s.points.map((p) => p.value)).filter((v) => v > 0);
  const lo = all.length ? 10 ** Math.floor(Math.log10(Math.min(...all))) : 0.1;
  const hi = all.length ? 10 ** Math.ceil(Math.log10(Math.max(...all))) : 100;
  const yOf = (v: number) =>
    r1(
      chartTop +
        chartH -
        ((Math.log10(Math.max(v, lo)) - Math.log10(lo)) / (Math.log10(hi) - Math.log10(lo) || 1)) * chartH,
    );
  out.push(
    `<rect x="${left}" y="${chartTop}" width="${plotW}" height="${chartH}" fill="none" stroke="#999"/>`,
  );
  for (let d = lo; d <= hi * 1.0001; d *= 10) {
    out.push(
      `<line x1="${left}" x2="${left + plotW}" y1="${yOf(d)}" y2="${yOf(d)}" stroke="#ddd"/>`,
      `<text x="${left - 8}" y="${yOf(d) + 4}" text-anchor="end" font-size="11">${d >= 1 ? d.toFixed(0) : d} ${model.unit}</text>`,
    );
  }
  out.push(
    `<text x="20" y="${chartTop + chartH / 2}" font-size="12" transform="rotate(-90 20 ${chartTop + chartH / 2})" text-anchor="middle">${esc(model.measure)} (log)</text>`,
  );
  for (const p of model.phases)
    out.push(
      `<line x1="${x(p.from)}" x2="${x(p.from)}" y1="${chartTop}" y2="${chartTop + chartH}" stroke="#ccc" stroke-dasharray="3,3"/>`,
    );
  for (const s of model.series) {
    const pts = [...s.points].sort((a, b) => a.t - b.t);
    for (const p of pts) out.push(`<circle cx="${x(p.t)}" cy="${yOf(p.value)}" r="3.5" fill="${s.color}"/>`);
  }
  const axisY = chartTop + chartH;
  const step = niceStep(model.duration);
  for (let t = 0; t <= model.duration; t += step)
    out.push(`<text x="${x(t)}" y="${axisY + 16}" text-anchor="middle" font-size="11">${t}</text>`);
  out.push(
    `<text x="${left + plotW / 2}" y="${axisY + 32}" text-anchor="middle" font-size="12">seconds into the day</text>`,
  );

  // Legend.
  let lx = left;
  let ly = axisY + 52;
  const legend = (width: number) => {
    if (lx + width > left + plotW) {
      lx = left;
      ly += 20;
    }
  };
  for (const s of model.series) {
    legend(14 + s.label.length * 7);
    out.push(
      `<circle cx="${lx + 5}" cy="${ly - 4}" r="5" fill="${s.color}"/>`,
      `<text x="${lx + 14}" y="${ly}" font-size="12">${esc(s.label)}</text>`,
    );
    lx += 14 + s.label.length * 7 + 20;
  }
  for (const [policy, colour] of colours) {
    legend(16 + shortName(policy).length * 7);
    out.push(
      `<rect x="${lx}" y="${ly - 10}" width="12" height="12" fill="${colour}"/>`,
      `<text x="${lx + 16}" y="${ly}" font-size="12">${esc(shortName(policy))}</text>`,
    );
    lx += 16 + shortName(policy).length * 7 + 16;
  }
  const height = ly + 16;
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="DejaVu Sans, Helvetica, Arial, sans-serif">
<rect width="${width}" height="${height}" fill="#fff"/>
${out.join("\n")}
</svg>
`;
}

/** Our ops names carry a `schedctl_` prefix: the picture shows the policy's own name. */
function shortName(policy: string): string {
  return policy === "default" ? "kernel default" : policy.replace(/^schedctl_/, "");
}

function niceStep(duration: number): number {
  for (const s of [10, 20, 30, 60, 120, 300]) if (duration / s <= 12) return s;
  return 600;
}
