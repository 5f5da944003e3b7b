// What a built-in parser is: the figures it reads from one run of a tool (its output, or the
// file it wrote), each named, with a label for tables and the direction that is better.

export interface Metric {
  /** For tables: the figure and its unit, e.g. "p99 us". */
  label: string;
  better: "lower" | "higher";
}

export interface ToolParser {
  metrics: Record<string, Metric>;
  /** The figures of one run; throws with the reason when the output holds none. */
  parse(output: string): Record<string, number>;
}
