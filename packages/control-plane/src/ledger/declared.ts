// Assertions on a LedgerOp's declared inputs (as TigerBeetle asserts what an operation said it needs). Storage
// loads only the accounts and transfers a batch's operations declared; an operation that touches one it did not
// declare would see "absent" and answer account_not_found (or, worse, see a row another operation of the same
// batch happened to load, so its answer would depend on its neighbours). While an operation runs, its state's
// maps refuse every id outside its declaration with UndeclaredInputError, which fails the operation loudly.
import type { Account, LedgerState, PendingStatus, Transfer, TransferResult } from './types.js';

export class UndeclaredInputError extends Error {
  constructor(kind: 'account' | 'transfer', id: string) {
    super(`ledger operation touched ${kind} ${id} that it did not declare`);
    this.name = 'UndeclaredInputError';
  }
}

/** What one operation may touch: account ids, and transfer ids (its own, the pending ids it resolves). */
export interface Declaration {
  readonly accounts: ReadonlySet<string>;
  readonly transfers: ReadonlySet<string>;
}

class GuardedMap<V> extends Map<string, V> {
  allowed: ReadonlySet<string> | undefined;

  constructor(private readonly kind: 'account' | 'transfer') {
    super();
  }

  #check(id: string): void {
    if (this.allowed !== undefined && !this.allowed.has(id)) throw new UndeclaredInputError(this.kind, id);
  }
  override get(id: string): V | undefined {
    this.#check(id);
    return super.get(id);
  }
  override has(id: string): boolean {
    this.#check(id);
    return super.has(id);
  }
  override set(id: string, value: V): this {
    this.#check(id);
    return super.set(id, value);
  }
  override delete(id: string): boolean {
    this.#check(id);
    return super.delete(id);
  }
}

/** A LedgerState whose maps check ids against the declaration of the operation running (none: unchecked). */
export class GuardedState {
  readonly #accounts = new GuardedMap<Account>('account');
  readonly #transfers = new GuardedMap<Transfer>('transfer');
  readonly #failed = new GuardedMap<TransferResult>('transfer');
  readonly #pending = new GuardedMap<PendingStatus>('transfer');
  readonly state: LedgerState = {
    accounts: this.#accounts,
    transfers: this.#transfers,
    failed: this.#failed,
    pending: this.#pending,
    journal: [],
  };

  /** Runs `fn` with the state's maps limited to `d`; unchecked again afterwards, even if `fn` throws. */
  within<T>(d: Declaration, fn: () => T): T {
    this.#limit(d);
    try {
      return fn();
    } finally {
      this.#limit(undefined);
    }
  }

  #limit(d: Declaration | undefined): void {
    this.#accounts.allowed = d?.accounts;
    this.#transfers.allowed = d?.transfers;
    this.#failed.allowed = d?.transfers;
    this.#pending.allowed = d?.transfers;
  }
}
