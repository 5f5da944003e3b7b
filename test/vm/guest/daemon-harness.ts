import { createHash } from "node:crypto";
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { stripTypeScriptTypes } from "node:module";
import { dirname, join } from "node:path";
import { generatedSource } from "../../../src/daemon/autopilot.ts";
import { candidatesFor } from "../../../src/decide/candidates.ts";
import { plan } from "../../../src/decide/planner.ts";
import { seededRandom } from "../../../src/decide/random.ts";
import type { Profile, WorkloadClass } from "../../../src/observe/types.ts";
import { builtinCatalogue, type PolicySource } from "../../../src/policies/catalogue.ts";
import { PolicyCompiler } from "../../../src/policies/compile.ts";
import { defaultCacheDir, ensureSandboxKernel } from "../../../src/sandbox/kernel-image.ts";
import type { Sandbox, VmFile } from "../../../src/sandbox/types.ts";

/*
 * Host side of the schedctld VM runs (test/vm/daemon*.test.ts, and the way to run the daemon in
 * the VM for anything else, e.g. the autopilot day): the real `schedctld --foreground` inside the
 * sched_ext guest, with a config and a state directory, loads started in named cgroups, and the
 * store read back afterwards.
 *
 * The guest has bpftool, the kernel's verifier and Node, but no clang (it would triple the
 * initramfs). So the policy objects the daemon may pick are compiled here, for the guest's
 * cgroup ids, and put in its compile cache (<verify.cache_dir>/objects/<hash>.bpf.o): the
 * daemon's compiler finds them by content hash exactly as it finds its own earlier builds, and
 * every other stage (static rules, the kernel verifier, deploy) runs in the guest for real.
 * A cgroup's id is its inode in cgroupfs, which a fresh boot hands out in creation order: one
 * short probe boot (cached) learns them, and the guest prints them again so a test can check.
 */

export const GUEST_DIR = "/opt/schedctl";
export const GUEST_JS = `${GUEST_DIR}/jsdist`;
/** The daemon's compile cache in the guest ([verify] cache_dir). */
export const GUEST_CACHE = `${GUEST_DIR}/cache`;
/** Units as a real host names them; created first thing in the guest, in this order. */
export const UNITS = [
  "/system.slice",
  "/system.slice/api.service",
  "/batch.slice",
  "/batch.slice/hogs.service",
];

const PROJECT_ROOT = join(import.meta.dirname, "..", "..", "..");
const CGROUP_SETUP = UNITS.map((u) => `mkdir -p /sys/fs/cgroup${u}`).join("\n");
const CGROUP_REPORT = UNITS.map((u) => `echo "CGID ${u} $(stat -c %i /sys/fs/cgroup${u})"`).join("\n");

/** The cgroup ids a fresh guest gives UNITS (cached per kernel). */
export async function guestCgroupIds(sandbox: Sandbox): Promise<Record<string, string>> {
  const kernel = await ensureSandboxKernel({ cacheDir: defaultCacheDir() });
  const key = createHash("sha256").update(kernel.version).update(CGROUP_SETUP).digest("hex").slice(0, 16);
  const cached = join(defaultCacheDir(), "daemon-vm", `cgroup-ids-${key}.json`);
  if (existsSync(cached)) return JSON.parse(readFileSync(cached, "utf8")) as Record<string, string>;
  const run = await sandbox.run({
    node: false,
    timeoutMs: 180_000,
    script: `${CGROUP_SETUP}\n${CGROUP_REPORT}\n`,
  });
  const ids = parseCgroupIds(run.console);
  if (Object.keys(ids).length !== UNITS.length)
    throw new Error(`the probe boot did not report every cgroup id:\n${run.console.slice(-2000)}`);
  mkdirSync(dirname(cached), { recursive: true });
  writeFileSync(cached, JSON.stringify(ids));
  return ids;
}

export function parseCgroupIds(console: string): Record<string, string> {
  const ids: Record<string, string> = {};
  for (const m of console.matchAll(/^CGID (\S+) (\d+)\s*$/gm)) ids[m[1]!] = m[2]!;
  return ids;
}

/**
 * Compiles every built-in variant the planner can weigh for a phase of any class whose busiest
 * unit is one of UNITS, plus `extra` sources (an LLM's generated policies), into `cacheDir`.
 */
export async function prebuildObjects(
  cacheDir: string,
  ids: Record<string, string>,
  extra: { name: string; source: string }[] = [],
): Promise<VmFile[]> {
  const kernel = await ensureSandboxKernel({ cacheDir: defaultCacheDir() });
  const compiler = new PolicyCompiler({
    cacheDir,
    vmlinuxH: kernel.vmlinuxH,
    resolveCgroupId: (path) => {
      const id = ids[path];
      if (id === undefined) throw new Error(`no guest cgroup id for ${path}`);
      return BigInt(id);
    },
  });
  const catalogue = builtinCatalogue();
  const files = new Map<string, VmFile>();
  const add = async (source: PolicySource, tunables: Record<string, unknown>) => {
    const built = await compiler.compile(source, tunables as never);
    files.set(built.ref.hash, {
      hostPath: built.objectPath,
      guestPath: `${GUEST_CACHE}/objects/${built.ref.hash}.bpf.o`,
    });
  };
  for (const profile of probeProfiles()) {
    for (const c of candidatesFor(
      profile,
      catalogue.map((p) => p.manifest),
      16,
    )) {
      const policy = c.policy;
      if (policy.kind !== "policy") continue;
      await add(catalogue.find((p) => p.manifest.name === policy.name)!, policy.tunables);
    }
  }
  for (const { name, source } of extra) await add(generatedSource(name, source, "mixed"), {});
  return [...files.values()];
}

/**
 * A planner seed whose first exploration picks a policy (not the default) for every class a
 * loaded phase can take here, so that a short VM run always has something to deploy.
 */
export function exploringSeed(): number {
  const manifests = builtinCatalogue().map((p) => p.manifest);
  for (let seed = 1; seed < 1000; seed++) {
    const ok = probeProfiles()
      .filter((p) => p.class !== "idle" && candidatesFor(p, manifests, 4).length > 1)
      .every((profile) => {
        const local = plan(profile, candidatesFor(profile, manifests, 4), [], [], {
          quarantineAfter: 2,
          classWeight: 0.3,
          random: seededRandom(seed),
        });
        return local.chosen.key !== "default";
      });
    if (ok) return seed;
  }
  throw new Error("no seed explores a policy first for every class");
}

function probeProfiles(): Profile[] {
  const classes: WorkloadClass[] = ["latency", "throughput", "mixed", "idle", "io", "memory"];
  const units = UNITS.filter((u) => u.endsWith(".service"));
  return classes.flatMap((cls) =>
    units.map((unit) => ({
      at: 0,
      windowMs: 1000,
      features: {} as Profile["features"],
      class: cls,
      signature: `probe-${cls}`,
      topCgroups: [{ path: unit, cpuShare: 0.5, psiCpuSome: 0.5, tasks: 2 }],
      topProcesses: [],
      lacks: [],
    })),
  );
}

/** src/ and the named test files as plain JavaScript (Node strips types ~20x slower in the guest). */
export function transpileForGuest(out: string, testFiles: string[]): VmFile[] {
  const sources = [
    ...(readdirSync(join(PROJECT_ROOT, "src"), { recursive: true }) as string[])
      .filter((f) => f.endsWith(".ts"))
      .map((f) => join("src", f)),
    ...testFiles,
  ];
  for (const rel of sources) {
    const code = stripTypeScriptTypes(readFileSync(join(PROJECT_ROOT, rel), "utf8"), { mode: "strip" });
    const target = join(out, rel.replace(/\.ts$/, ".js"));
    mkdirSync(dirname(target), { recursive: true });
    writeFileSync(target, code.replace(/(["'])(\.{1,2}\/[^"'\n]+)\.ts\1/g, "$1$2.js$1"));
  }
  return [
    { hostPath: out, guestPath: GUEST_JS },
    // main.ts reads its version from ../../package.json; the catalogue finds bpf/ above jsdist.
    { hostPath: join(PROJECT_ROOT, "package.json"), guestPath: `${GUEST_JS}/package.json` },
  ];
}

export interface DaemonRun {
  name: string;
  /** schedctl.toml for this run (state_dir, cache_dir and the metrics textfile are set by the harness). */
  config: string;
  /** Shell run before the daemon starts (e.g. the scripted LLM server). */
  before?: string;
  /** Shell run after the daemon starts, its first phase is logged and it settled: the loads. */
  load: string;
  /**
   * Seconds to let the daemon settle after its first phase (default 35): under emulation Node's
   * own start-up is a load, which the daemon may already act on; its probation ends meanwhile.
   */
  settleSeconds?: number;
  /** The daemon log line (grep -E, logged after the loads started) that ends the run, and how long to wait for it. */
  until: string;
  untilSeconds: number;
  /** Shell run after the daemon stopped. */
  after?: string;
}

/** The guest script: cgroups first (ids as probed), then each run with its own state directory. */
export function daemonScript(runs: DaemonRun[]): string {
  const body = runs.map((r) => {
    const state = `${GUEST_DIR}/state-${r.name}`;
    const metrics = `${state}/schedctl.prom`;
    const config = `[daemon]\nstate_dir = "${state}"\n${r.config}\n[verify]\ncache_dir = "${GUEST_CACHE}"\ndynamic = "probation-only"\n[metrics]\ntextfile = "${metrics}"\n`;
    // The deploy counters and state in the daemon's textfile, as node_exporter would read them.
    const showMetrics = (tag: string) =>
      `grep -E '^schedctl_(swaps|rollbacks|ejections)_total|^schedctl_(policy_info|deploy_state)' ${metrics} 2>/dev/null | sed 's/^/${tag} ${r.name} /'`;
    return `echo "== daemon run ${r.name}"
mkdir -p ${state}
cat > ${state}/schedctl.toml <<'CONFIG_EOF'
${config}
CONFIG_EOF
${r.before ?? ""}
dmesg -c >/dev/null
node ${GUEST_JS}/src/daemon/main.js --foreground --config ${state}/schedctl.toml --bus none 2>/tmp/${r.name}.log & DAEMON=$!
waitlog /tmp/${r.name}.log 'first phase' 240 || echo "RUN ${r.name}: no first phase"
sleep ${r.settleSeconds ?? 35}
echo "LOADS ${r.name} $(cut -d' ' -f1 /proc/uptime)"
${showMetrics("METRICS-BEFORE")}
FROM=$(($(wc -l < /tmp/${r.name}.log) + 1))
${r.load}
waitlog /tmp/${r.name}.log '${r.until}' ${r.untilSeconds} $FROM || echo "RUN ${r.name}: timed out waiting for ${r.until}"
echo "KERNEL ${r.name} $(cat /sys/kernel/sched_ext/state) $(cat /sys/kernel/sched_ext/root/ops 2>/dev/null)"
kill -TERM $DAEMON; wait $DAEMON; echo "EXIT ${r.name} $?"
${showMetrics("METRICS-AFTER")}
echo "STOPPED ${r.name} $(cat /sys/kernel/sched_ext/state) $(cat /sys/kernel/sched_ext/root/ops 2>/dev/null) links=$(ls /sys/fs/bpf/schedctl 2>/dev/null | wc -l)"
for p in $LOADS; do kill $p 2>/dev/null; wait $p 2>/dev/null; done; LOADS=""
${r.after ?? ""}
node ${GUEST_JS}/test/vm/guest/daemon-report.js ${state}/state.db ${r.name}
grep -E 'phase|deploy:|verdict|decision|autopilot|LLM|consult|failed|refused|error' /tmp/${r.name}.log | cut -c1-600 | sed 's/^/LOG ${r.name} /' | tail -n 80
dmesg | grep sched_ext | sed 's/^/KMSG ${r.name} /'`;
  });
  return `${CGROUP_SETUP}
${CGROUP_REPORT}
ip link set lo up 2>/dev/null || ifconfig lo 127.0.0.1 up
# waitlog FILE PATTERN SECONDS [FROM_LINE]: wait for a line matching PATTERN at or after FROM_LINE
waitlog() { n=0; while ! tail -n +\${4:-1} $1 | grep -qE "$2" && [ $n -lt $3 ]; do sleep 1; n=$((n+1)); done; tail -n +\${4:-1} $1 | grep -qE "$2"; }
inunit() { unit=$1; shift; sh -c "echo \\$\\$ > /sys/fs/cgroup$unit/cgroup.procs; exec $*" >/dev/null 2>&1 & LOADS="$LOADS $!"; }
LOADS=""
${body.join("\n")}
`;
}

/** Latency load: a request/response service (wakelat, SCHED_OTHER) in api.service over CPU hogs in batch. */
export const LATENCY_LOAD = `inunit /batch.slice/hogs.service cpuhog --workers=4 --seconds=900
inunit /system.slice/api.service wakelat --seconds=900 --workers=2 --work-us=200`;

/**
 * Runs the scripted LLM server inside the guest (127.0.0.1 only) and points the run's config at
 * it: it writes a policy the kernel's verifier refuses, then fixes it when shown the log.
 */
export function withGuestLlm(run: string): Pick<DaemonRun, "before" | "after"> {
  const port = `/tmp/llm-${run}.port`;
  return {
    before: `node ${GUEST_JS}/test/vm/guest/daemon-llm.js ${port} & LLM=$!
n=0; while [ ! -s ${port} ] && [ $n -lt 120 ]; do sleep 1; n=$((n+1)); done
sed -i "s/@LLM_PORT@/$(cat ${port})/" ${GUEST_DIR}/state-${run}/schedctl.toml`,
    after: "kill -TERM $LLM; wait $LLM",
  };
}

export const LLM_TEST_FILES = [
  "test/vm/guest/daemon-llm.ts",
  "test/vm/guest/daemon-llm-policies.ts",
  "test/helpers/llm-server.ts",
];

/** Console lines `TAG run rest...` the guest script printed. */
export function consoleLine(console: string, tag: string, run: string): string | undefined {
  return new RegExp(`^${tag} ${run} (.*)$`, "m").exec(console)?.[1]?.trim();
}
