/**
 * Ledger invariants (DESIGN.md §4), checked by property tests after every operation and by `ee ledger verify`.
 * Returns human-readable violations; an empty array means the ledger is consistent. Recomputes everything from
 * the journal rather than trusting the counters, because the counters are what it is checking.
 */
import type { Account, LedgerState, PendingStatus } from './types.js';

type Counters = Pick<Account, 'debits_pending' | 'debits_posted' | 'credits_pending' | 'credits_posted'>;

const zero = (): Counters => ({ debits_pending: 0n, debits_posted: 0n, credits_pending: 0n, credits_posted: 0n });
const FIELDS = ['debits_pending', 'debits_posted', 'credits_pending', 'credits_posted'] as const;

export function checkInvariants(state: LedgerState): string[] {
  const errors: string[] = [];
  const folded = new Map<string, Counters>();
  const counters = (id: string): Counters => {
    let c = folded.get(id);
    if (!c) {
      c = zero();
      folded.set(id, c);
      if (!state.accounts.has(id)) errors.push(`journal references unknown account ${id}`);
    }
    return c;
  };
  // Resolution status as replayed from the journal, to compare with state.pending.
  const replayed = new Map<string, PendingStatus>();
  const pendingAmount = new Map<string, bigint>();
  const seenIds = new Set<string>();

  const release = (pendingId: string, how: PendingStatus): bigint | undefined => {
    const status = replayed.get(pendingId);
    if (status === undefined) {
      errors.push(`${how} of ${pendingId}, which is not an earlier pending transfer`);
      return undefined;
    }
    if (status !== 'pending') errors.push(`pending transfer ${pendingId} resolved twice (${status}, then ${how})`);
    replayed.set(pendingId, how);
    return pendingAmount.get(pendingId);
  };

  for (const [index, entry] of state.journal.entries()) {
    if (entry.kind === 'expiry') {
      const amount = release(entry.pending_id, 'expired');
      if (amount !== undefined && amount !== entry.amount) errors.push(`expiry #${index} amount differs from its lock`);
      counters(entry.debit_account).debits_pending -= entry.amount;
      counters(entry.credit_account).credits_pending -= entry.amount;
      continue;
    }
    const t = entry.transfer;
    if (seenIds.has(t.id)) errors.push(`journal id ${t.id} appears twice`);
    seenIds.add(t.id);
    if (state.transfers.get(t.id) !== t) errors.push(`journal transfer ${t.id} is not the one in the transfers map`);
    if (t.amount <= 0n) errors.push(`transfer ${t.id} has non-positive amount ${t.amount}`);
    const d = counters(t.debit_account);
    const c = counters(t.credit_account);
    if (t.flags.post_pending || t.flags.void_pending) {
      const locked = release(t.pending_id ?? '', t.flags.post_pending ? 'posted' : 'voided') ?? 0n;
      if (t.amount > locked) errors.push(`transfer ${t.id} resolves more than its lock`);
      d.debits_pending -= locked;
      c.credits_pending -= locked;
      if (t.flags.post_pending) {
        d.debits_posted += t.amount;
        c.credits_posted += t.amount;
      }
    } else if (t.flags.pending) {
      replayed.set(t.id, 'pending');
      pendingAmount.set(t.id, t.amount);
      d.debits_pending += t.amount;
      c.credits_pending += t.amount;
    } else {
      d.debits_posted += t.amount;
      c.credits_posted += t.amount;
    }
  }

  if (seenIds.size !== state.transfers.size) errors.push(`transfers map has ${state.transfers.size} ids, journal ${seenIds.size}`);
  for (const id of state.failed.keys()) {
    if (state.transfers.has(id)) errors.push(`id ${id} is both failed and applied`);
  }
  for (const [id, status] of state.pending) {
    if (replayed.get(id) !== status) errors.push(`pending ${id} is ${status} but the journal says ${replayed.get(id)}`);
  }
  if (replayed.size !== state.pending.size) errors.push('pending status map and journal disagree on pending ids');

  const totals = zero();
  for (const [id, account] of state.accounts) {
    const fold = folded.get(id) ?? zero();
    for (const f of FIELDS) {
      totals[f] += account[f];
      if (account[f] !== fold[f]) errors.push(`${id}.${f} is ${account[f]} but the journal folds to ${fold[f]}`);
      if (account[f] < 0n) errors.push(`${id}.${f} is negative (${account[f]})`);
    }
    if (
      account.flags.debits_must_not_exceed_credits &&
      account.debits_pending + account.debits_posted > account.credits_posted
    ) {
      errors.push(`${id} is overdrawn`);
    }
    if (
      account.flags.credits_must_not_exceed_debits &&
      account.credits_pending + account.credits_posted > account.debits_posted
    ) {
      errors.push(`${id} holds more credits than debits`);
    }
  }
  if (totals.debits_posted !== totals.credits_posted) {
    errors.push(`posted debits ${totals.debits_posted} != posted credits ${totals.credits_posted}`);
  }
  if (totals.debits_pending !== totals.credits_pending) {
    errors.push(`pending debits ${totals.debits_pending} != pending credits ${totals.credits_pending}`);
  }
  return errors;
}
