// The measured side of bench/overhead.ts: a HostSampler and the Observe pipeline over the
// generated tree, driven one command per line on stdin ("sample", "rss", "peak", "cgroups").
//   node bench/overhead-sampler.ts HOST_ROOT   (started by bench/overhead.ts)
import { createInterface } from "node:readline";
import { ManualClock } from "../src/host/clock.ts";
import { createHost } from "../src/host/host.ts";
import type { Logger } from "../src/log/logger.ts";
import { ObservePipeline } from "../src/observe/pipeline.ts";
import { HostSampler } from "../src/observe/sampler.ts";

/** Warnings would mean the generated tree is wrong: say them on stderr. */
const log: Logger = {
  trace: () => {},
  debug: () => {},
  info: () => {},
  warn: (_fields, message) => void process.stderr.write(`sampler warning: ${message}\n`),
  error: (_fields, message) => void process.stderr.write(`sampler error: ${message}\n`),
  fatal: (_fields, message) => void process.stderr.write(`sampler fatal: ${message}\n`),
  child: () => log,
};

export async function runSampler(root: string): Promise<void> {
  const clock = new ManualClock(Date.now());
  // Made at the first sample: the parent writes the tree after starting this process.
  let sampler: HostSampler | undefined;
  const pipeline = new ObservePipeline({
    window: { topCgroups: 5, topProcesses: 10 },
    detect: { threshold: 4, tolerance: 1, minDwell: 5, confirm: 2 },
  });
  const mb = (bytes: number) => (bytes / 2 ** 20).toFixed(1);
  for await (const command of createInterface({ input: process.stdin })) {
    if (command === "sample") {
      clock.advance(1000);
      const before = process.cpuUsage();
      sampler ??= new HostSampler(
        createHost(root),
        { cgroupRoots: ["/"], cgroupMaxDepth: 8, topProcesses: 10 },
        clock,
        log,
      );
      const sample = sampler.next();
      pipeline.push(sample);
      const used = process.cpuUsage(before);
      process.stdout.write(`${used.user + used.system} ${sample.cgroups.length}\n`);
    } else if (command === "rss") process.stdout.write(`${mb(process.memoryUsage().rss)}\n`);
    else if (command === "peak") process.stdout.write(`${mb(process.resourceUsage().maxRSS * 1024)}\n`);
    else if (command === "cgroups") process.stdout.write(`${sampler?.cgroupCount ?? 0}\n`);
  }
  sampler?.close();
}

if (import.meta.main) await runSampler(process.argv[2]!);
