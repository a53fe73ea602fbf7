// Reservations (escrow for confidential traffic, docs/confidential.md "Money flow"): the pure core. A
// reservation locks a quota from the user toward the provider of one node (a pending transfer); each accepted
// usage receipt posts exactly its amount of that lock and locks the rest again, in one linked chain; the end
// of the reservation, a period boundary, or a zero-tolerance event voids what is left. Everything here is a
// pure function of its arguments (time is passed in).
import type { UnitPrices, UsageReceipt } from '@easyenclave/protocol/receipt';
import { receiptAmount } from '@easyenclave/protocol/receipt';
import { periodEnd, periodIndex } from './period.js';

/** Shortest and longest lifetime of a reservation. */
export const MIN_RESERVATION_LIFETIME_MS = 60_000;
export const MAX_RESERVATION_LIFETIME_MS = 30 * 24 * 3_600_000;
/**
 * Receipts are signed at the agent and arrive in batches: one signed before the reservation's end is still
 * accepted this long after it. The lock's own timeout is its end plus this, so the ledger's automatic expiry
 * refunds the remainder even if no control plane runs at all.
 */
export const RECEIPT_GRACE_MS = 60_000;
/** How far ahead of the control plane's clock a receipt's time may be (clock skew between machines). */
export const RECEIPT_MAX_SKEW_MS = 30_000;
/** Receipts accepted per reservation and ledger operation (two transfers each). */
export const MAX_RECEIPTS_PER_OP = 128;

export type ReservationStatus = 'open' | 'closed';

/** The reservation row's fields the core reads. Money in micro-USD (exact integers ≤ 2^53 − 1). */
export interface ReservationState {
  id: string;
  user_id: string;
  node_id: string;
  provider: string;
  quota: number;
  claimed: number;
  /** Index of the current lock (`rsv:{id}:{lock_seq}`); every accepted receipt and period roll moves it on. */
  lock_seq: number;
  /** The period the current lock was made in (its timeout is at that period's end at the latest). */
  lock_period: number;
  status: ReservationStatus;
  created_ms: number;
  expires_ms: number;
  unit_prices: UnitPrices;
  token_sha256: string | null;
}

export const reservationLockId = (id: string, seq: number) => `rsv:${id}:${seq}`;
export const reservationClaimId = (id: string, seq: number) => `rsvclaim:${id}:${seq}`;
export const reservationRefundId = (id: string, seq: number) => `rsvrefund:${id}:${seq}`;

export const remaining = (r: Pick<ReservationState, 'quota' | 'claimed'>): number => r.quota - r.claimed;

/**
 * When a lock made at `now_ms` must be released at the latest: the reservation's end or the end of the
 * current settlement period, whichever is first, plus the receipt grace. At the period boundary the
 * remainder goes back to the user (seed 004: "unclaimed quota is automatically refunded at the next epoch
 * boundary"); a reservation that lasts longer locks it again for the next period in the same chain.
 */
export function lockDeadline(expires_ms: number, now_ms: number, period_ms: number): number {
  return Math.min(expires_ms, periodEnd(periodIndex(now_ms, period_ms), period_ms)) + RECEIPT_GRACE_MS;
}

/** Why a receipt moves no money. Every refusal is logged by the caller; none is an exception. */
export type ReceiptRefusal =
  | 'malformed'
  | 'bad_signature'
  | 'wrong_amount'
  | 'unknown_reservation'
  | 'reservation_closed'
  | 'unknown_key'
  | 'wrong_node'
  | 'not_attested_at_time'
  | 'outside_reservation'
  | 'from_the_future'
  | 'replay'
  | 'wrong_price'
  | 'wrong_token'
  | 'over_quota';

/** What the control plane knows about a receipt key: the agent that was attested with it, and since when. */
export interface AttestedKey {
  key: string;
  agent_id: string;
  node_id: string;
  first_attested_ms: number;
}

const samePrices = (a: UnitPrices, b: UnitPrices): boolean =>
  a.tokens_in === b.tokens_in && a.tokens_out === b.tokens_out && a.requests === b.requests && a.bytes === b.bytes;

/**
 * Judges one receipt (already checked for shape, amount and signature) against the reservation as it stands,
 * the key's attestation record and the sequence numbers already used. Pure.
 */
export function judgeReceipt(
  r: UsageReceipt,
  rsv: ReservationState | undefined,
  key: AttestedKey | undefined,
  seen: boolean,
  now_ms: number,
): { ok: true; amount: number } | { ok: false; code: ReceiptRefusal } {
  if (!rsv || r.reservation_id !== rsv.id) return { ok: false, code: 'unknown_reservation' };
  if (rsv.status !== 'open' || now_ms >= rsv.expires_ms + RECEIPT_GRACE_MS)
    return { ok: false, code: 'reservation_closed' };
  if (!key) return { ok: false, code: 'unknown_key' };
  if (key.node_id !== rsv.node_id || key.agent_id !== r.agent_id) return { ok: false, code: 'wrong_node' };
  if (r.time_ms > now_ms + RECEIPT_MAX_SKEW_MS) return { ok: false, code: 'from_the_future' };
  if (r.time_ms < key.first_attested_ms) return { ok: false, code: 'not_attested_at_time' };
  if (r.time_ms < rsv.created_ms || r.time_ms >= rsv.expires_ms) return { ok: false, code: 'outside_reservation' };
  if (seen) return { ok: false, code: 'replay' };
  if (rsv.token_sha256 === null || r.reservation_token_sha256 !== rsv.token_sha256)
    return { ok: false, code: 'wrong_token' };
  if (!samePrices(r.unit_prices, rsv.unit_prices)) return { ok: false, code: 'wrong_price' };
  const amount = receiptAmount(r.units, r.unit_prices);
  if (amount !== BigInt(r.amount_micro_usd)) return { ok: false, code: 'wrong_price' };
  if (amount > BigInt(remaining(rsv))) return { ok: false, code: 'over_quota' };
  return { ok: true, amount: Number(amount) };
}

/** Zero tolerance (docs/design.md §5): any of these on the node since the reservation began ends it. */
export interface NodeIncidents {
  node_status: string;
  /** Failed or missed attestations of the node's agents, at or after the reservation's creation. */
  attestation_failures: number;
  /** Missed or failed health checks of the node's agents, at or after the reservation's creation. */
  health_failures: number;
  /** Authorised abuse reports naming the node for a period the reservation overlaps. */
  abuse_reports: readonly string[];
}

/** The reason a reservation must end now, or null. */
export function zeroToleranceReason(i: NodeIncidents): string | null {
  if (i.node_status !== 'active') return 'node_banned';
  if (i.attestation_failures > 0) return 'attestation_failed';
  if (i.health_failures > 0) return 'health_failed';
  if (i.abuse_reports.length > 0) return `abuse_report:${i.abuse_reports[0]}`;
  return null;
}
