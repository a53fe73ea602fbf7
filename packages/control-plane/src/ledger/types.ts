/**
 * Ledger data model (docs/design.md §4), TigerBeetle-style double entry. All amounts are integer micro-USD bigints.
 *
 * Sign convention: a user's spendable balance is credits_posted - debits_posted - debits_pending; a mint debits
 * `platform:issuance` (which has no no-overdraft flag, so it goes negative by exactly the money in circulation).
 */

/** Transfer ids are chosen by the client so retries are idempotent (e.g. `settle:{lease}:{period}`). */
export const TRANSFER_ID_PATTERN = /^[A-Za-z0-9:_-]{1,64}$/;
/** Account ids follow the chart of accounts (`user:{id}`, `provider:{id}:earnings`, …); longer to fit two ids. */
export const ACCOUNT_ID_PATTERN = /^[A-Za-z0-9:_-]{1,128}$/;
/** Memos are free text for humans; bounded so a journal row has a bounded size. */
export const MAX_MEMO_LENGTH = 256;
/** External references (a payment id, a lease-period) are machine strings; same alphabet as ids, a little longer. */
export const REFERENCE_PATTERN = /^[A-Za-z0-9:_.@/-]{1,128}$/;
/**
 * Every account counter stays <= 2^53 - 1 micro-USD (~$9 billion): it then survives JSON numbers, JavaScript
 * numbers and both databases' 64-bit integers exactly. A transfer that would push a counter past it fails with
 * 'overflows_debits' / 'overflows_credits' instead of wrapping or rounding.
 */
export const MAX_COUNTER_MICRO = 2n ** 53n - 1n;

export interface AccountFlags {
  /** No overdraft: debits_pending + debits_posted may never exceed credits_posted. */
  debits_must_not_exceed_credits?: boolean;
  /** The mirror image, for accounts that must never hold more than was put in. */
  credits_must_not_exceed_debits?: boolean;
}

export interface Account {
  id: string;
  flags: AccountFlags;
  debits_pending: bigint;
  debits_posted: bigint;
  credits_pending: bigint;
  credits_posted: bigint;
}

/** What a caller submits to create an account; counters always start at zero. */
export interface AccountInput {
  id: string;
  flags?: AccountFlags;
}

export interface TransferFlags {
  /** Phase one: reserve `amount` (debits_pending / credits_pending) until posted, voided or expired. */
  pending?: boolean;
  /** Phase two: settle the pending transfer `pending_id` (whole amount by default, or less). */
  post_pending?: boolean;
  /** Phase two: release the pending transfer `pending_id` back to the debit account. */
  void_pending?: boolean;
  /** This transfer and the next one in the batch succeed or fail together. */
  linked?: boolean;
  /** Move at most what the debit account has available (clamp instead of failing with exceeds_credits). */
  balancing_debit?: boolean;
}

/** A transfer as submitted. */
export interface TransferInput {
  id: string;
  debit_account: string;
  credit_account: string;
  /** Required for plain and pending transfers; for post it defaults to the pending amount, for void it is optional. */
  amount?: bigint;
  flags?: TransferFlags;
  /** The pending transfer a post/void resolves. */
  pending_id?: string;
  /** Pending transfers only: milliseconds after creation at which it is voided automatically; absent/0 = never. */
  timeout_ms?: number;
  memo?: string;
  /** An external reference (e.g. a payment id); part of the request for idempotency. */
  reference?: string;
}

/** A transfer as recorded in the journal. */
export interface Transfer {
  id: string;
  debit_account: string;
  credit_account: string;
  /** The amount actually moved or reserved (after balancing clamp / post default). */
  amount: bigint;
  /** The amount as submitted (undefined when defaulted); idempotent retries are compared against this. */
  requested_amount: bigint | undefined;
  flags: Required<TransferFlags>;
  pending_id?: string;
  timeout_ms?: number;
  /** timestamp_ms + timeout_ms for pending transfers with a timeout. */
  expires_at_ms?: number;
  memo?: string;
  reference?: string;
  /** The injected clock's time when the transfer was applied. */
  timestamp_ms: number;
}

/** Lifecycle of a pending transfer: it leaves 'pending' at most once. */
export type PendingStatus = 'pending' | 'posted' | 'voided' | 'expired';

/**
 * One append-only journal line. Expiry is its own kind (not a Transfer) because nobody chose an id for it and an
 * engine-made id could collide with a client's.
 */
export type JournalEntry =
  | { kind: 'transfer'; transfer: Transfer }
  | {
      kind: 'expiry';
      pending_id: string;
      debit_account: string;
      credit_account: string;
      amount: bigint;
      timestamp_ms: number;
    };

export const ACCOUNT_RESULTS = [
  'ok',
  'exists',
  'exists_with_different_flags',
  'id_invalid',
  'flags_are_mutually_exclusive',
] as const;
export type AccountResult = (typeof ACCOUNT_RESULTS)[number];

/** Transfer result codes, named after TigerBeetle's where one exists. */
export const TRANSFER_RESULTS = [
  'ok',
  'exists',
  'exists_with_different_fields',
  'id_already_failed',
  'id_invalid',
  'linked_event_failed',
  'linked_event_chain_open',
  'flags_are_mutually_exclusive',
  'memo_invalid',
  'reference_invalid',
  'amount_must_not_be_zero',
  'amount_invalid',
  'accounts_must_be_different',
  'account_not_found',
  'pending_id_must_not_be_set',
  'pending_id_required',
  'pending_id_must_be_different',
  'timeout_reserved_for_pending_transfer',
  'timeout_invalid',
  'exceeds_credits',
  'exceeds_debits',
  'overflows_debits',
  'overflows_credits',
  'pending_transfer_not_found',
  'pending_transfer_not_pending',
  'pending_transfer_already_posted',
  'pending_transfer_already_voided',
  'pending_transfer_expired',
  'pending_transfer_has_different_accounts',
  'pending_transfer_has_different_amount',
  'exceeds_pending_transfer_amount',
] as const;
export type TransferResult = (typeof TRANSFER_RESULTS)[number];

/**
 * Results that say nothing final about the id itself, so they are NOT remembered as failures: a retry may
 * still succeed (the chain is fixed, or the id was simply malformed / already in use).
 */
export const TRANSIENT_RESULTS: ReadonlySet<TransferResult> = new Set<TransferResult>([
  'ok',
  'exists',
  'exists_with_different_fields',
  'id_already_failed',
  'id_invalid',
  'linked_event_failed',
  'linked_event_chain_open',
]);

/** The whole ledger. Plain maps so a storage layer can load/save it and tests can inspect it. */
export interface LedgerState {
  accounts: Map<string, Account>;
  /** Every applied transfer by id (the same objects as in the journal). */
  transfers: Map<string, Transfer>;
  /** Ids that failed for good, with the code they failed with. */
  failed: Map<string, TransferResult>;
  /** Status of every pending transfer ever created, by its id. */
  pending: Map<string, PendingStatus>;
  /** Append-only, in application order. */
  journal: JournalEntry[];
}
