import { join } from "node:path";
import { afterEach, describe, expect, it, vi } from "vitest";
import { main } from "../../../src/cli/main.ts";
import { readTrace } from "../../../src/observe/trace.ts";
import { writeCgroup, writeSystem } from "../../helpers/proc-tree.ts";
import { tempDir } from "../../helpers/tmp.ts";

afterEach(() => vi.restoreAllMocks());

describe("schedctl record", () => {
  it("writes one sample at the start and one per interval of a fixture host", async () => {
    const root = tempDir();
    writeSystem(root, { busy: [5, 5], idle: [50, 50], ctxt: 10, forks: 3, running: 1, blocked: 0 });
    writeCgroup(root, "/", { usage: 100 });
    writeCgroup(root, "/app.slice", { usage: 50 });
    const stderr = vi.spyOn(process.stderr, "write").mockImplementation(() => true);
    const out = join(root, "trace.jsonl");
    const args = ["record", "--duration", "0.3", "--interval-ms", "100", "--out", out, "--host-root", root];
    expect(await main([...args, "--config", join(root, "no-config")])).toBe(0);
    const { samples, problems } = readTrace(out);
    expect(problems).toEqual([]);
    expect(samples).toHaveLength(4);
    expect(samples[0]!.cgroups.map((c) => c.path)).toEqual(["/", "/app.slice"]);
    expect(samples[0]!.lacks.sort()).toEqual(["psi", "schedstat"]);
    const said = stderr.mock.calls.map((c) => String(c[0])).join("");
    expect(said).toContain("lacking psi: /proc/pressure is missing");
    expect(said).toContain(`4 samples written to ${out}`);
  });

  it("says what is missing from the command line", async () => {
    const stderr = vi.spyOn(process.stderr, "write").mockImplementation(() => true);
    expect(await main(["record", "--duration", "soon", "--out", "/tmp/x.jsonl"])).toBe(2);
    expect(String(stderr.mock.calls[0]![0])).toMatch(/--duration: expected a positive number, got "soon"/);
  });
});
