// Mapping between stored rows and the engine's types, and the canonical audit payloads. The only place where
// a database number becomes a bigint (and back), so an out-of-range value fails loudly here instead of rounding.
import type { Selectable } from 'kysely';
import {
  MAX_COUNTER_MICRO,
  type Account,
  type AccountFlags,
  type JournalEntry,
  type Transfer,
  type TransferFlags,
} from '../ledger/types.js';
import type { EeAccountsTable, LedgerAccountsTable, LedgerJournalTable } from './schema.js';

export type JournalRow = Omit<Selectable<LedgerJournalTable>, 'seq'>;
export type AccountRow = Selectable<LedgerAccountsTable>;

/** A stored integer (a number from SQLite, or pg's int8 parser) as bigint; anything else is corruption. */
export function big(v: number | string | bigint): bigint {
  if (typeof v === 'bigint') return v;
  if (typeof v === 'number') {
    if (!Number.isSafeInteger(v)) throw new RangeError(`ledger: stored integer ${v} is not a safe integer`);
    return BigInt(v);
  }
  if (!/^-?\d+$/.test(v)) throw new RangeError(`ledger: stored integer ${JSON.stringify(v)} is not an integer`);
  return BigInt(v);
}

/** A bigint for a BIGINT column: exact because every amount and counter is <= MAX_COUNTER_MICRO. */
export function num(v: bigint): number {
  if (v > MAX_COUNTER_MICRO || v < -MAX_COUNTER_MICRO) throw new RangeError(`ledger: ${v} exceeds 2^53 - 1`);
  return Number(v);
}

const ACCOUNT_FLAG_BITS = { debits_must_not_exceed_credits: 1, credits_must_not_exceed_debits: 2 } as const;
const TRANSFER_FLAG_BITS = { pending: 1, post_pending: 2, void_pending: 4, linked: 8, balancing_debit: 16 } as const;

export function accountFlagsToBits(f: AccountFlags): number {
  return (
    (f.debits_must_not_exceed_credits ? ACCOUNT_FLAG_BITS.debits_must_not_exceed_credits : 0) |
    (f.credits_must_not_exceed_debits ? ACCOUNT_FLAG_BITS.credits_must_not_exceed_debits : 0)
  );
}

export function accountFromRow(r: AccountRow): Account {
  return {
    id: r.id,
    flags: {
      debits_must_not_exceed_credits: (r.flags & ACCOUNT_FLAG_BITS.debits_must_not_exceed_credits) !== 0,
      credits_must_not_exceed_debits: (r.flags & ACCOUNT_FLAG_BITS.credits_must_not_exceed_debits) !== 0,
    },
    debits_pending: big(r.debits_pending),
    debits_posted: big(r.debits_posted),
    credits_pending: big(r.credits_pending),
    credits_posted: big(r.credits_posted),
  };
}

export function accountToRow(a: Account, created_ms: number): AccountRow {
  return {
    id: a.id,
    flags: accountFlagsToBits(a.flags),
    debits_pending: num(a.debits_pending),
    debits_posted: num(a.debits_posted),
    credits_pending: num(a.credits_pending),
    credits_posted: num(a.credits_posted),
    created_ms,
  };
}

function transferFlagsToBits(f: Required<TransferFlags>): number {
  let bits = 0;
  for (const [name, bit] of Object.entries(TRANSFER_FLAG_BITS)) if (f[name as keyof TransferFlags]) bits |= bit;
  return bits;
}

function transferFlagsFromBits(bits: number): Required<TransferFlags> {
  return {
    pending: (bits & TRANSFER_FLAG_BITS.pending) !== 0,
    post_pending: (bits & TRANSFER_FLAG_BITS.post_pending) !== 0,
    void_pending: (bits & TRANSFER_FLAG_BITS.void_pending) !== 0,
    linked: (bits & TRANSFER_FLAG_BITS.linked) !== 0,
    balancing_debit: (bits & TRANSFER_FLAG_BITS.balancing_debit) !== 0,
  };
}

const orNull = <T>(v: T | undefined): T | null => (v === undefined ? null : v);

export function journalRowFromEntry(e: JournalEntry): JournalRow {
  if (e.kind === 'expiry') {
    return {
      kind: 'expiry',
      transfer_id: null,
      debit_account: e.debit_account,
      credit_account: e.credit_account,
      amount: num(e.amount),
      requested_amount: null,
      flags: 0,
      pending_id: e.pending_id,
      timeout_ms: null,
      expires_at_ms: null,
      memo: null,
      reference: null,
      timestamp_ms: e.timestamp_ms,
    };
  }
  const t = e.transfer;
  return {
    kind: 'transfer',
    transfer_id: t.id,
    debit_account: t.debit_account,
    credit_account: t.credit_account,
    amount: num(t.amount),
    requested_amount: t.requested_amount === undefined ? null : num(t.requested_amount),
    flags: transferFlagsToBits(t.flags),
    pending_id: orNull(t.pending_id),
    timeout_ms: orNull(t.timeout_ms),
    expires_at_ms: orNull(t.expires_at_ms),
    memo: orNull(t.memo),
    reference: orNull(t.reference),
    timestamp_ms: t.timestamp_ms,
  };
}

export function entryFromJournalRow(r: JournalRow): JournalEntry {
  if (r.kind === 'expiry') {
    return {
      kind: 'expiry',
      pending_id: r.pending_id ?? '',
      debit_account: r.debit_account,
      credit_account: r.credit_account,
      amount: big(r.amount),
      timestamp_ms: Number(r.timestamp_ms),
    };
  }
  const t: Transfer = {
    id: r.transfer_id ?? '',
    debit_account: r.debit_account,
    credit_account: r.credit_account,
    amount: big(r.amount),
    requested_amount: r.requested_amount === null ? undefined : big(r.requested_amount),
    flags: transferFlagsFromBits(r.flags),
    timestamp_ms: Number(r.timestamp_ms),
  };
  if (r.pending_id !== null) t.pending_id = r.pending_id;
  if (r.timeout_ms !== null) t.timeout_ms = Number(r.timeout_ms);
  if (r.expires_at_ms !== null) t.expires_at_ms = Number(r.expires_at_ms);
  if (r.memo !== null) t.memo = r.memo;
  if (r.reference !== null) t.reference = r.reference;
  return { kind: 'transfer', transfer: t };
}

/**
 * Canonical audit payloads: JSON arrays in a fixed field order, integers as decimal strings, so the same row
 * always hashes the same on both dialects. `ee ledger verify` recomputes them from the tables.
 */
export function journalPayload(r: JournalRow): string {
  const s = (v: number | null) => (v === null ? null : String(v));
  return JSON.stringify([
    r.kind,
    r.transfer_id,
    r.debit_account,
    r.credit_account,
    s(r.amount),
    s(r.requested_amount),
    r.flags,
    r.pending_id,
    s(r.timeout_ms),
    s(r.expires_at_ms),
    r.memo,
    r.reference,
    String(r.timestamp_ms),
  ]);
}

export function accountPayload(r: Pick<AccountRow, 'id' | 'flags' | 'created_ms'>): string {
  return JSON.stringify([r.id, r.flags, String(r.created_ms)]);
}

export function failedPayload(r: { id: string; result: string; timestamp_ms: number }): string {
  return JSON.stringify([r.id, r.result, String(r.timestamp_ms)]);
}

export function identityPayload(r: Selectable<EeAccountsTable>): string {
  return JSON.stringify([r.id, r.kind, r.name, r.key_hash, String(r.created_ms)]);
}
