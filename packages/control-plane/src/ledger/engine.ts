/**
 * The ledger engine: a pure state machine over LedgerState. No I/O and no Date.now — time is the `now_ms`
 * argument, so storage layers and tests drive the clock.
 *
 * Atomicity: each linked chain (a standalone transfer is a chain of one) is applied to a copy-on-write Overlay
 * and merged into the state only if every member succeeded, so a failed chain leaves balances, transfers and
 * journal untouched. Within a member, every check runs before the first write, so a member either applies
 * completely or not at all.
 *
 * Choices worth knowing:
 * - 'exists' counts as success inside a chain, so retrying a whole committed chain answers 'exists' for each.
 * - Failures other than TRANSIENT_RESULTS are remembered: a retry of that id answers 'id_already_failed' (even if
 *   funds arrived since), so a client never sees one id both fail and succeed. Choose a new id to try again.
 * - balancing_debit clamps to the debit account's available balance; a clamp to zero is 'exceeds_credits' (no
 *   zero-amount transfers are ever journaled).
 * - A pending transfer past its timeout can no longer be posted or voided ('pending_transfer_expired') even before
 *   expirePending has swept it; its reservation is released by the sweep, which storage should run before each
 *   batch in the same transaction.
 * - A missing amount on a plain or pending transfer is 'amount_must_not_be_zero' (as in TigerBeetle).
 */
import { availableBalance } from './accounts.js';
import { MAX_AMOUNT_MICRO } from './amount.js';
import { Overlay } from './overlay.js';
import {
  MAX_COUNTER_MICRO,
  MAX_MEMO_LENGTH,
  REFERENCE_PATTERN,
  TRANSFER_ID_PATTERN,
  TRANSIENT_RESULTS,
  type LedgerState,
  type Transfer,
  type TransferFlags,
  type TransferInput,
  type TransferResult,
} from './types.js';

export { createAccounts, createLedgerState } from './accounts.js';

function normalizeFlags(flags: TransferFlags | undefined): Required<TransferFlags> {
  return {
    pending: flags?.pending === true,
    post_pending: flags?.post_pending === true,
    void_pending: flags?.void_pending === true,
    linked: flags?.linked === true,
    balancing_debit: flags?.balancing_debit === true,
  };
}

/** Idempotency: a retry must repeat the request exactly as first submitted. */
function sameRequest(existing: Transfer, input: TransferInput): boolean {
  const flags = normalizeFlags(input.flags);
  const keys = Object.keys(flags) as (keyof TransferFlags)[];
  return (
    existing.debit_account === input.debit_account &&
    existing.credit_account === input.credit_account &&
    existing.requested_amount === input.amount &&
    keys.every((k) => existing.flags[k] === flags[k]) &&
    existing.pending_id === input.pending_id &&
    existing.timeout_ms === input.timeout_ms &&
    existing.memo === input.memo &&
    existing.reference === input.reference
  );
}

function newTransfer(input: TransferInput, flags: Required<TransferFlags>, amount: bigint, now_ms: number): Transfer {
  const transfer: Transfer = {
    id: input.id,
    debit_account: input.debit_account,
    credit_account: input.credit_account,
    amount,
    requested_amount: input.amount,
    flags,
    timestamp_ms: now_ms,
  };
  if (input.pending_id !== undefined) transfer.pending_id = input.pending_id;
  if (input.timeout_ms !== undefined) transfer.timeout_ms = input.timeout_ms;
  if (input.timeout_ms !== undefined && input.timeout_ms > 0) transfer.expires_at_ms = now_ms + input.timeout_ms;
  if (input.memo !== undefined) transfer.memo = input.memo;
  if (input.reference !== undefined) transfer.reference = input.reference;
  return transfer;
}

/** Validates one transfer against the overlay and, only if every check passes, applies it there. */
function execute(ov: Overlay, input: TransferInput, now_ms: number): TransferResult {
  if (typeof input.id !== 'string' || !TRANSFER_ID_PATTERN.test(input.id)) return 'id_invalid';
  if (ov.base.failed.has(input.id)) return 'id_already_failed';
  const existing = ov.transfer(input.id);
  if (existing) return sameRequest(existing, input) ? 'exists' : 'exists_with_different_fields';

  const flags = normalizeFlags(input.flags);
  const phases = Number(flags.pending) + Number(flags.post_pending) + Number(flags.void_pending);
  const resolving = flags.post_pending || flags.void_pending;
  if (phases > 1 || (flags.balancing_debit && resolving)) return 'flags_are_mutually_exclusive';
  if (input.memo !== undefined && (typeof input.memo !== 'string' || input.memo.length > MAX_MEMO_LENGTH)) {
    return 'memo_invalid';
  }
  if (
    input.reference !== undefined &&
    (typeof input.reference !== 'string' || !REFERENCE_PATTERN.test(input.reference))
  ) {
    return 'reference_invalid';
  }
  if (input.amount !== undefined) {
    if (typeof input.amount !== 'bigint' || input.amount < 0n || input.amount > MAX_AMOUNT_MICRO)
      return 'amount_invalid';
    if (input.amount === 0n) return 'amount_must_not_be_zero';
  }
  if (input.timeout_ms !== undefined) {
    if (!flags.pending) return 'timeout_reserved_for_pending_transfer';
    if (!Number.isSafeInteger(input.timeout_ms) || input.timeout_ms < 0) return 'timeout_invalid';
  }
  return resolving ? resolvePending(ov, input, flags, now_ms) : move(ov, input, flags, now_ms);
}

/** A plain (posted at once) or pending (reserved) transfer. */
function move(ov: Overlay, input: TransferInput, flags: Required<TransferFlags>, now_ms: number): TransferResult {
  if (input.pending_id !== undefined) return 'pending_id_must_not_be_set';
  if (input.amount === undefined) return 'amount_must_not_be_zero';
  if (input.debit_account === input.credit_account) return 'accounts_must_be_different';
  const debit = ov.account(input.debit_account);
  const credit = ov.account(input.credit_account);
  if (!debit || !credit) return 'account_not_found';

  let amount = input.amount;
  if (flags.balancing_debit && debit.flags.debits_must_not_exceed_credits) {
    const available = availableBalance(debit);
    if (available < amount) amount = available > 0n ? available : 0n;
    if (amount === 0n) return 'exceeds_credits';
  }
  // Pending debits count against the balance too: a lock makes money unavailable before it is settled.
  if (
    debit.flags.debits_must_not_exceed_credits &&
    debit.debits_pending + debit.debits_posted + amount > debit.credits_posted
  ) {
    return 'exceeds_credits';
  }
  if (
    credit.flags.credits_must_not_exceed_debits &&
    credit.credits_pending + credit.credits_posted + amount > credit.debits_posted
  ) {
    return 'exceeds_debits';
  }
  const debitCounter = flags.pending ? debit.debits_pending : debit.debits_posted;
  if (debitCounter + amount > MAX_COUNTER_MICRO) return 'overflows_debits';
  const creditCounter = flags.pending ? credit.credits_pending : credit.credits_posted;
  if (creditCounter + amount > MAX_COUNTER_MICRO) return 'overflows_credits';

  const d = ov.mutableAccount(input.debit_account);
  const c = ov.mutableAccount(input.credit_account);
  if (flags.pending) {
    d.debits_pending += amount;
    c.credits_pending += amount;
    ov.setPendingStatus(input.id, 'pending');
  } else {
    d.debits_posted += amount;
    c.credits_posted += amount;
  }
  ov.record(newTransfer(input, flags, amount, now_ms));
  return 'ok';
}

/** Post (settle, possibly partially; the rest is released) or void (release) a pending transfer. */
function resolvePending(
  ov: Overlay,
  input: TransferInput,
  flags: Required<TransferFlags>,
  now_ms: number,
): TransferResult {
  if (input.pending_id === undefined) return 'pending_id_required';
  if (input.pending_id === input.id) return 'pending_id_must_be_different';
  const pending = ov.transfer(input.pending_id);
  if (!pending) return 'pending_transfer_not_found';
  if (!pending.flags.pending) return 'pending_transfer_not_pending';
  const status = ov.pendingStatus(input.pending_id);
  if (status === 'posted') return 'pending_transfer_already_posted';
  if (status === 'voided') return 'pending_transfer_already_voided';
  if (status === 'expired') return 'pending_transfer_expired';
  if (pending.expires_at_ms !== undefined && now_ms >= pending.expires_at_ms) return 'pending_transfer_expired';
  if (input.debit_account !== pending.debit_account || input.credit_account !== pending.credit_account) {
    return 'pending_transfer_has_different_accounts';
  }
  let amount = pending.amount;
  if (flags.post_pending) {
    if (input.amount !== undefined && input.amount > pending.amount) return 'exceeds_pending_transfer_amount';
    amount = input.amount ?? pending.amount;
  } else if (input.amount !== undefined && input.amount !== pending.amount) {
    // A void always releases everything; a different amount means the caller is confused about which lock.
    return 'pending_transfer_has_different_amount';
  }

  // No overdraft check needed: the pending transfer already reserved pending.amount >= amount.
  if (flags.post_pending) {
    const debit = ov.account(pending.debit_account);
    const credit = ov.account(pending.credit_account);
    if (!debit || !credit) return 'account_not_found';
    if (debit.debits_posted + amount > MAX_COUNTER_MICRO) return 'overflows_debits';
    if (credit.credits_posted + amount > MAX_COUNTER_MICRO) return 'overflows_credits';
  }
  const d = ov.mutableAccount(pending.debit_account);
  const c = ov.mutableAccount(pending.credit_account);
  d.debits_pending -= pending.amount;
  c.credits_pending -= pending.amount;
  if (flags.post_pending) {
    d.debits_posted += amount;
    c.credits_posted += amount;
  }
  ov.setPendingStatus(input.pending_id, flags.post_pending ? 'posted' : 'voided');
  ov.record(newTransfer(input, flags, amount, now_ms));
  return 'ok';
}

/**
 * Applies a batch of transfers in order; returns one result per input. Consecutive transfers with `linked` form a
 * chain ending at the first one without it; a chain commits only if every member is 'ok' or 'exists'. Otherwise
 * the failing member keeps its code and every other member gets 'linked_event_failed'. A batch whose last
 * transfer is linked has an open chain: that chain fails with 'linked_event_chain_open' on its last member.
 */
export function createTransfers(
  state: LedgerState,
  inputs: readonly TransferInput[],
  now_ms: number,
): TransferResult[] {
  const results: TransferResult[] = [];
  let start = 0;
  while (start < inputs.length) {
    let end = start;
    while (end < inputs.length - 1 && inputs[end]?.flags?.linked === true) end++;
    const chain = inputs.slice(start, end + 1);
    if (chain[chain.length - 1]?.flags?.linked === true) {
      for (let i = 0; i < chain.length; i++) {
        results.push(i === chain.length - 1 ? 'linked_event_chain_open' : 'linked_event_failed');
      }
      break;
    }
    const ov = new Overlay(state);
    let failure: { index: number; code: TransferResult } | undefined;
    const chainResults: TransferResult[] = [];
    for (const [index, input] of chain.entries()) {
      const code = execute(ov, input, now_ms);
      chainResults.push(code);
      if (code !== 'ok' && code !== 'exists') {
        failure = { index, code };
        break;
      }
    }
    if (!failure) {
      ov.commit();
      results.push(...chainResults);
    } else {
      const failedInput = chain[failure.index];
      if (failedInput && !TRANSIENT_RESULTS.has(failure.code)) state.failed.set(failedInput.id, failure.code);
      for (let i = 0; i < chain.length; i++) results.push(i === failure.index ? failure.code : 'linked_event_failed');
    }
    start = end + 1;
  }
  return results;
}

/**
 * Voids every pending transfer whose timeout has passed (expires_at_ms <= now_ms), releasing its reservation and
 * journaling an 'expiry' entry. Returns the expired ids in creation order. Idempotent: a second call finds none.
 */
export function expirePending(state: LedgerState, now_ms: number): string[] {
  const expired: string[] = [];
  for (const [id, status] of state.pending) {
    if (status !== 'pending') continue;
    const pending = state.transfers.get(id);
    if (!pending || pending.expires_at_ms === undefined || pending.expires_at_ms > now_ms) continue;
    const debit = state.accounts.get(pending.debit_account);
    const credit = state.accounts.get(pending.credit_account);
    if (!debit || !credit) throw new Error(`ledger bug: accounts of pending transfer ${id} vanished`);
    debit.debits_pending -= pending.amount;
    credit.credits_pending -= pending.amount;
    state.pending.set(id, 'expired');
    state.journal.push({
      kind: 'expiry',
      pending_id: id,
      debit_account: pending.debit_account,
      credit_account: pending.credit_account,
      amount: pending.amount,
      timestamp_ms: now_ms,
    });
    expired.push(id);
  }
  return expired;
}
