// The backend exchange of one sealed request (docs/confidential.md, Sealed HTTP): the request body is opened
// frame by frame as undici pulls it, the response sealed chunk by chunk as it arrives and the usage receipt
// signed at its end; and the errors the agent answers itself, unsealed. sealed.ts checks the clear headers
// and starts one per request.
import type { Dispatcher } from 'undici';
import { ResetCode, STREAM_QUEUE_HIGH_WATER_BYTES, type MuxStream } from '@easyenclave/protocol';
import {
  SEALED_HEADER,
  SEALED_MEDIA_TYPE,
  MessageOpener,
  MessageSealer,
  SealError,
  concatBytes,
  encodeHttpMeta,
  formatSealedHeader,
  responseHasNoBody,
  type RecipientKey,
} from '@easyenclave/protocol/seal/index';
import { BackendExchange, toList } from './forwarder.js';
import { Digest, RECEIPT_TRAILER, UsageScanner, type ReceiptSigner } from './receipts.js';

/** Backend chunks taken but not yet sealed and queued: undici is paused above this, so a fast backend cannot
 *  outrun the cipher (memory stays at a few chunks per stream). */
const MAX_CHUNKS_IN_FLIGHT = 4;

export const asBuffer = (b: Uint8Array): Buffer => Buffer.from(b.buffer, b.byteOffset, b.length);

export function statusOf(err: SealError): { status: number; code: string } {
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
export function replyError(stream: MuxStream, status: number, code: string, message: string): void {
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

function flushExchange(x: SealedExchange): void {
  x.flush();
}

/** The backend exchange of a sealed request: the request body is opened frame by frame as undici pulls it;
 *  the response is sealed chunk by chunk as it arrives (an SSE event is sealed and sent at once). */
export class SealedExchange extends BackendExchange {
  private sealer: MessageSealer | null = null;
  private chain: Promise<void> = Promise.resolve();
  private in_flight = 0;
  private seal_failure: SealError | null = null;
  private opener: MessageOpener | null = null;
  /** The sealed bytes each way, for the usage receipt (hashed only under a reservation). */
  readonly request: Digest | null;
  private readonly response: Digest | null;
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
    this.request = metering !== null ? new Digest() : null;
    this.response = metering !== null ? new Digest() : null;
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
        this.request?.update(r.value);
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
      this.response?.update(f);
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
        this.response?.update(envelope);
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
    if (m === null || this.token_sha256 === null || this.request === null || this.response === null) return null;
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
