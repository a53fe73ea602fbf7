// Usage receipts (docs/confidential.md, Receipts): for each sealed request made under a reservation the agent
// signs, with its attested Ed25519 key, what the request used, numbers it (per boot: the key is per boot), hands
// it to the client in the response's EE-Receipt trailer and keeps it in an outbox that is sent to the control
// plane in batches over the tunnel until the control plane has answered for it.
import { createHash, randomBytes } from 'node:crypto';
import type { Logger } from 'pino';
import { MAX_RECEIPTS_PER_MESSAGE, type ReceiptsResultMessage } from '@easyenclave/protocol';
import {
  receiptAmount,
  signReceipt,
  unitsFromUsage,
  type SignedReceipt,
  type UnitPrices,
  type Units,
} from '@easyenclave/protocol/receipt';
import { canonicalRecordJson, importSigningKey } from '@easyenclave/protocol/signed-record';
import type { CryptoKey } from '@easyenclave/protocol/seal/index';
import { rawPublicKey, type AgentKeys } from '@easyenclave/attestation';

/** The clear request header naming the reservation a sealed request is paid from. */
export const RESERVATION_HEADER = 'ee-reservation';
/** The response trailer carrying the request's signed receipt (base64url of its canonical JSON). */
export const RECEIPT_TRAILER = 'ee-receipt';
const RESERVATION_ID = /^rsv_[A-Za-z0-9_-]{1,60}$/;
/** Receipts kept until the control plane answers for them; beyond this the oldest are dropped (and logged). */
export const MAX_OUTBOX = 65_536;
/** How often the outbox is sent; a receipt not answered within RESEND_MS is sent again. */
export const FLUSH_INTERVAL_MS = 1000;
export const RESEND_MS = 10_000;
/** Bytes of a plaintext JSON response kept to read its `usage`; a larger one is billed by requests and bytes. */
export const MAX_USAGE_SCAN_BYTES = 1 << 20;

export const reservationOf = (headers: readonly (readonly [string, string])[]): string | null => {
  const v = headers.find(([k]) => k.toLowerCase() === RESERVATION_HEADER)?.[1];
  return v !== undefined && RESERVATION_ID.test(v) ? v : null;
};

/**
 * Reads the usage of one response from its plaintext as it streams past: the last OpenAI-style `usage` object
 * of a JSON body, or of the `data:` lines of a Server-Sent Events stream. Bounded: a JSON body is kept up to
 * MAX_USAGE_SCAN_BYTES, an SSE stream only its current line.
 */
export class UsageScanner {
  private readonly sse: boolean;
  private readonly json: boolean;
  private parts: Buffer[] = [];
  private kept = 0;
  private line = '';
  private usage: { tokens_in: number; tokens_out: number } | null = null;

  constructor(content_type: string | undefined) {
    const ct = (content_type ?? '').toLowerCase();
    this.sse = ct.startsWith('text/event-stream');
    this.json = ct.startsWith('application/json');
  }

  push(chunk: Buffer): void {
    if (this.json) {
      this.kept += chunk.length;
      if (this.kept <= MAX_USAGE_SCAN_BYTES) this.parts.push(chunk);
      else this.parts = [];
    } else if (this.sse) {
      const text = this.line + chunk.toString('utf8');
      const lines = text.split('\n');
      this.line = (lines.pop() ?? '').slice(-MAX_USAGE_SCAN_BYTES);
      for (const l of lines) this.sseLine(l);
    }
  }

  private sseLine(l: string): void {
    if (!l.startsWith('data:')) return;
    const data = l.slice(5).trim();
    if (!data.includes('"usage"')) return;
    try {
      const u = unitsFromUsage((JSON.parse(data) as { usage?: unknown }).usage);
      if (u) this.usage = u;
    } catch {
      // Not JSON: not a usage event.
    }
  }

  end(): { tokens_in: number; tokens_out: number } | null {
    if (this.json && this.kept <= MAX_USAGE_SCAN_BYTES && this.kept > 0) {
      try {
        return unitsFromUsage((JSON.parse(Buffer.concat(this.parts).toString('utf8')) as { usage?: unknown }).usage);
      } catch {
        return null;
      }
    }
    if (this.sse && this.line) this.sseLine(this.line);
    return this.usage;
  }
}

export interface ReceiptFacts {
  reservation_id: string;
  /** SHA-256 of the bearer token the client sent sealed (RESERVATION_TOKEN_HEADER). */
  reservation_token_sha256: string;
  request_sha256: string;
  response_sha256: string;
  request_bytes: number;
  response_bytes: number;
  usage: { tokens_in: number; tokens_out: number } | null;
}

export class ReceiptSigner {
  private readonly key: Promise<CryptoKey>;
  readonly key_hex: string;
  private seq = 0;
  /** Signed receipts not yet answered for, oldest first, with when they were last sent. */
  private readonly outbox = new Map<string, { r: SignedReceipt; sent_ms: number }>();
  private timer: NodeJS.Timeout | null = null;

  constructor(
    keys: AgentKeys,
    private readonly agent_id: string,
    readonly prices: UnitPrices | null,
    private readonly log: Logger,
  ) {
    this.key = importSigningKey(keys.receipt.privateKey.export({ format: 'jwk' }));
    this.key_hex = rawPublicKey(keys.receipt.publicKey).toString('hex');
  }

  /** Signs the receipt of one request, queues it for the control plane and returns its trailer value. */
  async sign(f: ReceiptFacts): Promise<string | null> {
    if (this.prices === null) return null;
    const units: Units = f.usage
      ? { tokens_in: f.usage.tokens_in, tokens_out: f.usage.tokens_out, requests: 0, bytes: 0 }
      : { tokens_in: 0, tokens_out: 0, requests: 1, bytes: f.request_bytes + f.response_bytes };
    const signed = await signReceipt(await this.key, {
      v: 1,
      reservation_id: f.reservation_id,
      reservation_token_sha256: f.reservation_token_sha256,
      request_id: `req_${randomBytes(12).toString('hex')}`,
      request_sha256: f.request_sha256,
      response_sha256: f.response_sha256,
      kind: f.usage ? 'tokens' : 'requests',
      units,
      unit_prices: this.prices,
      amount_micro_usd: Number(receiptAmount(units, this.prices)),
      agent_id: this.agent_id,
      key: this.key_hex,
      seq: ++this.seq,
      time_ms: Date.now(),
    });
    if (this.outbox.size >= MAX_OUTBOX) {
      const oldest = this.outbox.keys().next().value!;
      this.outbox.delete(oldest);
      this.log.error({ seq: oldest }, 'receipt outbox full: the oldest unanswered receipt is dropped');
    }
    this.outbox.set(String(signed.receipt.seq), { r: signed, sent_ms: 0 });
    return Buffer.from(canonicalRecordJson(signed), 'utf8').toString('base64url');
  }

  /** Starts sending the outbox with `send` (false when there is no connection to send on). */
  start(send: (receipts: SignedReceipt[]) => boolean): void {
    this.timer = setInterval(() => this.flush(send), FLUSH_INTERVAL_MS);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }

  /** Sends what is due, in messages of at most MAX_RECEIPTS_PER_MESSAGE. */
  flush(send: (receipts: SignedReceipt[]) => boolean): void {
    const now = Date.now();
    let batch: { r: SignedReceipt; sent_ms: number }[] = [];
    const go = (): boolean => {
      if (batch.length === 0) return true;
      if (!send(batch.map((b) => b.r))) return false;
      for (const b of batch) b.sent_ms = now;
      batch = [];
      return true;
    };
    for (const e of this.outbox.values()) {
      if (e.sent_ms !== 0 && now - e.sent_ms < RESEND_MS) continue;
      batch.push(e);
      if (batch.length === MAX_RECEIPTS_PER_MESSAGE && !go()) return;
    }
    go();
  }

  /** The control plane answered: accepted or refused, the receipt is done either way. */
  settle(msg: ReceiptsResultMessage): void {
    for (const r of msg.results) {
      if (r.key !== this.key_hex) continue;
      const e = this.outbox.get(String(r.seq));
      if (!e) continue;
      this.outbox.delete(String(r.seq));
      if (!r.ok) this.log.warn({ seq: r.seq, code: r.code }, 'the control plane refused a receipt');
    }
  }

  get pending(): number {
    return this.outbox.size;
  }
}

/** SHA-256 over bytes as they pass, and their count. */
export class Digest {
  private readonly h = createHash('sha256');
  bytes = 0;
  update(b: Uint8Array): void {
    this.h.update(b);
    this.bytes += b.length;
  }
  hex(): string {
    return this.h.digest('hex');
  }
}
