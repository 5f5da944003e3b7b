import { cyclictestParser } from "./cyclictest.ts";
import { batchsimParser, buildsimParser, wakelatParser } from "./loadgen.ts";
import type { ToolParser } from "./parser.ts";

// The built-in parsers a day file's KPI can name (`kpi = { parser = "NAME", metric = ".." }`):
// a tool's parser is one line here.

export const PARSERS: Record<string, ToolParser> = {
  wakelat: wakelatParser,
  buildsim: buildsimParser,
  batchsim: batchsimParser,
  cyclictest: cyclictestParser,
};
