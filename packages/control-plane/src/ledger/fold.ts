/**
 * Replays a journal one entry at a time, recomputing every account's counters and every lock's lifecycle, and
 * reporting what a correct engine could never have written. Streaming, so `ee ledger verify` can feed it pages
 * of database rows with memory bounded by the number of accounts and locks; checkInvariants feeds it the
 * in-memory journal. Entries must arrive in application order (journal seq order): the no-overdraft check runs
 * after every step, and a lock must be created before it is resolved.
 */
import type { Account, AccountFlags, JournalEntry, PendingStatus } from './types.js';

export type Counters = Pick<Account, 'debits_pending' | 'debits_posted' | 'credits_pending' | 'credits_posted'>;
export const COUNTER_FIELDS = ['debits_pending', 'debits_posted', 'credits_pending', 'credits_posted'] as const;
export const zeroCounters = (): Counters => ({
  debits_pending: 0n,
  debits_posted: 0n,
  credits_pending: 0n,
  credits_posted: 0n,
});

/** A lock as replayed from the journal. */
export interface ReplayedLock {
  status: PendingStatus;
  amount: bigint;
  debit_account: string;
  credit_account: string;
  expires_at_ms: number | undefined;
}

export class JournalFold {
  /** Counters as the journal folds them, by account id. */
  readonly counters = new Map<string, Counters>();
  /** Every lock the journal created, by transfer id. */
  readonly locks = new Map<string, ReplayedLock>();
  // One report per account is enough: once overdrawn, every later step would repeat it.
  readonly #overdrawn = new Set<string>();

  constructor(
    /** The stored flags of an account, or undefined when no such account exists. */
    private readonly flagsOf: (id: string) => AccountFlags | undefined,
    private readonly report: (message: string) => void,
  ) {}

  #account(id: string): Counters {
    let c = this.counters.get(id);
    if (!c) {
      c = zeroCounters();
      this.counters.set(id, c);
      if (this.flagsOf(id) === undefined) this.report(`journal references unknown account ${id}`);
    }
    return c;
  }

  /** Marks the lock resolved; undefined when there is no earlier lock with that id. */
  #release(pendingId: string, how: PendingStatus, at: string): ReplayedLock | undefined {
    const lock = this.locks.get(pendingId);
    if (!lock) {
      this.report(`${at}: ${how} of ${pendingId}, which is not an earlier pending transfer`);
      return undefined;
    }
    if (lock.status !== 'pending')
      this.report(`pending transfer ${pendingId} resolved twice (${lock.status}, then ${how})`);
    lock.status = how;
    return lock;
  }

  #sameAccounts(lock: ReplayedLock, debit: string, credit: string, what: string, at: string): void {
    if (lock.debit_account !== debit || lock.credit_account !== credit)
      this.report(`${at}: ${what} moves other accounts than its lock`);
  }

  /** Applies one entry; `at` names it in messages (e.g. "journal seq 17"). */
  apply(entry: JournalEntry, at: string): void {
    if (entry.kind === 'expiry') {
      const lock = this.#release(entry.pending_id, 'expired', at);
      if (lock) {
        if (lock.amount !== entry.amount)
          this.report(`${at}: expiry of ${entry.pending_id} amount differs from its lock`);
        this.#sameAccounts(lock, entry.debit_account, entry.credit_account, `expiry of ${entry.pending_id}`, at);
        if (lock.expires_at_ms === undefined || entry.timestamp_ms < lock.expires_at_ms) {
          this.report(`${at}: ${entry.pending_id} expired before its deadline`);
        }
      }
      this.#account(entry.debit_account).debits_pending -= entry.amount;
      this.#account(entry.credit_account).credits_pending -= entry.amount;
      this.#checkStep(entry.debit_account, entry.credit_account, at);
      return;
    }
    const t = entry.transfer;
    if (t.amount <= 0n) this.report(`${at}: transfer ${t.id} has non-positive amount ${t.amount}`);
    const d = this.#account(t.debit_account);
    const c = this.#account(t.credit_account);
    if (t.flags.post_pending || t.flags.void_pending) {
      const how = t.flags.post_pending ? 'posted' : 'voided';
      const lock = this.#release(t.pending_id ?? '', how, at);
      const locked = lock?.amount ?? 0n;
      if (lock) {
        this.#sameAccounts(lock, t.debit_account, t.credit_account, `transfer ${t.id}`, at);
        if (t.amount > locked) this.report(`${at}: transfer ${t.id} resolves more than its lock`);
        if (lock.expires_at_ms !== undefined && t.timestamp_ms >= lock.expires_at_ms) {
          this.report(`${at}: transfer ${t.id} resolves ${t.pending_id} after its deadline`);
        }
      }
      d.debits_pending -= locked;
      c.credits_pending -= locked;
      if (t.flags.post_pending) {
        d.debits_posted += t.amount;
        c.credits_posted += t.amount;
      }
    } else if (t.flags.pending) {
      this.locks.set(t.id, {
        status: 'pending',
        amount: t.amount,
        debit_account: t.debit_account,
        credit_account: t.credit_account,
        expires_at_ms: t.expires_at_ms,
      });
      d.debits_pending += t.amount;
      c.credits_pending += t.amount;
    } else {
      d.debits_posted += t.amount;
      c.credits_posted += t.amount;
    }
    this.#checkStep(t.debit_account, t.credit_account, at);
  }

  /** No overdraft after every step, not only at the end: a later credit must not hide an earlier overdraft. */
  #checkStep(debit: string, credit: string, at: string): void {
    for (const id of [debit, credit]) {
      const flags = this.flagsOf(id);
      const c = this.counters.get(id);
      if (!flags || !c || this.#overdrawn.has(id)) continue;
      if (overdrawn(flags, c)) {
        this.#overdrawn.add(id);
        this.report(`${at}: ${id} ${overdrawn(flags, c)}`);
      }
    }
  }

  /** Compares one stored lock status with the replay. */
  checkLockStatus(id: string, status: PendingStatus, expires_at_ms?: number | null): void {
    const lock = this.locks.get(id);
    if (lock?.status !== status) this.report(`pending ${id} is ${status} but the journal says ${lock?.status}`);
    if (lock && expires_at_ms !== undefined && (expires_at_ms ?? undefined) !== lock.expires_at_ms) {
      this.report(`pending ${id} expires at ${expires_at_ms} but its lock says ${lock.expires_at_ms}`);
    }
  }

  /**
   * End-of-journal checks over the stored accounts: counters equal the fold, none negative, no overdraft,
   * debits = credits. Returns the stored totals.
   */
  checkAccounts(accounts: Iterable<Account>): Counters {
    const totals = zeroCounters();
    for (const account of accounts) {
      const fold = this.counters.get(account.id) ?? zeroCounters();
      for (const f of COUNTER_FIELDS) {
        totals[f] += account[f];
        if (account[f] !== fold[f])
          this.report(`${account.id}.${f} is ${account[f]} but the journal folds to ${fold[f]}`);
        if (account[f] < 0n) this.report(`${account.id}.${f} is negative (${account[f]})`);
      }
      const why = overdrawn(account.flags, account);
      if (why) this.report(`${account.id} ${why}`);
    }
    if (totals.debits_posted !== totals.credits_posted) {
      this.report(`posted debits ${totals.debits_posted} != posted credits ${totals.credits_posted}`);
    }
    if (totals.debits_pending !== totals.credits_pending) {
      this.report(`pending debits ${totals.debits_pending} != pending credits ${totals.credits_pending}`);
    }
    return totals;
  }
}

/** Why the counters break the account's flags, or undefined. */
function overdrawn(flags: AccountFlags, c: Counters): string | undefined {
  if (flags.debits_must_not_exceed_credits && c.debits_pending + c.debits_posted > c.credits_posted)
    return 'is overdrawn';
  if (flags.credits_must_not_exceed_debits && c.credits_pending + c.credits_posted > c.debits_posted) {
    return 'holds more credits than debits';
  }
  return undefined;
}
