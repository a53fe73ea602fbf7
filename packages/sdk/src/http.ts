// The SDK's one way to make an HTTP call: global fetch (or an injected one), a deadline, the caller's
// AbortSignal, and retries only where they are safe:
// - GET/HEAD/OPTIONS, or any request carrying an Idempotency-Key (the server deduplicates by it): retried on
//   connection errors and on 502/503/504/429 (honouring Retry-After, capped);
// - any other request: retried only when the connection failed before anything was sent (refused, DNS);
// - a streamed body (ReadableStream, async iterable) is never retried: it cannot be sent twice.
// Browser-safe: no Node modules; the body types are those of the Fetch standard plus async iterables (Node).
import { ConnectionError, TimeoutError } from './errors.js';

export type BodyLike =
  | string
  | Uint8Array
  | ArrayBuffer
  | Blob
  | URLSearchParams
  | FormData
  | ReadableStream<Uint8Array>
  | AsyncIterable<Uint8Array>;

export interface TransportOptions {
  base_url: string;
  fetch?: typeof fetch;
  /** Deadline of a call, all retries included, until the response head (streams) or the whole body (JSON). */
  timeout_ms?: number;
  /** Retries after the first attempt, where safe. */
  max_retries?: number;
  retry_base_delay_ms?: number;
  max_retry_delay_ms?: number;
}

export interface CallOptions {
  signal?: AbortSignal;
  timeout_ms?: number;
  max_retries?: number;
  headers?: Record<string, string> | Headers | Array<[string, string]>;
}

export interface SendRequest extends CallOptions {
  method: string;
  /** Path and query, starting with '/'. */
  path: string;
  body?: BodyLike | null;
  /** Sent as Idempotency-Key on every attempt (the same key: that is what makes retries safe). */
  idempotency_key?: string;
}

export const DEFAULT_TIMEOUT_MS = 30_000;
export const DEFAULT_MAX_RETRIES = 2;
const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);
const RETRY_STATUSES = new Set([429, 502, 503, 504]);
// Errors that mean no byte of the request reached the server.
const NOT_SENT_CODES = new Set([
  'ECONNREFUSED',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'UND_ERR_CONNECT_TIMEOUT',
]);

/** A deadline plus the caller's signal, as one signal for fetch. */
export class Deadline {
  readonly controller = new AbortController();
  private timer: ReturnType<typeof setTimeout> | null;
  private timed_out = false;
  private readonly unlink: () => void;

  constructor(
    readonly timeout_ms: number,
    readonly user: AbortSignal | undefined,
  ) {
    this.timer = setTimeout(() => {
      this.timed_out = true;
      this.controller.abort(new TimeoutError(timeout_ms));
    }, timeout_ms);
    const onAbort = () => this.controller.abort(user!.reason);
    if (user?.aborted) onAbort();
    user?.addEventListener('abort', onAbort, { once: true });
    this.unlink = () => user?.removeEventListener('abort', onAbort);
  }

  get signal(): AbortSignal {
    return this.controller.signal;
  }

  /** Stops the deadline (the caller's signal still aborts, e.g. a body being streamed). */
  stopTimer(): void {
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
  }

  /** Stops everything: nothing may abort this call any more. */
  done(): void {
    this.stopTimer();
    this.unlink();
  }

  /** The error to throw once aborted: the deadline's TimeoutError, or the caller's own reason. */
  reason(): unknown {
    if (this.timed_out) return new TimeoutError(this.timeout_ms);
    return this.user?.reason ?? this.controller.signal.reason;
  }
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal.aborted) return reject(signal.reason);
    const t = setTimeout(() => {
      signal.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(t);
      reject(signal.reason);
    };
    signal.addEventListener('abort', onAbort, { once: true });
  });
}

function errorCode(err: unknown): string | undefined {
  const cause = (err as { cause?: { code?: unknown; errors?: Array<{ code?: unknown }> } } | null)?.cause;
  const code = cause?.code ?? cause?.errors?.[0]?.code;
  return typeof code === 'string' ? code : undefined;
}

function replayable(body: BodyLike | null | undefined): boolean {
  return (
    body === undefined ||
    body === null ||
    typeof body === 'string' ||
    body instanceof Uint8Array ||
    body instanceof ArrayBuffer ||
    (typeof Blob !== 'undefined' && body instanceof Blob) ||
    body instanceof URLSearchParams
  );
}

export class Transport {
  readonly base_url: string;
  readonly timeout_ms: number;
  readonly max_retries: number;
  readonly retry_base_delay_ms: number;
  readonly max_retry_delay_ms: number;
  private readonly fetchImpl: typeof fetch;

  constructor(o: TransportOptions) {
    this.base_url = o.base_url.replace(/\/+$/, '');
    this.fetchImpl = o.fetch ?? ((input, init) => globalThis.fetch(input, init));
    this.timeout_ms = o.timeout_ms ?? DEFAULT_TIMEOUT_MS;
    this.max_retries = o.max_retries ?? DEFAULT_MAX_RETRIES;
    this.retry_base_delay_ms = o.retry_base_delay_ms ?? 100;
    this.max_retry_delay_ms = o.max_retry_delay_ms ?? 2_000;
  }

  /**
   * One logical call: attempts (with retries where safe) until a response head arrives, which is returned
   * whatever its status. The deadline is running when this returns: call `deadline.stopTimer()` to stream a
   * body without it, or `deadline.done()` when finished.
   */
  async send(
    req: SendRequest,
    deadline = new Deadline(req.timeout_ms ?? this.timeout_ms, req.signal),
  ): Promise<{ res: Response; deadline: Deadline }> {
    const method = req.method.toUpperCase();
    const headers = new Headers(req.headers);
    if (req.idempotency_key !== undefined) headers.set('idempotency-key', req.idempotency_key);
    const idempotent = SAFE_METHODS.has(method) || req.idempotency_key !== undefined;
    const can_replay = replayable(req.body);
    const max_retries = req.max_retries ?? this.max_retries;
    const streamed = req.body !== undefined && req.body !== null && !can_replay;
    const init: RequestInit & { duplex?: 'half' } = {
      method,
      headers,
      signal: deadline.signal,
      ...(req.body !== undefined && req.body !== null ? { body: req.body as NonNullable<RequestInit['body']> } : {}),
      // Fetch needs this for a streamed request body (Node's undici requires it).
      ...(streamed ? { duplex: 'half' as const } : {}),
    };
    const url = this.base_url + req.path;
    for (let attempt = 0; ; attempt++) {
      let res: Response;
      try {
        res = await this.fetchImpl(url, init);
      } catch (err) {
        if (deadline.signal.aborted) {
          deadline.done();
          throw deadline.reason();
        }
        const not_sent = NOT_SENT_CODES.has(errorCode(err) ?? '');
        if (attempt < max_retries && can_replay && (idempotent || not_sent)) {
          await this.backoff(attempt, null, deadline);
          continue;
        }
        deadline.done();
        throw new ConnectionError(attempt + 1, err);
      }
      if (RETRY_STATUSES.has(res.status) && idempotent && can_replay && attempt < max_retries) {
        await res.body?.cancel().catch(() => {});
        await this.backoff(attempt, res.headers.get('retry-after'), deadline);
        continue;
      }
      return { res, deadline };
    }
  }

  /** Full-jitter exponential backoff, or the server's Retry-After; both capped at max_retry_delay_ms. */
  private async backoff(attempt: number, retry_after: string | null, deadline: Deadline): Promise<void> {
    const ra = retry_after === null ? Number.NaN : Number(retry_after) * 1000;
    const delay =
      Number.isFinite(ra) && ra >= 0
        ? Math.min(ra, this.max_retry_delay_ms)
        : Math.random() * Math.min(this.max_retry_delay_ms, this.retry_base_delay_ms * 2 ** attempt);
    try {
      await sleep(delay, deadline.signal);
    } catch {
      deadline.done();
      throw deadline.reason();
    }
  }
}
