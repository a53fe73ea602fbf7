// Serves one tunnel stream against the backend through an undici keep-alive pool: request body streamed
// from the tunnel (credit returned as undici takes each chunk), response streamed back with backpressure
// (undici pauses while the stream's send queue is full). Failures become reset codes that name the cause.

import { Pool } from 'undici';
import type { Dispatcher } from 'undici';
import {
  BACKEND_DEADLINE_MARGIN_MS,
  DEFAULT_IDLE_TIMEOUT_MS,
  HOP_BY_HOP,
  ResetCode,
  type HeaderList,
  type MuxStream,
  type RequestHead,
} from '@easyenclave/protocol';

/** What the forwarder needs from the sealed-request handler (sealed.ts); narrow so the two stay apart. */
export interface SealedRequests {
  claims(head: RequestHead): boolean;
  forward(pool: Pool, stream: MuxStream, head: RequestHead): void;
}

const CONNECT_ERRORS = new Set([
  'ECONNREFUSED',
  'ENOTFOUND',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EAI_AGAIN',
  'UND_ERR_CONNECT_TIMEOUT',
]);
// Headers the agent never passes to undici: hop-by-hop (re-added per hop), host (the backend's own),
// and expect (undici does not support 100-continue; the control plane already answered it).
export const DROP_REQUEST: ReadonlySet<string> = new Set([...HOP_BY_HOP, 'host', 'expect']);

export function newBackendPool(backend_url: string, connections: number): Pool {
  return new Pool(new URL(backend_url).origin, {
    connections,
    pipelining: 1,
    keepAliveTimeout: 30_000,
    connect: { timeout: 5_000 },
  });
}

/** Maps an undici/socket error to the reset code that tells the control plane what happened. */
export function backendErrorCode(err: Error): number {
  const e = err as Error & { code?: string; cause?: { code?: string } };
  const code = e.code ?? e.cause?.code ?? '';
  if (CONNECT_ERRORS.has(code)) return ResetCode.BACKEND_UNREACHABLE;
  if (code === 'UND_ERR_HEADERS_TIMEOUT' || code === 'UND_ERR_BODY_TIMEOUT') return ResetCode.BACKEND_TIMEOUT;
  return ResetCode.BACKEND_ERROR;
}

/** The request body as an async iterable: credit for a chunk returns when undici asks for the next one,
 *  i.e. once it has written the previous chunk to the backend socket. */
export class TunnelBody implements AsyncIterable<Buffer> {
  private readonly chunks: Buffer[] = [];
  private ended = false;
  private failed: Error | null = null;
  private wake: (() => void) | null = null;

  constructor(private readonly stream: MuxStream) {
    stream.onData = (chunk) => {
      this.chunks.push(chunk);
      this.notify();
    };
    stream.onEnd = () => {
      this.ended = true;
      this.notify();
    };
  }

  /** Stops reading: what is buffered and what still arrives is credited and dropped (the request was
   *  answered without its body, e.g. refused). */
  discard(): void {
    for (const c of this.chunks) this.stream.consumed(c.length);
    this.chunks.length = 0;
    this.stream.onData = (c) => this.stream.consumed(c.length);
  }

  fail(err: Error): void {
    this.failed = err;
    this.notify();
  }

  private notify(): void {
    const w = this.wake;
    this.wake = null;
    w?.();
  }

  async *[Symbol.asyncIterator](): AsyncIterator<Buffer> {
    for (;;) {
      const chunk = this.chunks.shift();
      if (chunk) {
        yield chunk;
        this.stream.consumed(chunk.length);
        continue;
      }
      if (this.failed) throw this.failed;
      if (this.ended) return;
      await new Promise<void>((r) => (this.wake = r));
    }
  }
}

/** Header bytes as Node's own HTTP code sees them: latin1, one char per byte. A UTF-8 decode would turn
 *  obs-text (RFC 9110 §5.5) into U+FFFD or chars above 0xff, which no hop can write back byte-exact. */
const text = (x: Buffer | string): string => (typeof x === 'string' ? x : x.toString('latin1'));

export function toList(
  raw: Buffer[] | string[] | Record<string, string | string[] | undefined> | null | undefined,
): HeaderList {
  const out: HeaderList = [];
  if (!raw) return out;
  if (Array.isArray(raw)) {
    for (let i = 0; i + 1 < raw.length; i += 2) {
      const k = text(raw[i]!);
      if (HOP_BY_HOP.has(k.toLowerCase())) continue;
      out.push([k, text(raw[i + 1]!)]);
    }
    return out;
  }
  for (const [k, v] of Object.entries(raw)) {
    if (v === undefined || HOP_BY_HOP.has(k)) continue;
    if (Array.isArray(v)) for (const x of v) out.push([k, x]);
    else out.push([k, v]);
  }
  return out;
}

/**
 * One proxied request against the backend: undici's dispatch handler (methods on a prototype, not a closure
 * per callback: this runs for every request), with the deadline and the stream's reset wired to it.
 * sealed.ts extends it for sealed requests (the response callbacks seal what the backend sends).
 */
export class BackendExchange implements Dispatcher.DispatchHandler {
  protected controller: Dispatcher.DispatchController | null = null;
  protected responded = false;
  private deadline: NodeJS.Timeout | null;
  readonly body: TunnelBody | null;

  constructor(
    protected readonly stream: MuxStream,
    private readonly deadline_ms: number,
  ) {
    this.body = stream.remote_ended ? null : new TunnelBody(stream);
    // The response deadline is our own timer: undici's headersTimeout runs on a coarse ~0.5 s clock, which
    // would cut short deadlines early or late. It fires just before the control plane's so we name the cause.
    this.deadline = setTimeout(onDeadline, deadline_ms, this);
    stream.onReset = () => this.abort(new Error('stream reset by the control plane'));
    stream.onDrain = () => this.controller?.resume();
  }

  /** @internal The response deadline passed without a response head. */
  timedOut(): void {
    this.deadline = null;
    this.stream.reset(ResetCode.BACKEND_TIMEOUT, `backend: no response within ${this.deadline_ms} ms`);
    this.abort(new Error('backend did not answer in time'));
  }

  protected abort(err: Error): void {
    this.clearDeadline();
    this.body?.fail(err);
    this.controller?.abort(err);
  }

  protected clearDeadline(): void {
    if (this.deadline) clearTimeout(this.deadline);
    this.deadline = null;
  }

  onRequestStart(c: Dispatcher.DispatchController): void {
    this.controller = c;
  }

  onResponseStart(c: Dispatcher.DispatchController, status: number, parsed: Record<string, string | string[]>): void {
    // Informational heads (102, 103 Early Hints) are dropped: a stream carries one response head, and
    // undici calls again with the final one. (100 never reaches here: undici refuses it, and the agent
    // never forwards Expect.)
    if (status < 200) return;
    this.responded = true;
    this.clearDeadline();
    this.stream.respond({ status, headers: toList(c.rawHeaders ?? parsed) });
  }

  onResponseData(c: Dispatcher.DispatchController, chunk: Buffer): void {
    if (!this.stream.write(chunk)) c.pause();
  }

  onResponseEnd(c: Dispatcher.DispatchController, trailers: Record<string, string | string[]>): void {
    const list = toList(c.rawTrailers ?? trailers);
    this.stream.end(list.length > 0 ? list : undefined);
  }

  onResponseError(_c: Dispatcher.DispatchController, err: Error): void {
    this.clearDeadline();
    if (this.stream.closed) return;
    this.stream.reset(
      this.responded ? ResetCode.BACKEND_ERROR : backendErrorCode(err),
      `backend: ${err.message}`.slice(0, 200),
    );
  }
}

function onDeadline(x: BackendExchange): void {
  x.timedOut();
}

/** Serves a stream; a request carrying EE-Sealed goes to `sealed` (opened here, sealed response). */
export function forwardToBackend(pool: Pool, stream: MuxStream, head: RequestHead, sealed?: SealedRequests): void {
  if (sealed !== undefined && sealed.claims(head)) return sealed.forward(pool, stream, head);
  const headers: string[] = [];
  for (const [k, v] of head.headers) if (!DROP_REQUEST.has(k.toLowerCase())) headers.push(k, v);
  const exchange = new BackendExchange(stream, Math.max(1, head.timeout_ms - BACKEND_DEADLINE_MARGIN_MS));
  pool.dispatch(
    {
      method: head.method as Dispatcher.HttpMethod,
      path: head.path,
      headers,
      body: exchange.body as Dispatcher.DispatchOptions['body'],
      headersTimeout: 0,
      bodyTimeout: DEFAULT_IDLE_TIMEOUT_MS,
    },
    exchange,
  );
}
