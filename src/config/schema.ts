import { z } from "zod";

// One schema for /etc/schedctl/schedctl.toml and its drop-ins. Every key has a default, so an
// empty file (or none) is a valid configuration. TOML keys are snake_case, as in systemd's and
// TuneD's own files; each stage owns its section.

const positiveMs = z.number().int().positive();
const ratio = z.number().positive();

export const DaemonSection = z
  .object({
    /** auto: observe, decide and deploy; observe: record only, never touch the kernel; manual: deploy only on request. */
    mode: z.enum(["auto", "observe", "manual"]).default("auto"),
    sample_interval_ms: positiveMs.min(100).max(60_000).default(1000),
    state_dir: z.string().min(1).default("/var/lib/schedctl"),
    /** On stop, keep the current policy attached instead of restoring the kernel default. */
    keep_policy_on_stop: z.boolean().default(false),
    log_level: z.enum(["trace", "debug", "info", "warn", "error", "fatal"]).default("info"),
  })
  .strict()
  .prefault({});

export const ObserveSection = z
  .object({
    /** cgroup v2 paths (relative to the cgroup2 mount) whose subtrees are sampled. */
    cgroup_roots: z.array(z.string().startsWith("/")).min(1).default(["/"]),
    /** How deep below each root cgroups are sampled (0: the root alone). */
    cgroup_max_depth: z.number().int().min(0).max(32).default(8),
    /** How many samples the store keeps; older ones are dropped. */
    ring_size: z.number().int().min(10).max(1_000_000).default(3600),
    /** How many of the busiest processes are kept as hints for later stages. */
    top_processes: z.number().int().min(0).max(100).default(10),
  })
  .strict()
  .prefault({});

export const DetectSection = z
  .object({
    /** Page-Hinkley alarm threshold on the normalised drift (higher: fewer, later alarms). */
    threshold: z.number().positive().default(4),
    /** Magnitude of change tolerated before drift accumulates (in units of feature spread). */
    tolerance: z.number().min(0).default(1),
    /** Samples after a change before the next one is reported (one seen sooner is held, not lost). */
    min_dwell_samples: z.number().int().min(1).max(3600).default(3),
    /** A moderate shift must last this many samples plus one, a strong one min(this, 2) (docs/detect.md). */
    confirm_samples: z.number().int().min(1).max(60).default(3),
  })
  .strict()
  .prefault({});

export const LlmSection = z
  .object({
    provider: z.enum(["none", "openai", "anthropic"]).default("none"),
    endpoint: z.url().optional(),
    model: z.string().min(1).optional(),
    /** Root-only file holding the API key; a systemd credential named "llm-api-key" wins over it. */
    api_key_file: z.string().min(1).optional(),
    timeout_ms: positiveMs.max(600_000).default(60_000),
    max_retries: z.number().int().min(0).max(10).default(3),
    /** Drift score above which the LLM may be consulted (when the local planner is not confident). */
    drift_threshold: z.number().positive().default(8),
    calls_per_hour: z.number().int().min(0).default(6),
    calls_per_day: z.number().int().min(0).default(40),
    tokens_per_call: z.number().int().positive().default(8000),
    tokens_per_day: z.number().int().min(0).default(200_000),
    /** Prices in USD per million tokens, for the cost shown in the audit trail. */
    price_input_per_mtok: z.number().min(0).default(0),
    price_output_per_mtok: z.number().min(0).default(0),
    /** Spend limit per day in USD, from the prices above (0: no limit). */
    cost_per_day_usd: z.number().min(0).default(0),
    max_repair_rounds: z.number().int().min(0).max(10).default(3),
    /** Invalid replies (bad JSON, schema, unknown names) the model may correct, per stage. */
    max_corrections: z.number().int().min(0).max(5).default(1),
    /** Consecutive failed calls that open the circuit breaker, and how long it stays open. */
    breaker_failures: z.number().int().min(1).max(100).default(3),
    breaker_cooldown_ms: positiveMs.max(86_400_000).default(900_000),
  })
  .strict()
  .prefault({});

export const DecideSection = z
  .object({
    /** The LLM is not needed when the planner's pick is near-best (within 5%) in this share of posterior draws, or a tried policy beats the default with this probability. */
    confidence_threshold: z.number().min(0).max(1).default(0.7),
    /** A policy whose mean KPI ratio on a signature is at most this (and whose last probation passed) is reused. */
    reuse_max_ratio: ratio.max(1).default(0.95),
    reuse_min_passes: z.number().int().min(1).default(1),
    /** Policy variants the planner weighs per phase, besides the kernel default. */
    max_candidates: z.number().int().min(1).max(16).default(4),
    /** Weight of another signature's outcome of the same class, relative to the signature's own. */
    class_weight: z.number().min(0).max(1).default(0.3),
    /** Seed of the planner's sampling, for reproducible runs (tests, benchmarks); default: the clock. */
    seed: z.number().int().min(0).optional(),
  })
  .strict()
  .prefault({});

export const VerifySection = z
  .object({
    /** Largest sched_ext watchdog timeout a candidate may ask for. */
    max_timeout_ms: positiveMs.max(30_000).default(10_000),
    /** How long a candidate runs under load in the sandbox VM. */
    sandbox_seconds: z.number().positive().max(600).default(8),
    /** Directory of the cached sandbox kernel (vmlinuz); empty: fetch and cache the newest. */
    sandbox_kernel: z.string().optional(),
    cache_dir: z.string().min(1).default("/var/cache/schedctl"),
    /**
     * sandbox: every candidate runs in the sandbox VM before it may be deployed. probation-only:
     * no sandbox on this host; a candidate the host's kernel verifier accepted is deployed only
     * under the probation guard, and its verdict says so. Verdicts produced ahead of time (by
     * the same verifier on the same content hash) are used as they are in either case.
     */
    dynamic: z.enum(["sandbox", "probation-only"]).default("sandbox"),
    /** The dynamic stage judges a candidate against the kernel default's run of the same loads in the same boot. */
    against_default: z
      .object({
        /** Every load worker gets at least this fraction of its share of the work under the default. */
        min_worker_share: z.number().min(0).max(1).default(0.5),
        /** p99 wake-up latency of each latency load at most this many times the default's. */
        max_p99_ratio: z.number().min(1).default(2),
        /** CPU throughput at least this fraction of the default's. */
        min_throughput_ratio: z.number().min(0).max(1).default(0.8),
      })
      .strict()
      .prefault({}),
  })
  .strict()
  .prefault({});

export const DeploySection = z
  .object({
    probation_seconds: z.number().positive().max(3600).default(20),
    /** A probation KPI this many times worse than its baseline fails the policy. */
    regression_ratio: ratio.min(1).default(1.25),
    /** Probation failures for one workload signature before the policy is quarantined for it. */
    quarantine_after: z.number().int().min(1).default(2),
    /** How often sched_ext's state is polled while a policy is attached (ejection detection). */
    watchdog_ms: positiveMs.min(20).max(5000).default(250),
  })
  .strict()
  .prefault({});

export const FleetSection = z
  .object({
    /**
     * The shared PostgreSQL database, as libpq spells it (postgres://user@host:port/db, TLS by
     * ?sslmode=require|verify-ca|verify-full and sslrootcert=...); none: this host learns alone.
     * Never a password here (the configuration is world-readable): put it in password_file.
     */
    url: z
      .string()
      .regex(/^postgres(ql)?:\/\/[^/]/, "must be a postgres://user@host[:port]/database URL")
      .refine((url) => !/^postgres(ql)?:\/\/[^/@]*:[^/@]*@/.test(url), {
        message: "holds a password; put it in [fleet] password_file (mode 0600, owned by root) instead",
      })
      .optional(),
    /** Root-only file holding the database user's password. */
    password_file: z.string().min(1).optional(),
    /** This host's name in the fleet; default: the machine's hostname. */
    host_id: z
      .string()
      .regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/)
      .optional(),
    /** How often outcomes are sent and the fleet's are read (off the sampling loop). */
    sync_interval_ms: positiveMs.min(100).max(3_600_000).default(30_000),
    /** How long one connection attempt or query may take before the fleet counts as offline. */
    timeout_ms: positiveMs.min(100).max(60_000).default(5000),
  })
  .strict()
  .prefault({});

export const MetricsSection = z
  .object({
    /**
     * The Prometheus text file written atomically each sample period, for node_exporter's textfile
     * collector (Debian's directory by default); "off": none.
     */
    textfile: z
      .string()
      .regex(/^(off|\/.*[^/])$/, 'must be "off" or an absolute file path')
      .default("/var/lib/prometheus/node-exporter/schedctl.prom"),
    /** A port on 127.0.0.1 serving the same metrics at /metrics; 0: no listener. */
    http_port: z.number().int().min(0).max(65535).default(0),
  })
  .strict()
  .prefault({});

export const Config = z
  .object({
    daemon: DaemonSection,
    observe: ObserveSection,
    detect: DetectSection,
    llm: LlmSection,
    decide: DecideSection,
    verify: VerifySection,
    deploy: DeploySection,
    fleet: FleetSection,
    metrics: MetricsSection,
  })
  .strict();

export type Config = z.infer<typeof Config>;
export type ConfigInput = z.input<typeof Config>;

export function defaultConfig(): Config {
  return Config.parse({});
}
