// Invariants cheap enough to assert at every commit (the expensive ones — a replay of the whole journal and the
// audit chain — stay in the tests and `ee ledger verify`). Given the batch's working set as loaded and as it is
// about to be written, and the journal entries the batch appends:
//  - every account's counters changed by exactly what the new journal entries say (so each batch's debits equal
//    its credits, posted and pending, and no counter moved without a journal entry);
//  - counters stay within [0, MAX_COUNTER_MICRO];
//  - an account flagged debits_must_not_exceed_credits is not overdrawn (open locks included), and the mirror
//    image for credits_must_not_exceed_debits.
// Cost: O(accounts in the working set + new journal entries).
import { MAX_COUNTER_MICRO, type Account, type JournalEntry, type Transfer } from './types.js';

export class LedgerInvariantError extends Error {
  constructor(readonly violations: readonly string[]) {
    super(`ledger invariant violated: ${violations.slice(0, 4).join('; ')}`);
    this.name = 'LedgerInvariantError';
  }
}

type Counter = 'debits_pending' | 'debits_posted' | 'credits_pending' | 'credits_posted';
const COUNTERS: readonly Counter[] = ['debits_pending', 'debits_posted', 'credits_pending', 'credits_posted'];
type Counters = Record<Counter, bigint>;

const zero = (): Counters => ({ debits_pending: 0n, debits_posted: 0n, credits_pending: 0n, credits_posted: 0n });

/** A copy of an account's counters, to compare with after the batch. */
export const countersOf = (a: Account): Counters => ({
  debits_pending: a.debits_pending,
  debits_posted: a.debits_posted,
  credits_pending: a.credits_pending,
  credits_posted: a.credits_posted,
});

/** Violations (empty when the commit is consistent). `loaded`: counters as read; absent = created in the batch. */
export function checkCommit(
  loaded: ReadonlyMap<string, Counters>,
  accounts: Iterable<Account>,
  journal: readonly JournalEntry[],
  transfer: (id: string) => Transfer | undefined,
): string[] {
  const errors: string[] = [];
  const expected = new Map<string, Counters>();
  const add = (account: string, counter: Counter, amount: bigint): void => {
    let c = expected.get(account);
    if (c === undefined) expected.set(account, (c = zero()));
    c[counter] += amount;
  };
  const move = (debit: string, credit: string, phase: 'pending' | 'posted', amount: bigint): void => {
    add(debit, `debits_${phase}`, amount);
    add(credit, `credits_${phase}`, amount);
  };
  for (const e of journal) {
    if (e.kind === 'expiry') {
      move(e.debit_account, e.credit_account, 'pending', -e.amount);
      continue;
    }
    const t = e.transfer;
    if (t.amount <= 0n) errors.push(`transfer ${t.id} moves ${t.amount}`);
    if (t.flags.post_pending || t.flags.void_pending) {
      const pending = t.pending_id === undefined ? undefined : transfer(t.pending_id);
      if (pending === undefined) {
        errors.push(`transfer ${t.id} resolves ${t.pending_id ?? '(none)'}, which is not in the working set`);
        continue;
      }
      move(t.debit_account, t.credit_account, 'pending', -pending.amount);
      if (t.flags.post_pending) move(t.debit_account, t.credit_account, 'posted', t.amount);
    } else {
      move(t.debit_account, t.credit_account, t.flags.pending ? 'pending' : 'posted', t.amount);
    }
  }

  const seen = new Set<string>();
  for (const a of accounts) {
    seen.add(a.id);
    const before = loaded.get(a.id) ?? zero();
    const want = expected.get(a.id) ?? zero();
    for (const k of COUNTERS) {
      if (a[k] - before[k] !== want[k])
        errors.push(`account ${a.id}: ${k} moved by ${a[k] - before[k]}, its journal entries say ${want[k]}`);
      if (a[k] < 0n || a[k] > MAX_COUNTER_MICRO) errors.push(`account ${a.id}: ${k} = ${a[k]} is out of range`);
    }
    if (a.flags.debits_must_not_exceed_credits && a.debits_pending + a.debits_posted > a.credits_posted)
      errors.push(`account ${a.id} is overdrawn`);
    if (a.flags.credits_must_not_exceed_debits && a.credits_pending + a.credits_posted > a.debits_posted)
      errors.push(`account ${a.id} holds more credits than debits`);
  }
  for (const id of expected.keys())
    if (!seen.has(id)) errors.push(`journal moves account ${id}, not in the working set`);
  return errors;
}
