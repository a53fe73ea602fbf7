// A confidential client (`ee.connect(app, { confidential: true })`): every request is sealed to the X25519 key
// of the agent the SDK verified itself (docs/confidential.md), so the control plane relays only ciphertext and
// delivers it only to that agent (pinning); every response is opened and authenticated before it is read —
// a tampered, truncated or unsealed 2xx answer is an error, never data. When the agent is gone (409
// sealed_key_gone) the client verifies the app again and re-seals, once, if the body can be sent again.
// With a reservation, its id travels in clear (EE-Reservation) so the agent signs a usage receipt per request;
// `receipts()` fetches them and checks each against the verified receipt key. Browser-safe; loaded lazily.
import { checkReceipt, RESERVATION_TOKEN_HEADER, type UsageReceipt } from '@easyenclave/protocol/receipt';
import { SealedHttpRequest, type HttpHeaderList } from '@easyenclave/protocol/seal/index';
import { AppClient, type AppFetchInit } from './app-client.js';
import type { Auth } from './calls.js';
import type { CallOptions, Transport } from './http.js';
import { reservation as getReservation } from './reservations.js';
import type { VerifiedEvidence } from './trust.js';

/** The clear header naming the reservation a sealed request is paid from. */
export const RESERVATION_HEADER = 'ee-reservation';

type SealableBody = Uint8Array | ReadableStream<Uint8Array> | AsyncIterable<Uint8Array>;

async function sealable(b: AppFetchInit['body']): Promise<{ body: SealableBody | null; replayable: boolean }> {
  if (b === undefined || b === null) return { body: null, replayable: true };
  if (typeof b === 'string') return { body: new TextEncoder().encode(b), replayable: true };
  if (b instanceof Uint8Array) return { body: b, replayable: true };
  if (b instanceof ArrayBuffer) return { body: new Uint8Array(b), replayable: true };
  if (typeof Blob !== 'undefined' && b instanceof Blob)
    return { body: new Uint8Array(await b.arrayBuffer()), replayable: true };
  if (typeof ReadableStream !== 'undefined' && b instanceof ReadableStream)
    return { body: b as ReadableStream<Uint8Array>, replayable: false };
  if (typeof b === 'object' && Symbol.asyncIterator in b)
    return { body: b as AsyncIterable<Uint8Array>, replayable: false };
  throw new TypeError('a confidential request body is a string, bytes, a Blob or a stream');
}

/** A signed receipt as the SDK's JSON reader hands it over (amounts under `*_micro_usd` as bigint), back to the
 *  plain JSON it was signed as (the amount is a safe integer, or the receipt is refused). */
function asSigned(x: unknown): unknown {
  const o = x as { receipt?: Record<string, unknown> } | null;
  const a = o?.receipt?.amount_micro_usd;
  if (typeof a !== 'bigint' || a > BigInt(Number.MAX_SAFE_INTEGER)) return x;
  return { ...o, receipt: { ...o!.receipt, amount_micro_usd: Number(a) } };
}

export class ConfidentialAppClient extends AppClient {
  constructor(
    transport: Transport,
    app: string,
    verified: VerifiedEvidence,
    reverify: (o: CallOptions) => Promise<VerifiedEvidence>,
    /** The reservation paying for the requests (its id is sent in clear, its token sealed), or null. */
    private readonly paying: { id: string; token: string | null } | null,
    private readonly auth: Auth,
  ) {
    super(transport, app, verified, reverify);
  }

  /** Seals the request to the verified agent, sends it, opens the answer (see the file comment). */
  /** The reservation's id, or null. */
  get reservation(): string | null {
    return this.paying?.id ?? null;
  }

  override async fetch(path: string, init: AppFetchInit = {}): Promise<Response> {
    const { method: m, headers: h, body: b, ...rest } = init;
    const method = (m ?? 'GET').toUpperCase();
    const u = new URL(path.startsWith('/') ? path : `/${path}`, 'http://app.invalid');
    const target = u.pathname + u.search;
    const inner: HttpHeaderList = [];
    new Headers(h).forEach((v, k) => inner.push([k, v]));
    if (this.paying?.token) inner.push([RESERVATION_TOKEN_HEADER, this.paying.token]);
    const { body, replayable } = await sealable(b);
    for (let attempt = 0; ; attempt++) {
      const hpke = this.verified!.keyset.hpke_public_key;
      const req = await SealedHttpRequest.create(hpke, { method, path: target, headers: inner, body });
      const outer = new Headers(req.headers);
      if (this.paying !== null) outer.set(RESERVATION_HEADER, this.paying.id);
      const res = await super.fetch(target, {
        ...rest,
        method,
        headers: outer,
        ...(req.body !== null ? { body: req.body as Uint8Array | ReadableStream<Uint8Array> } : {}),
      });
      if (res.status === 409 && attempt === 0 && replayable && !res.headers.has('ee-sealed')) {
        const text = await res.text();
        if (text.includes('"sealed_key_gone"')) {
          await this.verify(rest);
          continue;
        }
        return new Response(text, { status: res.status, headers: res.headers });
      }
      const opened = await req.openResponse(res);
      if (!opened.sealed) return res;
      return new Response(opened.body, { status: opened.status, headers: opened.headers });
    }
  }

  /**
   * The reservation's newest receipts (GET /v1/reservations/{id}), each checked here: its shape, amount and
   * signature, and that it is signed by the receipt key of the agent this client verified.
   */
  async receipts(o: CallOptions = {}): Promise<{ receipts: UsageReceipt[]; claimed_micro_usd: bigint }> {
    if (this.paying === null) throw new TypeError('this client was connected without a reservation');
    const r = await getReservation(this.transport, this.auth, this.paying.id, o);
    const key = this.verified!.keyset.receipt_public_key;
    const out: UsageReceipt[] = [];
    for (const x of r.receipts) {
      const c = await checkReceipt(asSigned(x.signed));
      if (!c.ok) throw new Error(`receipt ${x.seq} does not verify: ${c.reason}`);
      if (c.receipt.key !== key)
        throw new Error(`receipt ${x.seq} is signed by ${c.receipt.key}, not the verified agent`);
      out.push(c.receipt);
    }
    return { receipts: out, claimed_micro_usd: r.claimed_micro_usd };
  }
}
