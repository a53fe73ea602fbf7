// Signed usage receipts (docs/confidential.md, Receipts): what an agent signs, with its attested Ed25519 key,
// for each sealed request made under a reservation, and what the control plane, the SDK and `ee receipts
// verify` check. The signature is a signed record (signed-record.ts) in the `ee-receipt-v1` domain over the
// RFC 8785 canonical JSON of the receipt. Browser-safe; pure except for the signature calls.
import { z } from 'zod';
import { signRecord, verifyRecord, type RecordValue } from './signed-record.js';
import type { CryptoKey } from './seal/bytes.js';

export const RECEIPT_DOMAIN = 'ee-receipt-v1';
/** The sealed request header carrying the reservation's bearer token (the agent strips it before the backend). */
export const RESERVATION_TOKEN_HEADER = 'ee-reservation-token';
export const RECEIPT_VERSION = 1;
/** Unit prices are integer micro-USD per this many units, so sub-micro-USD prices per token stay integers. */
export const UNITS_PER_PRICE = 1000;
/** Largest count of one unit kind in one receipt (a request of 1 TiB, or 2^40 tokens, is far beyond any). */
export const MAX_UNITS = 2 ** 40;
/** Largest unit price: $1,000 per 1,000 units (amounts are computed as bigint; a receipt's amount must still
 *  fit in 2^53 − 1). */
export const MAX_UNIT_PRICE_MICRO_USD = 1_000_000_000;

export const UNIT_KINDS = ['tokens_in', 'tokens_out', 'requests', 'bytes'] as const;
export type UnitKind = (typeof UNIT_KINDS)[number];

const hex = (bytes: number) => z.string().regex(new RegExp(`^[0-9a-f]{${bytes * 2}}$`));
const count = z.number().int().min(0).max(MAX_UNITS);
const price = z.number().int().min(0).max(MAX_UNIT_PRICE_MICRO_USD);
const Id = z.string().regex(/^[A-Za-z0-9_-]{1,64}$/);

/** micro-USD per 1,000 units of each kind (a kind absent from a price list costs nothing). */
export const UnitPrices = z.strictObject({
  tokens_in: price,
  tokens_out: price,
  requests: price,
  bytes: price,
});
export type UnitPrices = z.infer<typeof UnitPrices>;

/** Usage of one request: tokens from an OpenAI-style `usage` object when the backend returned one, otherwise
 *  one request and the bytes of the sealed request and response. */
export const Units = z.strictObject({
  tokens_in: count,
  tokens_out: count,
  requests: count,
  bytes: count,
});
export type Units = z.infer<typeof Units>;

export const UsageReceipt = z.strictObject({
  v: z.literal(RECEIPT_VERSION),
  reservation_id: Id,
  request_id: Id,
  /** SHA-256 of the reservation's bearer token, which the client sent inside the sealed request (never in
   *  clear): a request billed to a reservation must come from someone holding its token. */
  reservation_token_sha256: hex(32),
  /** SHA-256 of the sealed request body (or the envelope) and of the sealed response body, as sent. */
  request_sha256: hex(32),
  response_sha256: hex(32),
  kind: z.enum(['tokens', 'requests']),
  units: Units,
  unit_prices: UnitPrices,
  /** = receiptAmount(units, unit_prices); checked by every verifier. */
  amount_micro_usd: z.number().int().min(0).max(Number.MAX_SAFE_INTEGER),
  agent_id: z.string().regex(/^[A-Za-z0-9_-]{8,64}$/),
  /** The signer: the agent's attested Ed25519 key (receipt_public_key of its keyset). */
  key: hex(32),
  /** Per boot (per key): 1, 2, 3, ... A key never signs two receipts with the same number. */
  seq: z.number().int().min(1).max(Number.MAX_SAFE_INTEGER),
  time_ms: z.number().int().min(0).max(Number.MAX_SAFE_INTEGER),
});
export type UsageReceipt = z.infer<typeof UsageReceipt>;

export const SignedReceipt = z.strictObject({ receipt: UsageReceipt, signature: hex(64) });
export type SignedReceipt = z.infer<typeof SignedReceipt>;

/** What `units` cost at `prices`: ceil(Σ units × price / 1,000), exact (bigint), in micro-USD. */
export function receiptAmount(units: Units, prices: UnitPrices): bigint {
  let sum = 0n;
  for (const k of UNIT_KINDS) sum += BigInt(units[k]) * BigInt(prices[k]);
  const per = BigInt(UNITS_PER_PRICE);
  return (sum + per - 1n) / per;
}

/** Units from a backend's OpenAI-style `usage` object, or null when it has none (then requests and bytes). */
export function unitsFromUsage(usage: unknown): { tokens_in: number; tokens_out: number } | null {
  if (typeof usage !== 'object' || usage === null) return null;
  const u = usage as Record<string, unknown>;
  const ok = (n: unknown): n is number => Number.isSafeInteger(n) && (n as number) >= 0 && (n as number) <= MAX_UNITS;
  if (!ok(u.prompt_tokens) || !ok(u.completion_tokens)) return null;
  return { tokens_in: u.prompt_tokens, tokens_out: u.completion_tokens };
}

export const signReceipt = async (key: CryptoKey, r: UsageReceipt): Promise<SignedReceipt> => ({
  receipt: r,
  signature: await signRecord(key, r as unknown as RecordValue, RECEIPT_DOMAIN),
});

export type ReceiptCheck = { ok: true; receipt: UsageReceipt } | { ok: false; reason: string };

/**
 * Checks a receipt on its own (`verify`: the signature check, WebCrypto by default; a Node process may pass
 * signed-record-node's synchronous one): its shape, that its amount is what its units cost at its prices, and its
 * signature by the key it names. Whether that key was attested, for which node, and whether the reservation
 * had quota is for the caller (the control plane; a client compares the key with the evidence it verified).
 */
export async function checkReceipt(
  input: unknown,
  verify: (
    publicKeyHex: string,
    record: unknown,
    signatureHex: string,
    domain: string,
  ) => boolean | Promise<boolean> = verifyRecord,
): Promise<ReceiptCheck> {
  const p = SignedReceipt.safeParse(input);
  if (!p.success) {
    const i = p.error.issues[0];
    return { ok: false, reason: `malformed: ${i?.path.join('.') || '(root)'}: ${i?.message ?? 'invalid'}` };
  }
  const { receipt, signature } = p.data;
  if (receiptAmount(receipt.units, receipt.unit_prices) !== BigInt(receipt.amount_micro_usd))
    return { ok: false, reason: 'wrong_amount: amount_micro_usd is not what the units cost at the unit prices' };
  if (!(await verify(receipt.key, receipt, signature, RECEIPT_DOMAIN)))
    return { ok: false, reason: 'bad_signature: the signature does not verify under the receipt key' };
  return { ok: true, receipt };
}
