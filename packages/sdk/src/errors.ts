// Typed errors. Every failure the SDK raises is an EasyEnclaveError with a `kind` (switch on it, or use
// instanceof with the subclasses), the HTTP `status` (0 when there was no HTTP answer) and the control plane's
// error `code` (`{"error":{"code","message"}}`; `http_<status>` when the body was not that shape).
// An AbortSignal the caller aborted is not wrapped: its own reason is thrown, as fetch does.
import { z } from 'zod';

export type ErrorKind =
  | 'bad_request'
  | 'unauthorized'
  | 'payment_required'
  | 'forbidden'
  | 'not_found'
  | 'conflict'
  | 'payload_too_large'
  | 'rate_limited'
  | 'server_error'
  | 'bad_gateway'
  | 'unavailable'
  | 'gateway_timeout'
  | 'http'
  | 'timeout'
  | 'connection'
  | 'invalid_response'
  | 'attestation';

export interface ErrorDetails {
  status: number;
  code: string;
  message: string;
  retry_after_s?: number;
  /** The response body when it was not the control plane's error shape (bounded). */
  body?: string;
  cause?: unknown;
}

export class EasyEnclaveError extends Error {
  override name = 'EasyEnclaveError';
  readonly kind: ErrorKind;
  readonly status: number;
  readonly code: string;
  readonly retry_after_s: number | undefined;
  readonly body: string | undefined;

  constructor(kind: ErrorKind, d: ErrorDetails) {
    super(d.message, d.cause === undefined ? undefined : { cause: d.cause });
    this.kind = kind;
    this.status = d.status;
    this.code = d.code;
    this.retry_after_s = d.retry_after_s;
    this.body = d.body;
  }
}

/** The error class of one HTTP answer's kind: its instances carry `name` and the fixed `kind`. */
function httpErrorClass(kind: ErrorKind, name: string) {
  return class extends EasyEnclaveError {
    override name = name;
    constructor(d: ErrorDetails) {
      super(kind, d);
    }
  };
}

export class BadRequestError extends httpErrorClass('bad_request', 'BadRequestError') {}
export class UnauthorizedError extends httpErrorClass('unauthorized', 'UnauthorizedError') {}
/** 402: the account cannot cover it (e.g. `insufficient_funds` for a transfer, a stake, a lease's lock). */
export class PaymentRequiredError extends httpErrorClass('payment_required', 'PaymentRequiredError') {}
export class ForbiddenError extends httpErrorClass('forbidden', 'ForbiddenError') {}
export class NotFoundError extends httpErrorClass('not_found', 'NotFoundError') {}
export class ConflictError extends httpErrorClass('conflict', 'ConflictError') {}
export class UnavailableError extends httpErrorClass('unavailable', 'UnavailableError') {}
export class GatewayTimeoutError extends httpErrorClass('gateway_timeout', 'GatewayTimeoutError') {}

/** The SDK's own deadline (`timeout_ms`) passed before an answer. */
export class TimeoutError extends EasyEnclaveError {
  override name = 'TimeoutError';
  constructor(timeout_ms: number) {
    super('timeout', { status: 0, code: 'timeout', message: `no answer within ${timeout_ms} ms` });
  }
}

/** No HTTP answer at all (connection refused, reset, DNS). `attempts` counts the tries made. */
export class ConnectionError extends EasyEnclaveError {
  override name = 'ConnectionError';
  constructor(
    readonly attempts: number,
    cause: unknown,
  ) {
    super('connection', {
      status: 0,
      code: 'connection_failed',
      message: `request failed after ${attempts} attempt(s): ${describe(cause)}`,
      cause,
    });
  }
}

/** Where an answer left the contract: the field's path ('' for the root) and what was wrong with it. */
export interface ResponseIssue {
  path: string;
  message: string;
}

/** A server answer that does not match the documented contract (the SDK validates every response). */
export class InvalidResponseError extends EasyEnclaveError {
  override name = 'InvalidResponseError';
  /** The fields that did not match the schema (empty when the body was not JSON at all). */
  readonly issues: readonly ResponseIssue[];
  constructor(status: number, message: string, issues: readonly ResponseIssue[] = []) {
    super('invalid_response', { status, code: 'invalid_response', message });
    this.issues = issues;
  }
}

/** Evidence did not verify: nothing was sent to the app. `reasons` lists every check that failed. */
export class AttestationError extends EasyEnclaveError {
  override name = 'AttestationError';
  constructor(readonly reasons: string[]) {
    super('attestation', {
      status: 0,
      code: 'attestation_failed',
      message: `attestation failed: ${reasons.join('; ')}`,
    });
  }
}

function describe(err: unknown): string {
  if (!(err instanceof Error)) return String(err);
  const code = (err.cause as { code?: unknown } | undefined)?.code;
  const inner = err.cause instanceof Error ? err.cause.message : '';
  return [err.message, typeof code === 'string' ? code : '', inner].filter((s) => s !== '').join(': ');
}

const ErrorBody = z.object({ error: z.object({ code: z.string(), message: z.string() }) });

/** Longest error body the SDK reads (the rest is not needed to explain the error). */
export const MAX_ERROR_BODY_BYTES = 64 * 1024;

const BY_STATUS: Record<number, new (d: ErrorDetails) => EasyEnclaveError> = {
  400: BadRequestError,
  401: UnauthorizedError,
  402: PaymentRequiredError,
  403: ForbiddenError,
  404: NotFoundError,
  409: ConflictError,
  503: UnavailableError,
  504: GatewayTimeoutError,
};

function kindOf(status: number): ErrorKind {
  if (status === 413) return 'payload_too_large';
  if (status === 429) return 'rate_limited';
  if (status === 502) return 'bad_gateway';
  return status >= 500 ? 'server_error' : 'http';
}

/** The typed error for a non-2xx answer; reads (and so consumes) a bounded part of the body. */
export async function errorFromResponse(res: Response): Promise<EasyEnclaveError> {
  const text = await readBounded(res, MAX_ERROR_BODY_BYTES).catch(() => '');
  let parsed: z.infer<typeof ErrorBody> | null = null;
  try {
    const r = ErrorBody.safeParse(JSON.parse(text));
    if (r.success) parsed = r.data;
  } catch {
    // not JSON: keep the text as the body
  }
  const ra = Number(res.headers.get('retry-after'));
  const d: ErrorDetails = {
    status: res.status,
    code: parsed?.error.code ?? `http_${res.status}`,
    message:
      parsed?.error.message ?? `HTTP ${res.status} ${res.statusText}`.trim() + (text ? `: ${text.slice(0, 200)}` : ''),
    ...(Number.isFinite(ra) && ra >= 0 && res.headers.has('retry-after') ? { retry_after_s: ra } : {}),
    ...(parsed === null && text !== '' ? { body: text } : {}),
  };
  const Cls = BY_STATUS[res.status];
  return Cls ? new Cls(d) : new EasyEnclaveError(kindOf(res.status), d);
}

/** Reads at most `max_bytes` of a body as UTF-8, then cancels the rest. */
export async function readBounded(res: Response, max_bytes: number): Promise<string> {
  if (res.body === null) return '';
  const reader = res.body.getReader();
  const chunks: Uint8Array[] = [];
  let n = 0;
  try {
    while (n < max_bytes) {
      const { done, value } = await reader.read();
      if (done) break;
      chunks.push(value);
      n += value.byteLength;
    }
  } finally {
    if (n >= max_bytes) await reader.cancel().catch(() => {});
    reader.releaseLock();
  }
  const all = new Uint8Array(Math.min(n, max_bytes));
  let off = 0;
  for (const c of chunks) {
    const take = Math.min(c.byteLength, all.byteLength - off);
    all.set(c.subarray(0, take), off);
    off += take;
  }
  return new TextDecoder().decode(all);
}
