import { mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { stripTypeScriptTypes } from "node:module";
import { dirname, join } from "node:path";
import { builtinPolicy, type PolicySource } from "../../../src/policies/catalogue.ts";
import { PolicyCompiler } from "../../../src/policies/compile.ts";
import type { Tunables } from "../../../src/policies/types.ts";
import { defaultCacheDir, ensureSandboxKernel } from "../../../src/sandbox/kernel-image.ts";
import { RESULT_MARKER, type VmFile } from "../../../src/sandbox/types.ts";
import { openDb } from "../../../src/store/db.ts";
import { SqliteVerdictStore, VERDICT_MIGRATIONS } from "../../../src/store/verdicts.ts";
import type { GuestPlan } from "./deploy-guest.ts";
import { stallingPolicy } from "./policies.ts";

// Host side of the deployment VM runs (tests and bench:swap): compiles the policies, seeds
// their verdicts, and writes the guest's plan and script. Verdicts are seeded as passing:
// these runs exercise the controller; the verifier has its own VM test (verify.test.ts).

export interface ScenarioRun {
  name: string;
  /** Environment for the guest entry (FIRST, SECOND, SWAPS). */
  env?: Record<string, string>;
  /** Where the load runs: "plain" (hogs + wakelat at the root) or "cgroups" (wakelat in /interactive). */
  load: "plain" | "cgroups";
}

const GUEST_ROOT = "/opt/schedctl/jsdist";
const GUEST_ENTRY = `${GUEST_ROOT}/test/vm/guest/deploy-guest.js`;
/** The package's schedctld wrapper, with the guest's paths (written by guestRun). */
const GUEST_DAEMON = "/opt/schedctl/schedctld";
/** schedctld's configuration for the restart (acceptance 4): the guest's store, manual mode. */
const DAEMON_CONFIG = `[daemon]
mode = "manual"
state_dir = "/tmp"
[verify]
cache_dir = "/tmp/schedctl-cache"
dynamic = "probation-only"`;
const PROJECT_ROOT = join(import.meta.dirname, "..", "..", "..");

/** Load scripts, written into the guest by its script and started by the guest entry. */
const LOADS = {
  plain: `cpuhog --workers=2 --seconds=900 >/dev/null 2>&1 &
wakelat --seconds=900 --workers=2 >/dev/null 2>&1 &
wait`,
  cgroups: `sh -c 'echo $$ > /sys/fs/cgroup/batch/cgroup.procs; exec cpuhog --workers=4 --seconds=900' >/dev/null 2>&1 &
sh -c 'echo $$ > /sys/fs/cgroup/interactive/cgroup.procs; exec wakelat --seconds=900 --workers=2 --work-us=200' >/dev/null 2>&1 &
wait`,
};

/**
 * src/ and the guest entry as plain JavaScript: Node strips types through a WebAssembly
 * compiler that runs ~20x slower under emulation, so the guest gets them stripped already.
 */
function transpileForGuest(out: string): void {
  for (const dir of ["src", "test/vm/guest"]) {
    for (const rel of readdirSync(join(PROJECT_ROOT, dir), { recursive: true }) as string[]) {
      if (!rel.endsWith(".ts")) continue;
      const code = stripTypeScriptTypes(readFileSync(join(PROJECT_ROOT, dir, rel), "utf8"), {
        mode: "strip",
      });
      const target = join(out, dir, rel.replace(/\.ts$/, ".js"));
      mkdirSync(dirname(target), { recursive: true });
      writeFileSync(target, code.replace(/(["'])(\.{1,2}\/[^"'\n]+)\.ts\1/g, "$1$2.js$1"));
    }
  }
}

export const DEPLOY_POLICIES: Record<string, { source: () => PolicySource; tunables?: Tunables }> = {
  vtime: { source: () => builtinPolicy("vtime") },
  fifo: { source: () => builtinPolicy("fifo") },
  // Runs fine for 4 s, then stops dispatching: passes a short sandbox run, fails in production.
  stall: { source: () => stallingPolicy(4000) },
  // Valid, but 100 ms slices starve an interactive service behind CPU hogs.
  slow: { source: () => builtinPolicy("fifo"), tunables: { slice_us: 100_000 } },
};

export async function prepareDeployRun(
  work: string,
  scenarios: ScenarioRun[],
  options: { probationSeconds: number; regressionRatio: number },
): Promise<{ script: string; files: VmFile[] }> {
  const kernel = await ensureSandboxKernel({ cacheDir: defaultCacheDir() });
  const compiler = new PolicyCompiler({ cacheDir: work, vmlinuxH: kernel.vmlinuxH });
  const dbPath = join(work, "seed.db");
  const db = openDb(dbPath, VERDICT_MIGRATIONS);
  const verdicts = new SqliteVerdictStore(db);
  const plan: GuestPlan = { db: "/tmp/state.db", policies: {}, cgroup: "/interactive", ...options };
  const files: VmFile[] = [];
  for (const [name, { source, tunables }] of Object.entries(DEPLOY_POLICIES)) {
    const built = await compiler.compile(source(), tunables ?? {});
    const guestPath = `/deploy/${built.ref.hash}.bpf.o`;
    files.push({ hostPath: built.objectPath, guestPath });
    plan.policies[name] = {
      ref: built.ref,
      loadable: { kind: "object", hash: built.ref.hash, objectPath: guestPath, opsName: built.opsName },
    };
    verdicts.putVerdict({
      hash: built.ref.hash,
      policy: built.ref,
      stage: "dynamic",
      passed: true,
      log: "seeded by the deployment VM harness (the verifier has its own VM test)",
      opsName: built.opsName,
      at: Date.now(),
    });
  }
  db.pragma("wal_checkpoint(TRUNCATE)");
  db.close();
  return guestRun(work, scenarios, plan, dbPath, files);
}

/** The guest script and files for scenarios over a plan and a seed database (closed, checkpointed). */
export function guestRun(
  work: string,
  scenarios: ScenarioRun[],
  plan: GuestPlan,
  seedDb: string,
  objects: VmFile[],
): { script: string; files: VmFile[] } {
  mkdirSync(work, { recursive: true });
  const wrapper = join(work, "schedctld");
  writeFileSync(
    wrapper,
    readFileSync(join(PROJECT_ROOT, "debian/wrappers/schedctld"), "utf8")
      .replaceAll("/usr/lib/schedctl/libexec/", "/opt/schedctl/")
      .replaceAll("/usr/lib/schedctl/node/bin/node", "node")
      .replaceAll("/usr/lib/schedctl/src/", `${GUEST_ROOT}/src/`),
  );
  const planPath = join(work, "plan.json");
  writeFileSync(planPath, JSON.stringify(plan));
  transpileForGuest(join(work, "jsdist"));
  return {
    script: guestScript(scenarios),
    files: [
      ...objects,
      { hostPath: seedDb, guestPath: "/deploy/seed.db" },
      { hostPath: planPath, guestPath: "/deploy/plan.json" },
      { hostPath: join(work, "jsdist"), guestPath: GUEST_ROOT },
      { hostPath: wrapper, guestPath: GUEST_DAEMON },
      {
        hostPath: join(PROJECT_ROOT, "debian/wrappers/drop-probation"),
        guestPath: "/opt/schedctl/drop-probation",
      },
      // schedctld reads its version from ../../package.json.
      { hostPath: join(PROJECT_ROOT, "package.json"), guestPath: `${GUEST_ROOT}/package.json` },
    ],
  };
}

function guestScript(scenarios: ScenarioRun[]): string {
  const steps = scenarios.map((s) => {
    const env = Object.entries(s.env ?? {})
      .map(([k, v]) => `${k}=${v}`)
      .join(" ");
    const load = `LOAD="sh /tmp/load-${s.load}.sh"`;
    const run =
      s.name === "kill-mid-probation"
        ? killAndRestart(`${load} ${env}`, env)
        : `${load} ${env} node ${GUEST_ENTRY} /deploy/plan.json ${s.name}`;
    return `echo "== scenario ${s.name}"
rm -f /tmp/state.db*; cp /deploy/seed.db /tmp/state.db
${run}
dmesg -c | grep sched_ext | sed 's/^/KMSG ${s.name} /'`;
  });
  const loadFiles = Object.entries(LOADS)
    .map(([name, body]) => `cat > /tmp/load-${name}.sh <<'LOAD_EOF'\n${body}\nLOAD_EOF`)
    .join("\n");
  return `mkdir -p /sys/fs/cgroup/interactive /sys/fs/cgroup/batch
chmod +x /opt/schedctl/drop-probation
${loadFiles}
cat > /tmp/schedctld.toml <<'CONFIG_EOF'
${DAEMON_CONFIG}
CONFIG_EOF
dmesg -c >/dev/null
${steps.join("\n")}
`;
}

/**
 * Acceptance 4: the controller is SIGKILLed with a policy in probation (its load keeps running),
 * then the real schedctld starts on the same store. The shell times, from /proc/uptime, the
 * daemon's start to the kernel no longer running the killed run's policy, and to the end of
 * the reconciliation; it records the kernel's state and pins before the daemon is stopped.
 */
function killAndRestart(prefix: string, env: string): string {
  const result = (fields: string) =>
    `echo "${RESULT_MARKER}{\\"load\\":\\"deploy\\",\\"scenario\\":\\"restart\\",${fields}}"`;
  return `rm -f /tmp/in-probation
${prefix} node ${GUEST_ENTRY} /deploy/plan.json kill-mid-probation & DAEMON=$!
n=0; while [ ! -e /tmp/in-probation ] && [ $n -lt 1200 ]; do sleep 0.1; n=$((n+1)); done
kill -9 $DAEMON; wait $DAEMON 2>/dev/null
kernel() { read S < /sys/kernel/sched_ext/state; O=$(cat /sys/kernel/sched_ext/root/ops 2>/dev/null); echo "$S $O"; }
BEFORE=$(kernel)
STARTED=$(cut -d' ' -f1 /proc/uptime)
sh ${GUEST_DAEMON} --foreground --config /tmp/schedctld.toml --bus none 2>/tmp/restart.log & DAEMON=$!
# Safe: the killed run's policy is gone, not merely on its way out ("disabling" still runs it).
n=0; while [ "$(kernel)" = "$BEFORE" -o "$(kernel)" = "disabling \${BEFORE#* }" ] && [ $n -lt 1500 ]; do sleep 0.02; n=$((n+1)); done
SAFE=$(cut -d' ' -f1 /proc/uptime); SAFE_STATE=$(kernel)
n=0; while ! grep -qE 'rolling_back -> [a-z_]+:' /tmp/restart.log && [ $n -lt 600 ]; do sleep 0.1; n=$((n+1)); done
RECONCILED=$(cut -d' ' -f1 /proc/uptime)
# The kernel's settled state: the restored policy with its link, or the default with none (a
# starved emulator may eject even the known-good one meanwhile, and the daemon then unpins it).
links() { find /sys/fs/bpf/schedctl -type f 2>/dev/null; }
n=0; until case "$(kernel) $(links | wc -l)" in "enabled "*" 1" | "disabled  0") true ;; *) false ;; esac || [ $n -ge 150 ]; do sleep 0.1; n=$((n+1)); done
FINAL=$(kernel)
LINKS=$(links | sed 's/.*/"&"/' | tr '\\n' ',' | sed 's/,$//')
${result('\\"before\\":\\"$BEFORE\\",\\"startedAt\\":$STARTED,\\"safeAt\\":$SAFE,\\"safeState\\":\\"$SAFE_STATE\\",\\"reconciledAt\\":$RECONCILED,\\"final\\":\\"$FINAL\\",\\"links\\":[$LINKS]')}
kill -TERM $DAEMON; wait $DAEMON; EXIT=$?
${result('\\"step\\":\\"stopped\\",\\"exit\\":$EXIT,\\"kernel\\":\\"$(kernel)\\",\\"links\\":$(links | wc -l)')}
killall cpuhog wakelat 2>/dev/null
grep -E 'dropped|starting|deploy:|attached|error|fatal' /tmp/restart.log | cut -c1-400 | sed 's/^/LOG restart /'
${env} node ${GUEST_ENTRY} /deploy/plan.json restarted`;
}

export interface ScenarioResult {
  scenario: string;
  [key: string]: unknown;
}

/** The guest's reports for one scenario (the final one last). */
export function scenarioResults(results: unknown[], scenario: string): ScenarioResult[] {
  return results.filter(
    (r): r is ScenarioResult =>
      typeof r === "object" && r !== null && (r as ScenarioResult).scenario === scenario && "load" in r,
  );
}

/** Kernel log lines (with their boot timestamps) the guest printed after a scenario. */
export function kernelLog(console: string, scenario: string): { seconds: number; text: string }[] {
  const prefix = `KMSG ${scenario} `;
  return console
    .split(/\r?\n/)
    .filter((l) => l.startsWith(prefix))
    .map((l) => {
      const m = /^\[\s*(\d+\.\d+)\]\s*(.*)$/.exec(l.slice(prefix.length));
      return { seconds: m ? Number(m[1]) : Number.NaN, text: m ? m[2]! : l.slice(prefix.length) };
    });
}
