// The CLI's one HTTP client for the control plane's JSON API. Every network command goes through
// `apiRequest`, so base URL, bearer auth, timeouts, response limits, error mapping and secret handling are
// decided once:
//
//   const apps = await apiRequest({ path: '/v1/apps', auth: 'admin', schema: AppListSchema }, cmd.opts());
//
// - The connection comes from flags or the environment (flags win): --url / EE_CONTROL_URL (default
//   http://127.0.0.1:8088, the `npm start` network), --admin-token / EE_ADMIN_TOKEN, --api-key / EE_API_KEY,
//   --timeout-ms (default 15000). Add the flags to a command with `addConnectionOptions` (options.ts).
// - A JSON error body `{error:{code,message}}` becomes CliError("<code>: <message>", exit 1, code), printed
//   by main.ts as `ee: <code>: <message>`. A refused connection or a timeout names the URL (exit 1).
// - Successful bodies are validated with the caller's zod schema; anything else is an error, never guessed at.
// - Tokens travel only in the Authorization header. They are never part of a message, and main.ts redacts
//   them from stderr anyway.
import { z } from 'zod';
import { CliError, usageError } from './errors.js';

export const DEFAULT_CONTROL_URL = 'http://127.0.0.1:8088';
export const DEFAULT_TIMEOUT_MS = 15_000;
/** Upper bound for --timeout-ms: a quote on a loaded TDX host takes seconds, not hours. */
export const MAX_TIMEOUT_MS = 600_000;
/** Largest response body read; the API's biggest answers (an app's detail) are a few KiB. */
export const MAX_RESPONSE_BYTES = 8 * 1024 * 1024;
/** A 503 with Retry-After (e.g. `busy` from /v1/attestation) is retried this often, for GET only. */
export const MAX_BUSY_RETRIES = 2;
/** Longest Retry-After honoured; a longer one is reported instead of waited out. */
export const MAX_RETRY_AFTER_S = 5;

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

export interface ApiRequest<T> {
  method?: 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';
  /** Starting with '/'; path segments from user input must already be encodeURIComponent'ed. */
  path: string;
  query?: Record<string, string | undefined>;
  /** Sent as JSON. */
  body?: unknown;
  auth: AuthMode;
  /** Sent as the Idempotency-Key header (safe retries of POSTs). */
  idempotencyKey?: string;
  /** Validates the successful answer (an empty body is validated as `undefined`). */
  schema: z.ZodType<T>;
  /** Overrides --timeout-ms for this request. */
  timeout_ms?: number;
}

const empty = (v: string | undefined): string | undefined => (v === undefined || v === '' ? undefined : v);

/** Flags win over the environment; an empty value counts as unset. Throws a usage error (exit 2). */
export function resolveConnection(opts: GlobalOptions, env: NodeJS.ProcessEnv = process.env): Connection {
  const raw = empty(opts.url) ?? empty(env.EE_CONTROL_URL) ?? DEFAULT_CONTROL_URL;
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

/** The URL of a request (no credentials can be in it: resolveConnection refuses them). */
export function requestUrl(conn: Connection, path: string, query: Record<string, string | undefined> = {}): URL {
  const url = new URL(conn.base_url.href);
  url.pathname = `${prefixOf(conn)}${path}`;
  for (const [k, v] of Object.entries(query)) if (v !== undefined) url.searchParams.set(k, v);
  return url;
}

const ErrorBodySchema = z.object({
  error: z.object({ code: z.string().min(1).max(200), message: z.string().max(2000) }),
});

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

/** Sends one request and returns the validated answer, or throws a CliError (exit 1) that says what failed. */
export async function apiRequest<T>(req: ApiRequest<T>, opts: GlobalOptions | Connection): Promise<T> {
  const conn = 'base_url' in opts ? opts : resolveConnection(opts);
  const method = req.method ?? 'GET';
  const url = requestUrl(conn, req.path, req.query);
  const where = baseUrlText(conn);
  const timeout_ms = req.timeout_ms ?? conn.timeout_ms;
  const headers: Record<string, string> = { accept: 'application/json' };
  const token = tokenFor(conn, req.auth);
  if (token !== undefined) headers.authorization = `Bearer ${token}`;
  if (req.idempotencyKey !== undefined) headers['idempotency-key'] = req.idempotencyKey;
  if (req.body !== undefined) headers['content-type'] = 'application/json';

  for (let attempt = 0; ; attempt++) {
    const started = Date.now();
    let res: Response;
    try {
      res = await fetch(url, {
        method,
        headers,
        ...(req.body !== undefined ? { body: JSON.stringify(req.body) } : {}),
        redirect: 'error', // a redirect could carry the Authorization header elsewhere
        signal: AbortSignal.timeout(timeout_ms),
      });
    } catch (err) {
      throw networkError(err, where, timeout_ms);
    }
    const text = await readLimited(res, where, timeout_ms);
    debug(
      `${method} ${url.origin}${url.pathname} auth=${req.auth}${token === undefined ? '(none)' : ''} -> ${res.status} (${Date.now() - started} ms, ${text.length} chars)`,
    );
    const retryAfter = Number(res.headers.get('retry-after') ?? NaN);
    if (
      res.status === 503 &&
      method === 'GET' &&
      attempt < MAX_BUSY_RETRIES &&
      retryAfter >= 0 &&
      retryAfter <= MAX_RETRY_AFTER_S
    ) {
      await new Promise((r) => setTimeout(r, retryAfter * 1000));
      continue;
    }
    let json: unknown = undefined;
    if (text !== '') {
      try {
        json = JSON.parse(text);
      } catch {
        json = undefined;
      }
    }
    if (res.status >= 400) {
      const body = ErrorBodySchema.safeParse(json);
      if (body.success) {
        const { code, message } = body.data.error;
        throw new CliError(`${code}: ${message}${res.status === 401 ? AUTH_HINT[req.auth] : ''}`, 1, code);
      }
      throw new CliError(
        `http_${res.status}: ${method} ${req.path} answered ${res.status} ${res.statusText}`.trim(),
        1,
        `http_${res.status}`,
      );
    }
    if (text !== '' && json === undefined)
      throw new CliError(`bad_response: ${method} ${req.path} did not answer JSON`, 1, 'bad_response');
    const parsed = req.schema.safeParse(json);
    if (!parsed.success) {
      const issues = parsed.error.issues.slice(0, 5).map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`);
      throw new CliError(
        `bad_response: unexpected answer from ${method} ${req.path}: ${issues.join('; ')}`,
        1,
        'bad_response',
      );
    }
    return parsed.data;
  }
}

async function readLimited(res: Response, where: string, timeout_ms: number): Promise<string> {
  const declared = Number(res.headers.get('content-length') ?? NaN);
  if (declared > MAX_RESPONSE_BYTES)
    throw new CliError(
      `response_too_large: ${where} answered ${declared} bytes (limit ${MAX_RESPONSE_BYTES})`,
      1,
      'response_too_large',
    );
  if (res.body === null) return '';
  const chunks: Buffer[] = [];
  let total = 0;
  try {
    for await (const chunk of res.body as AsyncIterable<Uint8Array>) {
      total += chunk.length;
      if (total > MAX_RESPONSE_BYTES)
        throw new CliError(
          `response_too_large: ${where} answered more than ${MAX_RESPONSE_BYTES} bytes`,
          1,
          'response_too_large',
        );
      chunks.push(Buffer.from(chunk));
    }
  } catch (err) {
    if (err instanceof CliError) throw err;
    throw networkError(err, where, timeout_ms);
  }
  return Buffer.concat(chunks).toString('utf8');
}

function networkError(err: unknown, where: string, timeout_ms: number): CliError {
  const e = err as { name?: string; message?: string; cause?: { code?: string; message?: string } };
  if (e.name === 'TimeoutError' || e.name === 'AbortError') {
    return new CliError(
      `timeout: no answer from the control plane at ${where} within ${timeout_ms} ms (--timeout-ms)`,
      1,
      'timeout',
    );
  }
  const code = e.cause?.code;
  const why =
    code === 'ECONNREFUSED'
      ? 'connection refused (is it running? set EE_CONTROL_URL or --url)'
      : code === 'ENOTFOUND' || code === 'EAI_AGAIN'
        ? 'host name not found'
        : (code ?? e.cause?.message ?? e.message ?? 'unknown error');
  return new CliError(`unreachable: cannot reach the control plane at ${where}: ${why}`, 1, 'unreachable');
}

/** EE_DEBUG=1: one line per request on stderr (method, URL without query, auth mode, status; never headers). */
export function debug(line: string): void {
  if (process.env.EE_DEBUG === '1') process.stderr.write(`ee: debug: ${line}\n`);
}
