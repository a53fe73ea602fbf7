// Long (~480 lines) on purpose: one table of settings, each parsed and bounded next to its name.
// Control-plane configuration from EE_* environment variables (the seed's names and defaults).
// Pure: reads only the `env` argument, so tests and embedders can pass their own.
//
// Durations, one rule (docs/design.md §7): a NEW duration variable is spelled EE_<WHAT>_MS and takes a whole
// number of milliseconds (`ms()` below; the value lands in a `*_ms` field of the same unit). The seed's variables
// keep their names and units: *_SEC, *_DAYS (fractions allowed) and the market's values with a unit suffix
// ("5m", "7d"; EE_SETTLEMENT_PERIOD in whole hours). SEED_DURATION_VARS lists them; the config test holds every
// other duration to the rule.
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
  /** Start without EE_ADMIN_TOKEN on a non-loopback bind (the read-only admin endpoints are then open). */
  readonly allow_no_admin_token: boolean;
  /** PEM certificate chain and key: both listeners serve HTTPS (and the tunnel wss://). */
  readonly tls_cert_file: string | undefined;
  readonly tls_key_file: string | undefined;
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
  /** `/v1/proxy/{app}` shares the API's origin: it passes cookies and active content only when this is set. */
  readonly proxy_path_active_content: boolean;
  readonly drain_timeout_ms: number;
  readonly queue_timeout_ms: number; // wait for a free stream or for an app's agent to come back
  readonly log_level: LevelWithSilent;
  /** API access log: off, sampled (every error answer and 1 in 100 others) or full (every request). */
  readonly access_log: 'off' | 'sampled' | 'full';
  /** Market (docs/market.md): settlement period, whole hours, epoch-aligned. */
  readonly settlement_period_ms: number;
  /** A lock never finalized is voided this long after its period ends (the ledger's pending timeout). */
  readonly settlement_grace_ms: number;
  /**
   * EE_SANDBOX_SETTLEMENT_PERIOD_MS: a period of minutes instead of hours, so a newcomer sees a period settle
   * within minutes. It replaces settlement_period_ms, and the market then refuses sealed networks (their
   * money follows real hours).
   */
  readonly sandbox_settlement_period_ms: number | undefined;
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
const MAX_PORT = 65_535;
/** Streams one agent connection may carry (the mux's stream ids are 16-bit on the wire). */
const MAX_STREAMS_PER_AGENT = 65_535;
const MIN_HEADER_BYTES = 1024;
const MAX_HEADER_BYTES = 1_048_576;
/** Request-body bytes queued toward agents (EE_MAX_BUFFERED_STREAM_BYTES): 64 KiB to 64 GiB. */
const MIN_BUFFERED_STREAM_BYTES = 64 * 1024;
const MAX_BUFFERED_STREAM_BYTES = 64 * 1024 ** 3;
/** Largest count setting (connections, handshakes): far beyond what one process can hold. */
const MAX_COUNT = 1_000_000;
/** Longest day-denominated setting: keeps the ms value a safe integer, far beyond any real TTL. */
const MAX_DAYS = 100 * 365;
/** Longest settlement period: a year of hours. */
const MAX_SETTLEMENT_PERIOD_HOURS = 8760;
const MINUTE_MS = 60_000;
const HOUR_MS = 3_600_000;
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
/** The rule's spelling for new durations: whole milliseconds, from min_ms to the timer limit. */
const ms = (min_ms: number) => int(min_ms, MAX_TIMER_MS);
const secToMs = (min: number) => int(min, MAX_TIMER_SEC).transform((s) => s * 1000);
const daysToMs = (min: number, exclusive: boolean) =>
  z
    .string()
    .regex(DEC_RE)
    .transform(Number)
    .pipe(exclusive ? z.number().gt(min) : z.number().gte(min))
    .pipe(z.number().max(MAX_DAYS))
    .transform((d) => Math.round(d * DAY_MS));
const DURATION_UNITS: Record<string, number> = { s: 1000, m: MINUTE_MS, h: HOUR_MS, d: DAY_MS };
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
  .pipe(z.number().int().min(1).max(MAX_SETTLEMENT_PERIOD_HOURS))
  .transform((h) => h * HOUR_MS);
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

const PORT = `an integer from 0 to ${MAX_PORT} (0 = ephemeral)`;
const SEC = (min: number) => `a whole number of seconds from ${min} to ${MAX_TIMER_SEC}`;
const MS = (min: number) => `a whole number of milliseconds from ${min} to ${MAX_TIMER_MS}`;
const COUNT = (min: number) => `an integer from ${min} to ${MAX_COUNT}`;

const SPECS = {
  control_bind: spec('EE_CONTROL_BIND', 'an IP address or host name', host, { fallback: '0.0.0.0' }),
  control_port: spec('EE_CONTROL_PORT', PORT, int(0, MAX_PORT), { fallback: '8088' }),
  proxy_bind: spec('EE_PROXY_BIND', 'an IP address or host name', host, { fallback: '0.0.0.0' }),
  proxy_port: spec('EE_PROXY_PORT', PORT, int(0, MAX_PORT), { fallback: '9090' }),
  db_path: spec('EE_DB_PATH', 'a file path or ":memory:"', z.string().min(1), {
    fallback: 'control_plane/data/control-plane.db',
  }),
  database_url: spec('EE_DATABASE_URL', 'a URL starting with postgres:// or postgresql://', pgUrl, { secret: true }),
  admin_token: spec('EE_ADMIN_TOKEN', 'at least 16 characters with no surrounding whitespace', token(16), {
    secret: true,
  }),
  allow_no_admin_token: spec(
    'EE_ALLOW_NO_ADMIN_TOKEN',
    '0 or 1',
    z.enum(['0', '1']).transform((v) => v === '1'),
    { fallback: '0' },
  ),
  tls_cert_file: spec('EE_TLS_CERT_FILE', 'a file path (PEM certificate chain)', z.string().min(1)),
  tls_key_file: spec('EE_TLS_KEY_FILE', 'a file path (PEM private key)', z.string().min(1)),
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
  max_streams_per_agent: spec(
    'EE_MAX_STREAMS_PER_AGENT',
    `an integer from 1 to ${MAX_STREAMS_PER_AGENT}`,
    int(1, MAX_STREAMS_PER_AGENT),
    { fallback: '256' },
  ),
  max_body_bytes: spec(
    'EE_MAX_BODY_BYTES',
    'a whole number of bytes (0 = unlimited)',
    int(0, Number.MAX_SAFE_INTEGER),
    { fallback: '0' },
  ),
  max_header_bytes: spec(
    'EE_MAX_HEADER_BYTES',
    `a whole number of bytes from ${MIN_HEADER_BYTES} to ${MAX_HEADER_BYTES}`,
    int(MIN_HEADER_BYTES, MAX_HEADER_BYTES),
    { fallback: '16384' },
  ),
  max_handshakes: spec('EE_MAX_CONCURRENT_HANDSHAKES', COUNT(1), int(1, MAX_COUNT), { fallback: '256' }),
  headers_timeout_ms: spec('EE_HEADERS_TIMEOUT_MS', MS(100), ms(100), { fallback: '30000' }),
  body_timeout_ms: spec('EE_BODY_TIMEOUT_MS', MS(100), ms(100), { fallback: '30000' }),
  max_connections: spec('EE_MAX_CONNECTIONS', COUNT(1), int(1, MAX_COUNT), { fallback: '10000' }),
  max_connections_per_address: spec('EE_MAX_CONNECTIONS_PER_ADDRESS', COUNT(1), int(1, MAX_COUNT), {
    fallback: '256',
  }),
  max_handshakes_per_address: spec('EE_MAX_HANDSHAKES_PER_ADDRESS', COUNT(1), int(1, MAX_COUNT), {
    fallback: String(DEFAULT_MAX_HANDSHAKES_PER_ADDRESS),
  }),
  max_buffered_stream_bytes: spec(
    'EE_MAX_BUFFERED_STREAM_BYTES',
    `a whole number of bytes from ${MIN_BUFFERED_STREAM_BYTES} to ${MAX_BUFFERED_STREAM_BYTES}`,
    int(MIN_BUFFERED_STREAM_BYTES, MAX_BUFFERED_STREAM_BYTES),
    { fallback: String(DEFAULT_MAX_BUFFERED_STREAM_BYTES) },
  ),
  app_claims_per_hour: spec('EE_APP_CLAIMS_PER_HOUR', COUNT(1), int(1, MAX_COUNT), {
    fallback: String(DEFAULT_APP_CLAIMS_PER_HOUR),
  }),
  proxy_path_active_content: spec(
    'EE_PROXY_PATH_ACTIVE_CONTENT',
    '0 or 1',
    z.enum(['0', '1']).transform((v) => v === '1'),
    { fallback: '0' },
  ),
  register_deadline_ms: spec('EE_REGISTER_DEADLINE_MS', MS(100), ms(100), {
    fallback: String(DEFAULT_REGISTER_DEADLINE_MS),
  }),
  drain_timeout_ms: spec('EE_DRAIN_TIMEOUT_SEC', SEC(0), secToMs(0), { fallback: '30' }),
  queue_timeout_ms: spec('EE_QUEUE_TIMEOUT_MS', MS(0), ms(0), { fallback: '2000' }),
  settlement_period_ms: spec(
    'EE_SETTLEMENT_PERIOD',
    `a whole number of hours from 1 to ${MAX_SETTLEMENT_PERIOD_HOURS}, like "1h"`,
    wholeHours,
    {
      fallback: '1h',
    },
  ),
  sandbox_settlement_period_ms: spec(
    'EE_SANDBOX_SETTLEMENT_PERIOD_MS',
    `whole minutes in milliseconds from ${MINUTE_MS} to ${HOUR_MS - MINUTE_MS}, like 120000 (a sandbox-only fast settlement clock)`,
    int(MINUTE_MS, HOUR_MS - MINUTE_MS).refine((v) => v % MINUTE_MS === 0),
  ),
  settlement_grace_ms: spec(
    'EE_SETTLEMENT_GRACE',
    'a duration like "7d", "12h" (1 minute to 365 days)',
    duration(MINUTE_MS, 365 * DAY_MS),
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

/** The variable behind each setting (e.g. `attest_interval_ms` → `EE_ATTEST_INTERVAL_SEC`). */
export const CONTROL_PLANE_ENV_BY_SETTING = Object.fromEntries(
  Object.entries(SPECS).map(([k, s]) => [k, s.env]),
) as Readonly<Record<keyof ControlPlaneConfig, string>>;

/** Duration variables named before the rule at the top of this file; every other one is EE_<WHAT>_MS. */
export const SEED_DURATION_VARS: readonly string[] = [
  'EE_ATTEST_INTERVAL_SEC',
  'EE_ATTEST_DEADLINE_SEC',
  'EE_HEALTH_TIMEOUT_SEC',
  'EE_PROXY_TIMEOUT_SEC',
  'EE_PROXY_IDLE_TIMEOUT_SEC',
  'EE_DRAIN_TIMEOUT_SEC',
  'EE_REGISTRATION_TTL_DAYS',
  'EE_REGISTRATION_WARN_DAYS',
  'EE_SETTLEMENT_PERIOD',
  'EE_SETTLEMENT_GRACE',
  'EE_SETTLEMENT_DELAY',
  'EE_UNSTAKE_COOLDOWN',
  'EE_OUTAGE_THRESHOLD_PREMIUM',
  'EE_OUTAGE_THRESHOLD_STANDARD',
  'EE_OUTAGE_THRESHOLD_ECONOMY',
];

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
  const out: Partial<Record<keyof ControlPlaneConfig, unknown>> = {};
  for (const [key, s] of Object.entries(SPECS)) out[key as keyof ControlPlaneConfig] = read(env, s as Spec<unknown>);
  // Each value went through its setting's schema (SPECS is checked against ControlPlaneConfig above).
  const cfg = out as ControlPlaneConfig;

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
  if ((cfg.tls_cert_file === undefined) !== (cfg.tls_key_file === undefined)) {
    throw new ConfigError(
      cfg.tls_cert_file === undefined ? 'EE_TLS_CERT_FILE' : 'EE_TLS_KEY_FILE',
      'EE_TLS_CERT_FILE and EE_TLS_KEY_FILE must be set together (or neither, for plain HTTP behind a TLS proxy)',
    );
  }
  if (cfg.sandbox_settlement_period_ms !== undefined) {
    if ((env.EE_SETTLEMENT_PERIOD ?? '') !== '')
      throw new ConfigError(
        'EE_SANDBOX_SETTLEMENT_PERIOD_MS',
        'EE_SANDBOX_SETTLEMENT_PERIOD_MS and EE_SETTLEMENT_PERIOD must not both be set: the sandbox clock replaces the period',
      );
    (cfg as { settlement_period_ms: number }).settlement_period_ms = cfg.sandbox_settlement_period_ms;
  }
  if (cfg.settlement_delay_ms >= cfg.settlement_grace_ms) {
    throw new ConfigError(
      'EE_SETTLEMENT_DELAY',
      'EE_SETTLEMENT_DELAY must be shorter than EE_SETTLEMENT_GRACE: locks must be finalized before they expire',
    );
  }
  return Object.freeze(cfg);
}

/** True for an address only this machine can reach: 127.0.0.0/8, ::1, localhost. */
export function isLoopbackBind(bind: string): boolean {
  const h = bind.toLowerCase();
  return h === 'localhost' || h === '::1' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(h);
}

/**
 * Production start refuses to expose the API without an admin token: the read-only admin endpoints (apps,
 * metrics) would be open to the network. Loopback binds (development, a proxy on the same host) are fine;
 * EE_ALLOW_NO_ADMIN_TOKEN=1 says the operator means it.
 */
export function checkExposure(cfg: ControlPlaneConfig): void {
  if (cfg.admin_token !== undefined || cfg.allow_no_admin_token || isLoopbackBind(cfg.control_bind)) return;
  throw new ConfigError(
    'EE_ADMIN_TOKEN',
    `EE_ADMIN_TOKEN is not set and the API listens on ${cfg.control_bind}, beyond this machine: /v1/apps and /metrics ` +
      'would be open to anyone. Set EE_ADMIN_TOKEN (at least 16 characters), bind EE_CONTROL_BIND to 127.0.0.1, ' +
      'or set EE_ALLOW_NO_ADMIN_TOKEN=1 if that is intended',
  );
}
