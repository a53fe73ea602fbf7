// Control-plane configuration from EE_* environment variables (seed 002/003 defaults, DESIGN §7).
// Pure: reads only the `env` argument, so tests and embedders can pass their own.
import { isIP } from 'node:net';
import { z } from 'zod';
import type { LevelWithSilent } from 'pino';
import { DEFAULT_APP_CLAIMS_PER_HOUR } from './app-claims.js';

export class ConfigError extends Error {
  readonly variable: string;
  constructor(variable: string, message: string) {
    super(message);
    this.name = 'ConfigError';
    this.variable = variable;
  }
}

/** Concurrent tunnel handshakes one remote address may hold (EE_MAX_HANDSHAKES_PER_ADDRESS). */
export const DEFAULT_MAX_HANDSHAKES_PER_ADDRESS = 32;
/** Time from the WebSocket upgrade to the agent's `register` (EE_REGISTER_DEADLINE_MS): a socket that never
 *  registers would otherwise hold a handshake slot forever, kept alive by automatic pongs. */
export const DEFAULT_REGISTER_DEADLINE_MS = 10_000;

/** Request-body bytes queued toward agents over all tunnels (EE_MAX_BUFFERED_STREAM_BYTES): one agent that
 *  never reads could otherwise hold 256 streams × 256 KiB, and every such agent as much again. */
export const DEFAULT_MAX_BUFFERED_STREAM_BYTES = 256 * 1024 * 1024;

export interface ControlPlaneConfig {
  readonly control_bind: string;
  readonly control_port: number; // 0 = ephemeral
  readonly proxy_bind: string;
  readonly proxy_port: number; // 0 = ephemeral
  readonly db_path: string; // ":memory:" allowed
  readonly database_url: string | undefined; // when set, PostgreSQL is used instead of db_path
  readonly admin_token: string | undefined;
  readonly launcher_token: string | undefined;
  readonly uptime_token: string | undefined;
  readonly github_token: string | undefined;
  readonly allowlist_asset: string;
  readonly pccs_url: string | undefined;
  /** Offline DCAP collateral (dcap-qvl getCollateral JSON) instead of a PCCS; exclusive with pccs_url. */
  readonly collateral_file: string | undefined;
  /** DER or PEM root CA for DCAP instead of Intel's SGX Root CA: tests only, needs attest_allow_non_intel_root. */
  readonly attest_root_ca_file: string | undefined;
  readonly attest_allow_non_intel_root: boolean;
  /** configfs-tsm report directory, for the control plane's own quotes (GET /v1/attestation). */
  readonly tsm_path: string;
  readonly attest_interval_ms: number;
  readonly attest_deadline_ms: number;
  readonly health_timeout_ms: number;
  readonly registration_ttl_ms: number;
  readonly registration_warn_ms: number;
  readonly app_domain: string | undefined; // lowercase, no leading dot
  readonly proxy_timeout_ms: number; // until response headers
  readonly proxy_idle_timeout_ms: number;
  readonly max_streams_per_agent: number;
  readonly max_body_bytes: number; // 0 = unlimited
  readonly max_header_bytes: number;
  readonly max_handshakes: number;
  /** Longest time from a connection's (or a request's) first byte to the end of its header block. */
  readonly headers_timeout_ms: number;
  /** Longest wait for a request body's first byte after the head, and between its bytes while read. */
  readonly body_timeout_ms: number;
  /** Open HTTP connections per listener (agent tunnels, once upgraded, are the hub's to count). */
  readonly max_connections: number;
  readonly max_connections_per_address: number;
  /** Handshakes from one remote address at once (a share of max_handshakes no single host can exceed). */
  readonly max_handshakes_per_address: number;
  /** A tunnel connection must send `register` within this long, or it is closed (4003). */
  readonly register_deadline_ms: number;
  /** New app names one remote address may claim per hour (app-claims.ts). */
  readonly app_claims_per_hour: number;
  /** Request-body bytes queued toward agents over all tunnels (QueueBudget): the most that agents which
   *  never return credit can make the control plane hold. */
  readonly max_buffered_stream_bytes: number;
  readonly drain_timeout_ms: number;
  readonly queue_timeout_ms: number; // wait for a free stream or for an app's agent to come back
  readonly log_level: LevelWithSilent;
  /** API access log: off, sampled (every error answer and 1 in 100 others) or full (every request). */
  readonly access_log: 'off' | 'sampled' | 'full';
  /** Market (docs/market.md): settlement period, whole hours, epoch-aligned. */
  readonly settlement_period_ms: number;
  /** A lock never finalized is voided this long after its period ends (the ledger's pending timeout). */
  readonly settlement_grace_ms: number;
  /** Automatic finalize waits this long after a period ends, for late evidence (uptime reports). */
  readonly settlement_delay_ms: number;
  /** Unstake needs this long since the node's last locked period ended. */
  readonly unstake_cooldown_ms: number;
  /** A single outage longer than this slashes the tier penalty. */
  readonly outage_threshold_premium_ms: number;
  readonly outage_threshold_standard_ms: number;
  readonly outage_threshold_economy_ms: number;
}

const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
// Node timers overflow above 2^31-1 ms (the callback then fires after 1 ms), so every value
// that ends up in a setTimeout is capped there.
const MAX_TIMER_MS = 2 ** 31 - 1;
const MAX_TIMER_SEC = Math.floor(MAX_TIMER_MS / 1000);
const DAY_MS = 86_400_000;

// Plain decimal only: no sign, exponent, hex, or surrounding whitespace.
const INT_RE = /^[0-9]+$/;
const DEC_RE = /^(?:[0-9]+(?:\.[0-9]+)?|\.[0-9]+)$/;
const LABEL_RE = /^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/;

const int = (min: number, max: number) =>
  z.string().regex(INT_RE).transform(Number).pipe(z.number().int().min(min).max(max));
const secToMs = (min: number) => int(min, MAX_TIMER_SEC).transform((s) => s * 1000);
const daysToMs = (min: number, exclusive: boolean) =>
  z
    .string()
    .regex(DEC_RE)
    .transform(Number)
    .pipe(exclusive ? z.number().gt(min) : z.number().gte(min))
    .pipe(z.number().max(100 * 365)) // keeps the ms value a safe integer, far beyond any real TTL
    .transform((d) => Math.round(d * DAY_MS));
const DURATION_UNITS: Record<string, number> = { s: 1000, m: 60_000, h: 3_600_000, d: DAY_MS };
/** "90s", "5m", "24h", "7d": a whole number and one unit, from min_ms to max_ms. */
const duration = (min_ms: number, max_ms: number) =>
  z
    .string()
    .regex(/^[0-9]{1,9}[smhd]$/)
    .transform((v) => Number(v.slice(0, -1)) * DURATION_UNITS[v.slice(-1)]!)
    .pipe(z.number().int().min(min_ms).max(max_ms));
/** Whole hours: "1h", "2h" or a bare "3". */
const wholeHours = z
  .string()
  .regex(/^[0-9]{1,4}h?$/)
  .transform((v) => Number(v.replace(/h$/, '')))
  .pipe(z.number().int().min(1).max(8760))
  .transform((h) => h * 3_600_000);
const host = z.string().refine((v) => isIP(v) !== 0 || /^[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?$/.test(v));
// HTTP strips surrounding whitespace from header values, so such a token could never match.
const token = (minLength: number) =>
  z
    .string()
    .min(minLength)
    .refine((v) => v.trim() === v);
const httpUrl = z.string().refine((v) => {
  if (!URL.canParse(v)) return false;
  const p = new URL(v).protocol;
  return p === 'https:' || p === 'http:';
});
const pgUrl = z.string().refine((v) => /^postgres(?:ql)?:\/\//.test(v) && URL.canParse(v));
const dnsSuffix = z
  .string()
  .transform((v) => v.toLowerCase().replace(/^\./, ''))
  .refine((v) => v.length <= 253 && v.split('.').every((l) => LABEL_RE.test(l)));

interface Spec<T> {
  readonly env: string;
  readonly expect: string; // completes "<VAR> must be ..."
  readonly schema: z.ZodType<T, string>;
  readonly fallback?: string; // default, as the raw string, so it goes through the same parser
  readonly secret?: boolean; // never echo the value in errors
}
const spec = <T>(
  env: string,
  expect: string,
  schema: z.ZodType<T, string>,
  more: { fallback?: string; secret?: boolean } = {},
): Spec<T> => ({ env, expect, schema, ...more });

const PORT = 'an integer from 0 to 65535 (0 = ephemeral)';
const SEC = (min: number) => `a whole number of seconds from ${min} to ${MAX_TIMER_SEC}`;

const SPECS = {
  control_bind: spec('EE_CONTROL_BIND', 'an IP address or host name', host, { fallback: '0.0.0.0' }),
  control_port: spec('EE_CONTROL_PORT', PORT, int(0, 65535), { fallback: '8088' }),
  proxy_bind: spec('EE_PROXY_BIND', 'an IP address or host name', host, { fallback: '0.0.0.0' }),
  proxy_port: spec('EE_PROXY_PORT', PORT, int(0, 65535), { fallback: '9090' }),
  db_path: spec('EE_DB_PATH', 'a file path or ":memory:"', z.string().min(1), {
    fallback: 'control_plane/data/control-plane.db',
  }),
  database_url: spec('EE_DATABASE_URL', 'a URL starting with postgres:// or postgresql://', pgUrl, { secret: true }),
  admin_token: spec('EE_ADMIN_TOKEN', 'at least 16 characters with no surrounding whitespace', token(16), {
    secret: true,
  }),
  // The launcher and uptime tokens can fail any provider's period (abuse reports, missed checks): money
  // credentials, held to the admin token's length.
  launcher_token: spec('EE_LAUNCHER_TOKEN', 'at least 16 characters with no surrounding whitespace', token(16), {
    secret: true,
  }),
  uptime_token: spec('EE_UPTIME_TOKEN', 'at least 16 characters with no surrounding whitespace', token(16), {
    secret: true,
  }),
  github_token: spec('EE_GITHUB_TOKEN', 'a token with no surrounding whitespace', token(1), { secret: true }),
  allowlist_asset: spec('EE_ALLOWLIST_ASSET', 'a file or release asset name', z.string().min(1), {
    fallback: 'agent-attestation-allowlist.json',
  }),
  pccs_url: spec('EE_PCCS_URL', 'an http:// or https:// URL', httpUrl),
  collateral_file: spec('EE_COLLATERAL_FILE', 'a file path', z.string().min(1)),
  attest_root_ca_file: spec('EE_ATTEST_ROOT_CA_FILE', 'a file path', z.string().min(1)),
  attest_allow_non_intel_root: spec(
    'EE_ATTEST_ALLOW_NON_INTEL_ROOT',
    '0 or 1',
    z.enum(['0', '1']).transform((v) => v === '1'),
    { fallback: '0' },
  ),
  tsm_path: spec('EE_TSM_PATH', 'an absolute path', z.string().regex(/^\//), {
    fallback: '/sys/kernel/config/tsm/report',
  }),
  attest_interval_ms: spec('EE_ATTEST_INTERVAL_SEC', SEC(1), secToMs(1), { fallback: '3600' }),
  attest_deadline_ms: spec('EE_ATTEST_DEADLINE_SEC', SEC(1), secToMs(1), { fallback: '30' }),
  health_timeout_ms: spec('EE_HEALTH_TIMEOUT_SEC', SEC(1), secToMs(1), { fallback: '120' }),
  registration_ttl_ms: spec(
    'EE_REGISTRATION_TTL_DAYS',
    'a number of days greater than 0 (fractions allowed)',
    daysToMs(0, true),
    { fallback: '30' },
  ),
  registration_warn_ms: spec(
    'EE_REGISTRATION_WARN_DAYS',
    'a number of days of at least 0 (fractions allowed)',
    daysToMs(0, false),
    { fallback: '3' },
  ),
  app_domain: spec('EE_APP_DOMAIN', 'a DNS suffix such as "app.example.com" or "localhost"', dnsSuffix),
  proxy_timeout_ms: spec('EE_PROXY_TIMEOUT_SEC', SEC(1), secToMs(1), { fallback: '60' }),
  proxy_idle_timeout_ms: spec('EE_PROXY_IDLE_TIMEOUT_SEC', SEC(1), secToMs(1), { fallback: '60' }),
  max_streams_per_agent: spec('EE_MAX_STREAMS_PER_AGENT', 'an integer from 1 to 65535', int(1, 65535), {
    fallback: '256',
  }),
  max_body_bytes: spec(
    'EE_MAX_BODY_BYTES',
    'a whole number of bytes (0 = unlimited)',
    int(0, Number.MAX_SAFE_INTEGER),
    { fallback: '0' },
  ),
  max_header_bytes: spec('EE_MAX_HEADER_BYTES', 'a whole number of bytes from 1024 to 1048576', int(1024, 1_048_576), {
    fallback: '16384',
  }),
  max_handshakes: spec('EE_MAX_CONCURRENT_HANDSHAKES', 'an integer from 1 to 1000000', int(1, 1_000_000), {
    fallback: '256',
  }),
  headers_timeout_ms: spec(
    'EE_HEADERS_TIMEOUT_MS',
    `a whole number of milliseconds from 100 to ${MAX_TIMER_MS}`,
    int(100, MAX_TIMER_MS),
    { fallback: '30000' },
  ),
  body_timeout_ms: spec(
    'EE_BODY_TIMEOUT_MS',
    `a whole number of milliseconds from 100 to ${MAX_TIMER_MS}`,
    int(100, MAX_TIMER_MS),
    { fallback: '30000' },
  ),
  max_connections: spec('EE_MAX_CONNECTIONS', 'an integer from 1 to 1000000', int(1, 1_000_000), {
    fallback: '10000',
  }),
  max_connections_per_address: spec(
    'EE_MAX_CONNECTIONS_PER_ADDRESS',
    'an integer from 1 to 1000000',
    int(1, 1_000_000),
    { fallback: '256' },
  ),
  max_handshakes_per_address: spec('EE_MAX_HANDSHAKES_PER_ADDRESS', 'an integer from 1 to 1000000', int(1, 1_000_000), {
    fallback: String(DEFAULT_MAX_HANDSHAKES_PER_ADDRESS),
  }),
  max_buffered_stream_bytes: spec(
    'EE_MAX_BUFFERED_STREAM_BYTES',
    'a whole number of bytes from 65536 to 68719476736',
    int(64 * 1024, 64 * 1024 ** 3),
    { fallback: String(DEFAULT_MAX_BUFFERED_STREAM_BYTES) },
  ),
  app_claims_per_hour: spec('EE_APP_CLAIMS_PER_HOUR', 'an integer from 1 to 1000000', int(1, 1_000_000), {
    fallback: String(DEFAULT_APP_CLAIMS_PER_HOUR),
  }),
  register_deadline_ms: spec(
    'EE_REGISTER_DEADLINE_MS',
    `a whole number of milliseconds from 100 to ${MAX_TIMER_MS}`,
    int(100, MAX_TIMER_MS),
    { fallback: String(DEFAULT_REGISTER_DEADLINE_MS) },
  ),
  drain_timeout_ms: spec('EE_DRAIN_TIMEOUT_SEC', SEC(0), secToMs(0), { fallback: '30' }),
  queue_timeout_ms: spec(
    'EE_QUEUE_TIMEOUT_MS',
    `a whole number of milliseconds from 0 to ${MAX_TIMER_MS}`,
    int(0, MAX_TIMER_MS),
    { fallback: '2000' },
  ),
  settlement_period_ms: spec('EE_SETTLEMENT_PERIOD', 'a whole number of hours from 1 to 8760, like "1h"', wholeHours, {
    fallback: '1h',
  }),
  settlement_grace_ms: spec(
    'EE_SETTLEMENT_GRACE',
    'a duration like "7d", "12h" (1 minute to 365 days)',
    duration(60_000, 365 * DAY_MS),
    { fallback: '7d' },
  ),
  settlement_delay_ms: spec('EE_SETTLEMENT_DELAY', 'a duration like "5m" (0s to 1 day)', duration(0, DAY_MS), {
    fallback: '5m',
  }),
  unstake_cooldown_ms: spec(
    'EE_UNSTAKE_COOLDOWN',
    'a duration like "24h" (0s to 365 days)',
    duration(0, 365 * DAY_MS),
    { fallback: '24h' },
  ),
  outage_threshold_premium_ms: spec(
    'EE_OUTAGE_THRESHOLD_PREMIUM',
    'a duration like "5m" (1 second to 30 days)',
    duration(1000, 30 * DAY_MS),
    { fallback: '5m' },
  ),
  outage_threshold_standard_ms: spec(
    'EE_OUTAGE_THRESHOLD_STANDARD',
    'a duration like "30m" (1 second to 30 days)',
    duration(1000, 30 * DAY_MS),
    { fallback: '30m' },
  ),
  outage_threshold_economy_ms: spec(
    'EE_OUTAGE_THRESHOLD_ECONOMY',
    'a duration like "2h" (1 second to 30 days)',
    duration(1000, 30 * DAY_MS),
    { fallback: '2h' },
  ),
  log_level: spec('EE_LOG_LEVEL', `one of ${LOG_LEVELS.join(', ')}`, z.enum(LOG_LEVELS), { fallback: 'info' }),
  access_log: spec('EE_ACCESS_LOG', 'one of off, sampled, full', z.enum(['off', 'sampled', 'full']), {
    fallback: 'sampled',
  }),
} satisfies { [K in keyof ControlPlaneConfig]-?: Spec<NonNullable<ControlPlaneConfig[K]>> };

/** Every variable this loader reads. Other EE_* names are ignored: other tools share the namespace. */
export const CONTROL_PLANE_ENV_VARS: readonly string[] = Object.values(SPECS).map((s) => s.env);

function read<T>(env: Readonly<Record<string, string | undefined>>, s: Spec<T>): T | undefined {
  const given = env[s.env];
  const raw = given === undefined || given === '' ? s.fallback : given; // empty string = unset
  if (raw === undefined) return undefined;
  const r = s.schema.safeParse(raw);
  if (r.success) return r.data;
  const got = s.secret ? `a value of ${raw.length} characters` : JSON.stringify(raw);
  throw new ConfigError(s.env, `${s.env} must be ${s.expect}, got ${got}`);
}

export function loadControlPlaneConfig(
  env: NodeJS.ProcessEnv | Record<string, string | undefined>,
): ControlPlaneConfig {
  const out: Record<string, unknown> = {};
  for (const [key, s] of Object.entries(SPECS)) out[key] = read(env, s as Spec<unknown>);
  const cfg = out as unknown as ControlPlaneConfig;

  if (cfg.attest_deadline_ms >= cfg.attest_interval_ms) {
    throw new ConfigError(
      'EE_ATTEST_DEADLINE_SEC',
      `EE_ATTEST_DEADLINE_SEC must be less than EE_ATTEST_INTERVAL_SEC (${cfg.attest_interval_ms / 1000}), got ${cfg.attest_deadline_ms / 1000}`,
    );
  }
  if (cfg.registration_warn_ms >= cfg.registration_ttl_ms) {
    throw new ConfigError(
      'EE_REGISTRATION_WARN_DAYS',
      `EE_REGISTRATION_WARN_DAYS must be less than EE_REGISTRATION_TTL_DAYS (${cfg.registration_ttl_ms / DAY_MS}), got ${cfg.registration_warn_ms / DAY_MS}`,
    );
  }
  if (cfg.collateral_file !== undefined && cfg.pccs_url !== undefined) {
    throw new ConfigError(
      'EE_COLLATERAL_FILE',
      'EE_COLLATERAL_FILE must be unset when EE_PCCS_URL is set: collateral comes from one source (a PCCS, or a file for offline verification)',
    );
  }
  if (cfg.attest_allow_non_intel_root && cfg.attest_root_ca_file === undefined) {
    throw new ConfigError(
      'EE_ATTEST_ALLOW_NON_INTEL_ROOT',
      'EE_ATTEST_ALLOW_NON_INTEL_ROOT must be 0 unless EE_ATTEST_ROOT_CA_FILE names the root CA to allow (tests only)',
    );
  }
  if (cfg.settlement_delay_ms >= cfg.settlement_grace_ms) {
    throw new ConfigError(
      'EE_SETTLEMENT_DELAY',
      'EE_SETTLEMENT_DELAY must be shorter than EE_SETTLEMENT_GRACE: locks must be finalized before they expire',
    );
  }
  return Object.freeze(cfg);
}
