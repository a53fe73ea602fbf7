// The CLI's one way to call the control plane's JSON API, built on the SDK's: its transport (deadline,
// retries where safe: GETs and POSTs under an Idempotency-Key, on connection errors and 429/502/503/504), its
// bounded, lossless JSON reading (money stays exact), its typed errors and its wire schemas (the SDK's, the
// one set of them). Every network command goes through `apiRequest`, so base URL, bearer auth, timeouts and
// the wording of failures are decided once:
//
//   const apps = await apiRequest({ path: '/v1/apps', auth: 'admin', schema: AppsSchema }, cmd.opts());
//
// - The connection comes from flags or the environment (flags win): --url / EE_CONTROL_URL (default: the
//   network `npm start` started, from .easyenclave/config.json, else http://127.0.0.1:8088), --admin-token / EE_ADMIN_TOKEN, --api-key / EE_API_KEY, --timeout-ms (default
//   15000). Add the flags to a command with `addConnectionOptions` (options.ts).
// - An API error `{error:{code,message}}` becomes CliError("<code>: <message>", exit 1, code), printed by
//   main.ts as `ee: <code>: <message>`. A refused connection or a timeout names the URL (exit 1).
// - Successful bodies are validated with the caller's zod schema; anything else is an error, never guessed at.
// - Tokens travel only in the Authorization header, and never across a redirect (redirects are refused).
//   They are never part of a message, and main.ts redacts them from stderr anyway.
import type { z } from 'zod';
import { callJson, EasyEnclaveError, InvalidResponseError, Transport } from '@easyenclave/sdk';
import { CliError, usageError } from './errors.js';
import { findLocalConfig } from './local-config.js';

export const DEFAULT_CONTROL_URL = 'http://127.0.0.1:8088';
export const DEFAULT_TIMEOUT_MS = 15_000;
/** Upper bound for --timeout-ms: a quote on a loaded TDX host takes seconds, not hours. */
export const MAX_TIMEOUT_MS = 600_000;
/** Retries after the first attempt, where the SDK deems them safe (e.g. a 503 `busy` from /v1/attestation). */
export const MAX_RETRIES = 2;

/** The connection flags as commander parses them (camelCase). Every field is optional. */
export interface GlobalOptions {
  url?: string;
  adminToken?: string;
  apiKey?: string;
  /** Only on the commands that use it (`addServiceTokenOption`). */
  launcherToken?: string;
  uptimeToken?: string;
  timeoutMs?: string;
}

export interface Connection {
  /** May carry a path prefix (a control plane behind a reverse proxy); see `baseUrlText`. */
  base_url: URL;
  admin_token: string | undefined;
  api_key: string | undefined;
  launcher_token: string | undefined;
  uptime_token: string | undefined;
  timeout_ms: number;
}

/** 'admin': EE_ADMIN_TOKEN; 'api-key': EE_API_KEY (a user's key); 'launcher' / 'uptime': the market's service
 *  tokens EE_LAUNCHER_TOKEN / EE_UPTIME_TOKEN; 'none': a public route. */
export type AuthMode = 'admin' | 'api-key' | 'launcher' | 'uptime' | 'none';

export interface ApiRequest<S extends z.ZodType> {
  method?: 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';
  /** Starting with '/'; path segments from user input must already be encodeURIComponent'ed. */
  path: string;
  query?: Record<string, string | undefined>;
  /** Sent as JSON. */
  body?: unknown;
  auth: AuthMode;
  /** Sent as the Idempotency-Key header (safe retries of POSTs). */
  idempotencyKey?: string;
  /** Validates the successful answer (one of the SDK's wire schemas). */
  schema: S;
  /** Overrides --timeout-ms for this request. */
  timeout_ms?: number;
}

const empty = (v: string | undefined): string | undefined => (v === undefined || v === '' ? undefined : v);

/** Flags win over the environment; an empty value counts as unset. Throws a usage error (exit 2). */
export function resolveConnection(opts: GlobalOptions, env: NodeJS.ProcessEnv = process.env): Connection {
  const raw = empty(opts.url) ?? empty(env.EE_CONTROL_URL) ?? findLocalConfig()?.control_url ?? DEFAULT_CONTROL_URL;
  let base_url: URL;
  try {
    base_url = new URL(raw);
  } catch {
    throw usageError('--url / EE_CONTROL_URL is not a URL (expected e.g. http://127.0.0.1:8088)');
  }
  if (base_url.protocol !== 'http:' && base_url.protocol !== 'https:')
    throw usageError('--url / EE_CONTROL_URL must be http:// or https://');
  // Never echo a URL that carries credentials; tokens belong in --admin-token / --api-key.
  if (base_url.username !== '' || base_url.password !== '')
    throw usageError('--url / EE_CONTROL_URL must not contain credentials; use --admin-token or --api-key');
  if (base_url.search !== '' || base_url.hash !== '')
    throw usageError('--url / EE_CONTROL_URL must not have a query or fragment');
  const secret = (name: string, v: string | undefined): string | undefined => {
    // Header-safe printable ASCII; the message names the flag, never the value.
    if (v !== undefined && !/^[\x21-\x7e]+$/.test(v))
      throw usageError(`${name} must be printable ASCII without spaces`);
    return v;
  };
  let timeout_ms = DEFAULT_TIMEOUT_MS;
  if (opts.timeoutMs !== undefined) {
    if (!/^[0-9]{1,7}$/.test(opts.timeoutMs) || Number(opts.timeoutMs) < 1 || Number(opts.timeoutMs) > MAX_TIMEOUT_MS) {
      throw usageError(`--timeout-ms must be a whole number of milliseconds from 1 to ${MAX_TIMEOUT_MS}`);
    }
    timeout_ms = Number(opts.timeoutMs);
  }
  return {
    base_url,
    admin_token: secret('--admin-token / EE_ADMIN_TOKEN', empty(opts.adminToken) ?? empty(env.EE_ADMIN_TOKEN)),
    api_key: secret('--api-key / EE_API_KEY', empty(opts.apiKey) ?? empty(env.EE_API_KEY)),
    launcher_token: secret(
      '--launcher-token / EE_LAUNCHER_TOKEN',
      empty(opts.launcherToken) ?? empty(env.EE_LAUNCHER_TOKEN),
    ),
    uptime_token: secret('--uptime-token / EE_UPTIME_TOKEN', empty(opts.uptimeToken) ?? empty(env.EE_UPTIME_TOKEN)),
    timeout_ms,
  };
}

const prefixOf = (conn: Connection): string => conn.base_url.pathname.replace(/\/+$/, '');

/** The base URL for messages: origin and path prefix, no trailing slash (and never credentials). */
export function baseUrlText(conn: Connection): string {
  return `${conn.base_url.origin}${prefixOf(conn)}`;
}

function tokenFor(conn: Connection, auth: AuthMode): string | undefined {
  switch (auth) {
    case 'admin':
      return conn.admin_token;
    case 'api-key':
      return conn.api_key;
    case 'launcher':
      return conn.launcher_token;
    case 'uptime':
      return conn.uptime_token;
    case 'none':
      return undefined;
  }
}

const AUTH_HINT: Record<AuthMode, string> = {
  admin: ' (set EE_ADMIN_TOKEN or pass --admin-token)',
  'api-key': ' (set EE_API_KEY or pass --api-key)',
  launcher: ' (set EE_LAUNCHER_TOKEN or pass --launcher-token)',
  uptime: ' (set EE_UPTIME_TOKEN or pass --uptime-token)',
  none: '',
};

/** The SDK transport of a connection: redirects refused, and one EE_DEBUG line per attempt. */
function transportOf(conn: Connection, auth: AuthMode, has_token: boolean): Transport {
  return new Transport({
    base_url: baseUrlText(conn),
    timeout_ms: conn.timeout_ms,
    max_retries: MAX_RETRIES,
    fetch: async (input, init) => {
      const started = Date.now();
      const url = new URL(String(input));
      const line = (outcome: string) =>
        debug(
          `${init?.method ?? 'GET'} ${url.origin}${url.pathname} auth=${auth}${has_token ? '' : '(none)'} -> ${outcome} (${Date.now() - started} ms)`,
        );
      try {
        // A redirect could carry the Authorization header elsewhere.
        const res = await fetch(input, { ...init, redirect: 'error' });
        line(String(res.status));
        return res;
      } catch (err) {
        line(`failed: ${(err as Error).message}`);
        throw err;
      }
    },
  });
}

/** Sends one request and returns the validated answer, or throws a CliError (exit 1) that says what failed.
 *  A POST the server answered from an earlier one with the same Idempotency-Key comes back with
 *  `replayed: true` (like the SDK's own calls). */
export async function apiRequest<S extends z.ZodType>(
  req: ApiRequest<S>,
  opts: GlobalOptions | Connection,
): Promise<z.output<S>> {
  const conn = 'base_url' in opts ? opts : resolveConnection(opts);
  const method = req.method ?? 'GET';
  const token = tokenFor(conn, req.auth);
  const query = new URLSearchParams();
  for (const [k, v] of Object.entries(req.query ?? {})) if (v !== undefined) query.set(k, v);
  const qs = query.toString();
  const timeout_ms = req.timeout_ms ?? conn.timeout_ms;
  try {
    const r = await callJson(
      transportOf(conn, req.auth, token !== undefined),
      {
        method,
        path: qs === '' ? req.path : `${req.path}?${qs}`,
        headers: token === undefined ? {} : { authorization: `Bearer ${token}` },
        timeout_ms,
        ...(req.body !== undefined ? { body: req.body } : {}),
        ...(req.idempotencyKey !== undefined ? { idempotency_key: req.idempotencyKey } : {}),
      },
      req.schema,
    );
    const data: unknown = r.data;
    if (r.headers.get('idempotent-replayed') === 'true' && typeof data === 'object' && data !== null)
      (data as { replayed?: boolean }).replayed = true;
    return r.data;
  } catch (err) {
    throw cliError(err, { where: baseUrlText(conn), method, path: req.path, auth: req.auth, timeout_ms });
  }
}

/** The SDK's typed error as the CLI words it (`<code>: <message>`); anything else unchanged. */
function cliError(
  err: unknown,
  c: { where: string; method: string; path: string; auth: AuthMode; timeout_ms: number },
): unknown {
  if (!(err instanceof EasyEnclaveError)) return err;
  switch (err.kind) {
    case 'timeout':
      return new CliError(
        `timeout: no answer from the control plane at ${c.where} within ${c.timeout_ms} ms (--timeout-ms)`,
        1,
        'timeout',
      );
    case 'connection':
      return new CliError(
        `unreachable: cannot reach the control plane at ${c.where}: ${unreachableWhy(err.cause)}`,
        1,
        'unreachable',
      );
    case 'invalid_response': {
      const issues = err instanceof InvalidResponseError ? err.issues : [];
      const what =
        issues.length > 0
          ? `unexpected answer from ${c.method} ${c.path}: ${issues.map((i) => `${i.path || '(root)'}: ${i.message}`).join('; ')}`
          : err.message;
      return new CliError(`bad_response: ${what}`, 1, 'bad_response');
    }
    default:
      // Not the API's error shape (a proxy's page, an empty body): say what answered.
      if (err.code === `http_${err.status}`)
        return new CliError(`${err.code}: ${c.method} ${c.path} answered ${err.status}`, 1, err.code);
      return new CliError(`${err.code}: ${err.message}${err.status === 401 ? AUTH_HINT[c.auth] : ''}`, 1, err.code);
  }
}

function unreachableWhy(cause: unknown): string {
  const e = cause as { message?: string; cause?: { code?: string; message?: string } } | undefined;
  const code = e?.cause?.code;
  if (code === 'ECONNREFUSED') return 'connection refused (is it running? set EE_CONTROL_URL or --url)';
  if (code === 'ENOTFOUND' || code === 'EAI_AGAIN') return 'host name not found';
  return code ?? e?.cause?.message ?? e?.message ?? 'unknown error';
}

/** EE_DEBUG=1: one line per request on stderr (method, URL without query, auth mode, status; never headers). */
export function debug(line: string): void {
  if (process.env.EE_DEBUG === '1') process.stderr.write(`ee: debug: ${line}\n`);
}
