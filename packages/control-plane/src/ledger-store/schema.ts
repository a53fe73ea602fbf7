// Ledger tables as stored. Money columns are BIGINT micro-USD (INTEGER in SQLite, which is 64-bit); every
// counter is bounded by MAX_COUNTER_MICRO (2^53 - 1), so rows read back as exact JavaScript numbers on both
// dialects and are turned into bigint at the edge (rows.ts). Times are integer ms since epoch.
import type { Generated } from 'kysely';

export interface LedgerAccountsTable {
  id: string;
  /** Bit 0: debits_must_not_exceed_credits; bit 1: credits_must_not_exceed_debits. */
  flags: number;
  debits_pending: number;
  debits_posted: number;
  credits_pending: number;
  credits_posted: number;
  created_ms: number;
}

/** The journal: append-only (triggers refuse UPDATE and DELETE). One row per applied transfer or expiry. */
export interface LedgerJournalTable {
  seq: Generated<number>;
  kind: 'transfer' | 'expiry';
  /** Null for expiries: nobody chose an id for them (the expired lock is pending_id). */
  transfer_id: string | null;
  debit_account: string;
  credit_account: string;
  amount: number;
  requested_amount: number | null;
  /** TRANSFER_FLAG_BITS. */
  flags: number;
  pending_id: string | null;
  timeout_ms: number | null;
  expires_at_ms: number | null;
  memo: string | null;
  reference: string | null;
  timestamp_ms: number;
}

/** Status of every pending transfer (the only mutable per-transfer state; the journal proves each change). */
export interface LedgerPendingTable {
  id: string;
  status: 'pending' | 'posted' | 'voided' | 'expired';
  expires_at_ms: number | null;
}

/** Ids that failed for good, so a retry answers id_already_failed. Append-only. */
export interface LedgerFailedTable {
  id: string;
  result: string;
  timestamp_ms: number;
}

/** Hash-chained audit log: append-only; hash = sha256(prev_hash | seq | at_ms | kind | payload). */
export interface LedgerAuditTable {
  seq: number;
  at_ms: number;
  kind: string;
  payload: string;
  prev_hash: string;
  hash: string;
}

/** The chain's head, one row (id = 1); locking it serialises appends across PostgreSQL replicas. */
export interface LedgerAuditHeadTable {
  id: number;
  seq: number;
  hash: string;
}

/** API identities: a user or provider account and its hashed API key. */
export interface EeAccountsTable {
  id: string;
  kind: 'user' | 'provider';
  name: string;
  /** sha256(secret) hex; the secret itself is shown once at creation and never stored. */
  key_hash: string;
  created_ms: number;
}

/**
 * An account's API keys beyond the one it was created with (docs/security.md, key rotation). The creation key
 * stays in `ee_accounts` (its row is in the audit chain and never changes); it is valid until a row here with
 * the same hash gives it an expiry. `expires_ms` null: valid until the next rotation.
 */
export interface EeApiKeysTable {
  account_id: string;
  /** sha256(secret) hex, as in ee_accounts. */
  key_hash: string;
  created_ms: number;
  expires_ms: number | null;
}

/** Stripe-style idempotency records: the first response to (principal, key) is replayed for its retries. */
export interface EeIdempotencyTable {
  principal: string;
  key: string;
  request_hash: string;
  status_code: number;
  response: string;
  created_ms: number;
}

export interface LedgerDatabase {
  ledger_accounts: LedgerAccountsTable;
  ledger_journal: LedgerJournalTable;
  ledger_pending: LedgerPendingTable;
  ledger_failed: LedgerFailedTable;
  ledger_audit: LedgerAuditTable;
  ledger_audit_head: LedgerAuditHeadTable;
  ee_accounts: EeAccountsTable;
  ee_idempotency: EeIdempotencyTable;
  ee_api_keys: EeApiKeysTable;
}
