// Sealed requests (docs/confidential.md): a request carrying `EE-Sealed: v1; key=<id>` is opened here with
// the agent's per-boot X25519 key, forwarded to the backend in plaintext on loopback, and answered with the
// backend's response sealed under a key exported from that request's HPKE context. The control plane only
// ever relays the sealed bytes. A request sealed to another key is refused (421 wrong_key) before any of it
// is read or opened; a request that fails authentication never reaches the backend whole.
import { createHash } from 'node:crypto';
import type { Dispatcher, Pool } from 'undici';
import {
  BACKEND_DEADLINE_MARGIN_MS,
  DEFAULT_IDLE_TIMEOUT_MS,
  ResetCode,
  STREAM_QUEUE_HIGH_WATER_BYTES,
  type MuxStream,
  type RequestHead,
} from '@easyenclave/protocol';
import {
  SEALED_HEADER,
  SEALED_MEDIA_TYPE,
  MessageOpener,
  MessageSealer,
  SealError,
  concatBytes,
  decodeHttpMeta,
  encodeHttpMeta,
  formatSealedHeader,
  parseSealedHeader,
  recipientKeyFromJwk,
  requestAad,
  responseHasNoBody,
  type RecipientKey,
  type SealedHeader,
} from '@easyenclave/protocol/seal/index';
import { useNodeSealCrypto } from '@easyenclave/protocol/seal-node';
import { rawPublicKey, type AgentKeys } from '@easyenclave/attestation';
import { BackendExchange, DROP_REQUEST, toList, type SealedRequests } from './forwarder.js';
import { RESERVATION_TOKEN_HEADER } from '@easyenclave/protocol/receipt';
import { Digest, RECEIPT_TRAILER, reservationOf, UsageScanner, type ReceiptSigner } from './receipts.js';

/** Backend chunks taken but not yet sealed and queued: undici is paused above this, so a fast backend cannot
 *  outrun the cipher (memory stays at a few chunks per stream). */
const MAX_CHUNKS_IN_FLIGHT = 4;
/** Outer request headers that describe the sealed body, not the plaintext: never passed to the backend. */
const SEALED_ONLY = new Set([SEALED_HEADER, 'content-type', 'content-length']);

const asBuffer = (b: Uint8Array): Buffer => Buffer.from(b.buffer, b.byteOffset, b.length);

function statusOf(err: SealError): { status: number; code: string } {
  switch (err.code) {
    case 'wrong_key':
      return { status: 421, code: 'wrong_key' };
    case 'unsupported':
      return { status: 400, code: 'unsupported_seal' };
    case 'too_large':
      return { status: 413, code: 'sealed_too_large' };
    default:
      return { status: 400, code: 'bad_sealed_request' };
  }
}

/** An error the agent answers itself (never sealed: there may be no context to seal it under). */
function replyError(stream: MuxStream, status: number, code: string, message: string): void {
  if (stream.closed || stream.head_done) {
    stream.reset(ResetCode.BACKEND_ERROR, message.slice(0, 200));
    return;
  }
  const body = Buffer.from(JSON.stringify({ error: { code, message } }), 'utf8');
  stream.respond({
    status,
    headers: [
      ['content-type', 'application/json'],
      ['content-length', String(body.length)],
    ],
  });
  stream.write(body);
  stream.end();
}

export class SealedHttp implements SealedRequests {
  /** SHA-256 of the raw X25519 public key: the id sealed requests name. */
  readonly keyIdHex: string;
  private recipient: Promise<RecipientKey> | null = null;

  /** Signs a usage receipt for each sealed request made under a reservation (null: no unit prices). */
  receipts: ReceiptSigner | null = null;

  constructor(private readonly keys: AgentKeys) {
    // node:crypto for the HMAC/HKDF/AES-GCM under sealing in this process: the same bytes as WebCrypto,
    // without a thread-pool round trip per call (most of an agent's cost per small sealed request).
    useNodeSealCrypto();
    this.keyIdHex = createHash('sha256').update(rawPublicKey(keys.hpke.publicKey)).digest('hex');
  }

  /** The private key as a WebCrypto key, imported once (the JWK is a transient copy inside this process). */
  private key(): Promise<RecipientKey> {
    this.recipient ??= recipientKeyFromJwk(this.keys.hpke.privateKey.export({ format: 'jwk' }));
    return this.recipient;
  }

  claims(head: RequestHead): boolean {
    for (const [k] of head.headers)
      if (k.length === SEALED_HEADER.length && k.toLowerCase() === SEALED_HEADER) return true;
    return false;
  }

  forward(pool: Pool, stream: MuxStream, head: RequestHead): void {
    // Synchronously, before any await: the clear-header checks, and the exchange that takes the body's
    // frames as they arrive (a chunk arriving while nobody listens would be lost).
    const sealed = this.check(stream, head);
    if (sealed === null) return;
    const deadline_ms = Math.max(1, head.timeout_ms - BACKEND_DEADLINE_MARGIN_MS);
    const reservation = this.receipts?.prices ? reservationOf(head.headers) : null;
    const metering = reservation !== null ? { signer: this.receipts!, reservation } : null;
    const exchange = new SealedExchange(stream, deadline_ms, head.method, metering);
    this.key()
      .then((key) => this.serve(pool, exchange, head, key, sealed.envelope))
      .catch((err: unknown) => exchange.refuse(err));
  }

  /** The EE-Sealed header and what it implies, before a byte of the body is read; null when refused. */
  private check(stream: MuxStream, head: RequestHead): SealedHeader | null {
    const refuse = (status: number, code: string, message: string) => {
      if (!stream.remote_ended) stream.onData = (c) => stream.consumed(c.length);
      replyError(stream, status, code, message);
      return null;
    };
    const values = head.headers.filter(([k]) => k.toLowerCase() === SEALED_HEADER).map(([, v]) => v);
    const content_type = head.headers.find(([k]) => k.toLowerCase() === 'content-type')?.[1];
    let sealed: SealedHeader;
    try {
      if (values.length !== 1) throw new SealError('malformed', 'exactly one EE-Sealed header is allowed');
      sealed = parseSealedHeader(values[0]!);
      if (sealed.key === null) throw new SealError('malformed', 'EE-Sealed names no key');
    } catch (err) {
      const e = err as SealError;
      const s = statusOf(e);
      return refuse(s.status, s.code, e.message);
    }
    if (sealed.key !== this.keyIdHex) {
      return refuse(421, 'wrong_key', `sealed to key ${sealed.key}; this agent holds ${this.keyIdHex}`);
    }
    if (sealed.envelope !== null && !stream.remote_ended) {
      return refuse(400, 'bad_sealed_request', 'a request with an EE-Sealed envelope has no body');
    }
    if (sealed.envelope === null) {
      if (stream.remote_ended) return refuse(400, 'bad_sealed_request', 'a sealed request without a sealed body');
      if (content_type?.toLowerCase() !== SEALED_MEDIA_TYPE) {
        return refuse(415, 'unsupported_media_type', `a sealed body is sent as ${SEALED_MEDIA_TYPE}`);
      }
    }
    return sealed;
  }

  private async serve(
    pool: Pool,
    exchange: SealedExchange,
    head: RequestHead,
    key: RecipientKey,
    envelope: Uint8Array | null,
  ): Promise<void> {
    // Open the header and the meta frame (the inner headers) before the backend sees anything.
    const opener = exchange.open(key, requestAad(head.method, head.path));
    const early: Uint8Array[] = [];
    let source: AsyncIterator<Buffer> | null = null;
    if (envelope !== null) {
      exchange.request.update(envelope);
      early.push(...(await opener.push(envelope)));
      opener.end();
    } else {
      source = exchange.body![Symbol.asyncIterator]();
      while (!opener.started) {
        const r = await source.next();
        if (r.done) {
          opener.end();
          break;
        }
        exchange.request.update(r.value);
        early.push(...(await opener.push(r.value)));
      }
    }
    const inner = decodeHttpMeta(opener.meta, 'request').headers;
    // The reservation's bearer token arrives sealed: the receipt names its hash; the backend never sees it.
    const token = inner.find(([k]) => k.toLowerCase() === RESERVATION_TOKEN_HEADER)?.[1];
    if (token !== undefined) exchange.token_sha256 = createHash('sha256').update(token, 'utf8').digest('hex');

    // Forward in plaintext: the clear headers (routing, X-Forwarded-*) with the sealed ones on top.
    const overridden = new Set(inner.map(([k]) => k.toLowerCase()));
    const headers: string[] = [];
    for (const [k, v] of head.headers) {
      const l = k.toLowerCase();
      if (!DROP_REQUEST.has(l) && !SEALED_ONLY.has(l) && !overridden.has(l)) headers.push(k, v);
    }
    for (const [k, v] of inner) {
      const l = k.toLowerCase();
      // The inner content-type is the plaintext's own; a length would describe neither body (it is re-chunked).
      if (!DROP_REQUEST.has(l) && l !== SEALED_HEADER && l !== 'content-length' && l !== RESERVATION_TOKEN_HEADER)
        headers.push(k, v);
    }
    let body: Dispatcher.DispatchOptions['body'] = null;
    if (source !== null) body = exchange.plaintext(early, source) as unknown as Dispatcher.DispatchOptions['body'];
    else if (early.length > 0) body = asBuffer(concatBytes(early));
    if (exchange.stopped) return; // reset or timed out while the prelude was read
    pool.dispatch(
      {
        method: head.method as Dispatcher.HttpMethod,
        path: head.path,
        headers,
        body,
        headersTimeout: 0,
        bodyTimeout: DEFAULT_IDLE_TIMEOUT_MS,
      },
      exchange,
    );
  }
}

function flushExchange(x: SealedExchange): void {
  x.flush();
}

/** The backend exchange of a sealed request: the request body is opened frame by frame as undici pulls it;
 *  the response is sealed chunk by chunk as it arrives (an SSE event is sealed and sent at once). */
class SealedExchange extends BackendExchange {
  private sealer: MessageSealer | null = null;
  private chain: Promise<void> = Promise.resolve();
  private in_flight = 0;
  private seal_failure: SealError | null = null;
  private opener: MessageOpener | null = null;
  /** The sealed bytes each way, for the usage receipt. */
  readonly request = new Digest();
  private readonly response = new Digest();
  private usage: UsageScanner | null = null;
  private pending: Uint8Array[] = [];
  private flush_scheduled = false;
  /** SHA-256 of the reservation token sent sealed with the request; without one no receipt is signed. */
  token_sha256: string | null = null;

  constructor(
    stream: MuxStream,
    deadline_ms: number,
    private readonly method: string,
    private readonly metering: { signer: ReceiptSigner; reservation: string } | null,
  ) {
    super(stream, deadline_ms);
    stream.onDrain = () => this.maybeResume();
  }

  open(key: RecipientKey, aad: Uint8Array): MessageOpener {
    this.opener = MessageOpener.request(key, { aad });
    return this.opener;
  }

  /** The stream closed (reset by the control plane, or our deadline) before the backend was called. */
  get stopped(): boolean {
    return this.stream.closed;
  }

  /** The request failed before the backend saw it: answer it here, drop the rest of the upload. */
  refuse(err: unknown): void {
    this.clearDeadline();
    if (this.stream.closed) return;
    this.body?.discard();
    if (err instanceof SealError) {
      const s = statusOf(err);
      replyError(this.stream, s.status, s.code, err.message);
    } else {
      replyError(this.stream, 500, 'internal', `sealed request failed: ${(err as Error).message}`);
    }
  }

  /** The backend's request body: authenticated plaintext only. A tampered or truncated request throws, which
   *  makes undici abort the backend request (the backend never sees it complete). */
  async *plaintext(early: Uint8Array[], source: AsyncIterator<Buffer>): AsyncGenerator<Buffer> {
    try {
      for (const p of early) yield asBuffer(p);
      for (;;) {
        const r = await source.next();
        if (r.done) {
          this.opener!.end();
          return;
        }
        this.request.update(r.value);
        for (const p of await this.opener!.push(r.value)) yield asBuffer(p);
      }
    } catch (err) {
      if (err instanceof SealError) this.seal_failure = err;
      throw err;
    }
  }

  private maybeResume(): void {
    if (this.in_flight < MAX_CHUNKS_IN_FLIGHT && this.stream.queuedBytes < STREAM_QUEUE_HIGH_WATER_BYTES) {
      this.controller?.resume();
    }
  }

  /** Runs sealing steps strictly in order; pauses the backend while too many wait. */
  private enqueue(step: () => Promise<void>): void {
    this.in_flight++;
    if (this.in_flight >= MAX_CHUNKS_IN_FLIGHT) this.controller?.pause();
    this.chain = this.chain.then(step).then(
      () => {
        this.in_flight--;
        this.maybeResume();
      },
      (err: unknown) => {
        this.in_flight--;
        this.abort(err as Error);
        if (!this.stream.closed) this.stream.reset(ResetCode.BACKEND_ERROR, `sealing the response failed`);
      },
    );
  }

  /** Queues sealed frames; they are written together at the end of this event-loop turn (or with the end
   *  of the message), so a small response's prelude, body and FINAL frames travel as one tunnel DATA frame
   *  rather than one each (every DATA frame costs the control plane a relay write). */
  private send(frames: Uint8Array[]): void {
    for (const f of frames) {
      this.response.update(f);
      this.pending.push(f);
    }
    if (!this.flush_scheduled && this.pending.length > 0) {
      this.flush_scheduled = true;
      setImmediate(flushExchange, this);
    }
  }

  /** @internal Writes what send() queued. */
  flush(): void {
    this.flush_scheduled = false;
    if (this.pending.length === 0 || this.stream.closed) return;
    // Written together, in one synchronous run: the mux joins them into its DATA frames (no copy here).
    let ok = true;
    for (const f of this.pending) ok = this.stream.write(asBuffer(f)) && ok;
    this.pending = [];
    if (!ok) this.controller?.pause();
  }

  override onResponseStart(
    c: Dispatcher.DispatchController,
    status: number,
    parsed: Record<string, string | string[]>,
  ): void {
    if (status < 200) return;
    this.responded = true;
    this.clearDeadline();
    const exporter = this.opener!.exporter!;
    // Every backend header is sealed (Set-Cookie, Location, ...); content-length describes the plaintext.
    const headers = toList(c.rawHeaders ?? parsed).filter(([k]) => k.toLowerCase() !== 'content-length');
    const meta = encodeHttpMeta({ status, headers });
    if (responseHasNoBody(this.method, status)) {
      // No body to carry the sealed response: it goes in the EE-Sealed header, once sealed.
      this.enqueue(async () => {
        const s = await MessageSealer.response(exporter, { meta });
        const envelope = concatBytes([...(await s.start()), ...(await s.end())]);
        this.response.update(envelope);
        this.stream.respond({ status, headers: [[SEALED_HEADER, formatSealedHeader({ envelope })]] });
      });
      return;
    }
    if (this.metering !== null)
      this.usage = new UsageScanner(headers.find(([k]) => k.toLowerCase() === 'content-type')?.[1]);
    this.stream.respond({
      status,
      headers: [
        ['content-type', SEALED_MEDIA_TYPE],
        [SEALED_HEADER, formatSealedHeader()],
        ['cache-control', 'no-store'],
        // The receipt follows the sealed body: it signs the body's hash.
        ...(this.metering !== null ? [['trailer', RECEIPT_TRAILER] as [string, string]] : []),
      ],
    });
    this.enqueue(async () => {
      this.sealer = await MessageSealer.response(exporter, { meta });
      this.send(await this.sealer.start());
    });
  }

  override onResponseData(_c: Dispatcher.DispatchController, chunk: Buffer): void {
    // undici hands over an empty chunk when resumed; sealing it would only pause it again, forever.
    if (chunk.length === 0) return;
    this.usage?.push(chunk);
    // sealer stays null for a bodyless status: a body there (a backend bug) has nowhere to go and is dropped.
    this.enqueue(async () => {
      if (this.sealer !== null) this.send(await this.sealer.write(chunk));
    });
  }

  override onResponseEnd(): void {
    // Trailers are dropped: they would travel in clear (documented in docs/confidential.md).
    this.enqueue(async () => {
      if (this.sealer !== null) this.send(await this.sealer.end());
      const receipt = await this.receipt();
      this.flush(); // in the same turn as the end: the mux sends both in one DATA frame when there is no trailer
      this.stream.end(receipt !== null && this.sealer !== null ? [[RECEIPT_TRAILER, receipt]] : undefined);
    });
  }

  /** The signed usage receipt of this request under its reservation (null without one). */
  private async receipt(): Promise<string | null> {
    const m = this.metering;
    if (m === null || this.token_sha256 === null) return null;
    return m.signer.sign({
      reservation_id: m.reservation,
      reservation_token_sha256: this.token_sha256,
      request_sha256: this.request.hex(),
      response_sha256: this.response.hex(),
      request_bytes: this.request.bytes,
      response_bytes: this.response.bytes,
      usage: this.usage?.end() ?? null,
    });
  }

  override onResponseError(c: Dispatcher.DispatchController, err: Error): void {
    const failure = this.seal_failure;
    if (failure !== null && !this.responded) {
      this.refuse(failure);
      return;
    }
    super.onResponseError(c, err);
  }
}
