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
  type MuxStream,
  type RequestHead,
} from '@easyenclave/protocol';
import {
  SEALED_HEADER,
  SEALED_MEDIA_TYPE,
  SealError,
  concatBytes,
  decodeHttpMeta,
  parseSealedHeader,
  recipientKeyFromJwk,
  requestAad,
  type RecipientKey,
  type SealedHeader,
} from '@easyenclave/protocol/seal/index';
import { useNodeSealCrypto } from '@easyenclave/protocol/seal-node';
import { rawPublicKey, type AgentKeys } from '@easyenclave/attestation';
import { DROP_REQUEST, type SealedRequests } from './forwarder.js';
import { RESERVATION_TOKEN_HEADER } from '@easyenclave/protocol/receipt';
import { reservationOf, type ReceiptSigner } from './receipts.js';
import { asBuffer, replyError, SealedExchange, statusOf } from './sealed-exchange.js';

/** Outer request headers that describe the sealed body, not the plaintext: never passed to the backend. */
const SEALED_ONLY = new Set([SEALED_HEADER, 'content-type', 'content-length']);

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
      exchange.request?.update(envelope);
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
        exchange.request?.update(r.value);
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
    if (source !== null && opener.finished) {
      // The whole message came with its first chunks (a small request): wait for the stream's end (any byte
      // after the FINAL frame is refused here, before the backend sees anything) and forward one buffer,
      // not the frame-by-frame generator (a promise per hop, and a chunked body).
      for (let r = await source.next(); !r.done; r = await source.next()) {
        exchange.request?.update(r.value);
        await opener.push(r.value);
      }
      source = null;
    }
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
