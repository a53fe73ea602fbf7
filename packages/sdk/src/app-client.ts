// A client for one app, reached through the control plane's proxy (`/v1/proxy/{app}/...` on the API port).
// Request and response bodies stream (a ReadableStream or async iterable in, the fetch Response out).
// get/post/put/delete/head throw a typed error for a non-2xx answer (the control plane's proxy errors, e.g.
// 403 not_attested or 503 no_agent, and the app's own); `fetch` returns every Response as it is.
// The client never sends the SDK's API key or admin token to the app: those are for the control plane.
import { errorFromResponse } from './errors.js';
import type { BodyLike, CallOptions, Transport } from './http.js';
import { newIdempotencyKey } from './bytes.js';
import type { VerifiedEvidence } from './trust.js';

export interface AppRequestOptions extends CallOptions {
  /**
   * Send an Idempotency-Key (this one, or a fresh one when `true`) on every attempt, which also lets the SDK
   * retry a non-GET request. Only useful when the app deduplicates by it.
   */
  idempotency_key?: string | true;
}

export interface AppFetchInit extends AppRequestOptions {
  method?: string;
  body?: BodyLike | null;
}

/** A JSON-able value that is not already a body: sent as JSON with content-type application/json. */
export type AppBody = BodyLike | Record<string, unknown> | unknown[] | null;

function isBodyLike(b: unknown): b is BodyLike {
  return (
    typeof b === 'string' ||
    b instanceof Uint8Array ||
    b instanceof ArrayBuffer ||
    b instanceof URLSearchParams ||
    (typeof Blob !== 'undefined' && b instanceof Blob) ||
    (typeof FormData !== 'undefined' && b instanceof FormData) ||
    (typeof ReadableStream !== 'undefined' && b instanceof ReadableStream) ||
    (typeof b === 'object' && b !== null && Symbol.asyncIterator in b)
  );
}

export class AppClient {
  constructor(
    protected readonly transport: Transport,
    readonly app: string,
    /** What was verified before this client was handed out (null when verification was off). */
    public verified: VerifiedEvidence | null,
    private readonly reverify: ((o: CallOptions) => Promise<VerifiedEvidence>) | null,
  ) {}

  /** Verifies the app's agent again (fresh nonce); throws AttestationError and keeps the old result on failure. */
  async verify(o: CallOptions = {}): Promise<VerifiedEvidence> {
    if (this.reverify === null) throw new TypeError('this client was created with verify: false');
    this.verified = await this.reverify(o);
    return this.verified;
  }

  /** Any request; every Response (any status) is returned as it is, its body unread. */
  async fetch(path: string, init: AppFetchInit = {}): Promise<Response> {
    const p = path.startsWith('/') ? path : `/${path}`;
    const { idempotency_key, ...rest } = init;
    const key = idempotency_key === true ? newIdempotencyKey() : idempotency_key;
    const { res, deadline } = await this.transport.send({
      ...rest,
      method: init.method ?? 'GET',
      path: `/v1/proxy/${encodeURIComponent(this.app)}${p}`,
      ...(key !== undefined ? { idempotency_key: key } : {}),
    });
    // The deadline covers the response head; the body streams for as long as it takes (the caller's signal
    // still aborts it).
    deadline.stopTimer();
    return res;
  }

  private async checked(
    method: string,
    path: string,
    body: AppBody | undefined,
    o: AppRequestOptions,
  ): Promise<Response> {
    const headers = new Headers(o.headers);
    let b: BodyLike | null | undefined;
    if (body === undefined || body === null || isBodyLike(body)) {
      b = body;
    } else {
      b = JSON.stringify(body);
      if (!headers.has('content-type')) headers.set('content-type', 'application/json');
    }
    const res = await this.fetch(path, { ...o, method, headers, ...(b !== undefined ? { body: b } : {}) });
    if (res.status >= 200 && res.status <= 299) return res;
    throw await errorFromResponse(res);
  }

  get(path: string, o: AppRequestOptions = {}): Promise<Response> {
    return this.checked('GET', path, undefined, o);
  }

  head(path: string, o: AppRequestOptions = {}): Promise<Response> {
    return this.checked('HEAD', path, undefined, o);
  }

  post(path: string, body?: AppBody, o: AppRequestOptions = {}): Promise<Response> {
    return this.checked('POST', path, body, o);
  }

  put(path: string, body?: AppBody, o: AppRequestOptions = {}): Promise<Response> {
    return this.checked('PUT', path, body, o);
  }

  delete(path: string, o: AppRequestOptions = {}): Promise<Response> {
    return this.checked('DELETE', path, undefined, o);
  }
}
