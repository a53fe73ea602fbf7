// The client's half of sealed HTTP (browser-safe): seal a request to an agent's verified X25519 key, then
// open its response under the key exported from that request. Transport-neutral: it returns the outer
// headers and body to send with fetch (or anything else) and opens whatever response comes back.
import { concatBytes } from './bytes.js';
import { SealError } from './errors.js';
import {
  decodeHttpMeta,
  encodeHttpMeta,
  formatSealedHeader,
  parseSealedHeader,
  requestAad,
  SEALED_HEADER,
  SEALED_MEDIA_TYPE,
  type HttpHeaderList,
} from './http.js';
import { MessageOpener, MessageSealer } from './message.js';
import { sealIterable, sealingStream } from './streams.js';
import type { Exporter } from './hpke.js';

export interface SealedRequestInit {
  method: string;
  /** Path and query as the backend will see them (after the proxy's /v1/proxy/{app} prefix). */
  path: string;
  /** Headers sealed inside the request (content type, credentials, anything the relay must not read). */
  headers?: HttpHeaderList;
  /** undefined/null: no body (the sealed request rides in the EE-Sealed header). A web stream comes back
   *  as a web stream, an async iterable (a Node stream) as an async iterable. */
  body?: Uint8Array | ReadableStream<Uint8Array> | AsyncIterable<Uint8Array> | null;
}

export type SealedBody = Uint8Array | ReadableStream<Uint8Array> | AsyncIterable<Uint8Array>;

export interface OpenedResponse {
  /** false: the answer was not sealed (an error from the relay or the agent before opening): unauthenticated. */
  sealed: boolean;
  status: number;
  /** Sealed responses: the backend's headers, authenticated. Unsealed: the outer headers. */
  headers: HttpHeaderList;
  body: ReadableStream<Uint8Array> | null;
}

export interface ResponseLike {
  status: number;
  headers: { get(name: string): string | null; forEach?(cb: (value: string, name: string) => void): void };
  /** A fetch Response's body, or any async iterable of bytes (e.g. undici's or node:http's response). */
  body: ReadableStream<Uint8Array> | AsyncIterable<Uint8Array> | null;
}

export class SealedHttpRequest {
  private constructor(
    /** Outer headers to add: EE-Sealed (and Content-Type when there is a body). */
    readonly headers: HttpHeaderList,
    /** Outer body: the sealed request, or null (then it is in the EE-Sealed header). */
    readonly body: SealedBody | null,
    private readonly exporter: Exporter,
    readonly keyIdHex: string,
  ) {}

  static async create(recipientPublicKey: Uint8Array | string, init: SealedRequestInit): Promise<SealedHttpRequest> {
    const method = init.method.toUpperCase();
    const sealer = await MessageSealer.request(recipientPublicKey, {
      aad: requestAad(method, init.path),
      meta: encodeHttpMeta({ headers: init.headers ?? [] }),
    });
    const key = sealer.keyIdHex!;
    const b = init.body;
    if (b === undefined || b === null) {
      const envelope = concatBytes(await sealer.end());
      return new SealedHttpRequest(
        [[SEALED_HEADER, formatSealedHeader({ key, envelope })]],
        null,
        sealer.exporter!,
        key,
      );
    }
    const headers: HttpHeaderList = [
      [SEALED_HEADER, formatSealedHeader({ key })],
      ['content-type', SEALED_MEDIA_TYPE],
    ];
    let body: SealedBody;
    if (b instanceof Uint8Array) body = concatBytes(await sealer.end(b));
    else if (isWebStream(b)) body = b.pipeThrough(sealingStream(sealer));
    else body = sealIterable(sealer, b);
    return new SealedHttpRequest(headers, body, sealer.exporter!, key);
  }

  /**
   * Opens the response. A sealed one is authenticated frame by frame as its body is read (a tampered or
   * truncated body errors the stream); its sealed status must equal the clear one. An unsealed 2xx is refused;
   * an unsealed error status is returned with `sealed: false` (it came from the relay, not the backend).
   */
  async openResponse(res: ResponseLike): Promise<OpenedResponse> {
    const value = res.headers.get(SEALED_HEADER);
    if (value === null) {
      if (res.status >= 200 && res.status <= 299) {
        throw new SealError('malformed', `a ${res.status} answer to a sealed request was not sealed`);
      }
      const headers: HttpHeaderList = [];
      res.headers.forEach?.((v, k) => headers.push([k, v]));
      const body = res.body === null || isWebStream(res.body) ? res.body : webStream(byteSource(res.body));
      return { sealed: false, status: res.status, headers, body };
    }
    const parsed = parseSealedHeader(value);
    if (parsed.key !== null) throw new SealError('malformed', 'a sealed response names no key');
    const opener = MessageOpener.response(this.exporter);
    let body: ReadableStream<Uint8Array> | null;
    if (parsed.envelope !== null) {
      const rest = concatBytes(await opener.push(parsed.envelope));
      opener.end();
      if (res.body !== null) await drainEmpty(byteSource(res.body));
      body = rest.length > 0 ? bytesStream(rest) : null;
    } else {
      if (res.body === null) throw new SealError('truncated', 'sealed response without a body');
      body = await openedBody(opener, byteSource(res.body));
    }
    const meta = decodeHttpMeta(opener.meta, 'response');
    if (meta.status !== res.status) {
      throw new SealError(
        'auth_failed',
        `the clear status ${res.status} differs from the sealed status ${meta.status}`,
      );
    }
    return { sealed: true, status: meta.status, headers: meta.headers, body };
  }
}

/** The one reading interface both body kinds offer: web streams through a reader (browsers may lack their
 *  async iteration), anything else through its async iterator. */
interface ByteSource {
  read(): Promise<IteratorResult<Uint8Array>>;
  cancel(reason?: unknown): Promise<void>;
}

function isWebStream(b: unknown): b is ReadableStream<Uint8Array> {
  return typeof (b as { getReader?: unknown }).getReader === 'function';
}

function byteSource(body: ReadableStream<Uint8Array> | AsyncIterable<Uint8Array>): ByteSource {
  if (isWebStream(body)) {
    const reader = body.getReader();
    return {
      read: async () => {
        const r = await reader.read();
        return r.done ? { done: true, value: undefined } : { done: false, value: r.value };
      },
      cancel: (reason) => reader.cancel(reason),
    };
  }
  const it = body[Symbol.asyncIterator]();
  return {
    read: () => it.next(),
    cancel: async () => {
      await it.return?.();
    },
  };
}

async function drainEmpty(src: ByteSource): Promise<void> {
  for (;;) {
    const r = await src.read();
    if (r.done) return;
    if (r.value.length > 0) {
      await src.cancel();
      throw new SealError('trailing_data', 'a body beside a sealed envelope header');
    }
  }
}

function webStream(src: ByteSource): ReadableStream<Uint8Array> {
  return new ReadableStream<Uint8Array>({
    async pull(c) {
      const r = await src.read();
      if (r.done) c.close();
      else c.enqueue(r.value);
    },
    cancel: (reason) => src.cancel(reason),
  });
}

function bytesStream(bytes: Uint8Array): ReadableStream<Uint8Array> {
  return new ReadableStream<Uint8Array>({
    start(c) {
      if (bytes.length > 0) c.enqueue(bytes);
      c.close();
    },
  });
}

/** Reads until the meta frame is open (so status and headers are known), then streams the rest. */
async function openedBody(opener: MessageOpener, src: ByteSource): Promise<ReadableStream<Uint8Array>> {
  const early: Uint8Array[] = [];
  try {
    while (!opener.started) {
      const r = await src.read();
      if (r.done) {
        opener.end();
        break;
      }
      early.push(...(await opener.push(r.value)));
    }
    if (opener.finished) {
      // The whole message came with its first reads (a small response): the body must end here, and its
      // plaintext is handed on as one queued chunk, without a pull per read.
      for (let r = await src.read(); !r.done; r = await src.read()) await opener.push(r.value);
      return bytesStream(early.length === 1 ? early[0]! : concatBytes(early));
    }
  } catch (err) {
    await src.cancel().catch(() => {});
    throw err;
  }
  let done = false;
  return new ReadableStream<Uint8Array>({
    async pull(c) {
      const next = early.shift();
      if (next !== undefined) return c.enqueue(next);
      // One outer read per pull, so each arriving frame (an SSE event) is handed on at once.
      while (!done) {
        const r = await src.read();
        if (r.done) {
          done = true;
          opener.end();
          return c.close();
        }
        const out = await opener.push(r.value);
        for (const p of out) c.enqueue(p);
        if (out.length > 0) return;
      }
      c.close();
    },
    cancel(reason) {
      return src.cancel(reason);
    },
  });
}
