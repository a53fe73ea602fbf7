import type { Account, JournalEntry, LedgerState, PendingStatus, Transfer } from './types.js';

/** Copy-on-write view of a LedgerState: reads fall through to the base, writes stay here until commit. */
export class Overlay {
  private readonly accounts = new Map<string, Account>();
  private readonly transfers = new Map<string, Transfer>();
  private readonly pending = new Map<string, PendingStatus>();
  private readonly journal: JournalEntry[] = [];

  constructor(readonly base: LedgerState) {}

  account(id: string): Account | undefined {
    return this.accounts.get(id) ?? this.base.accounts.get(id);
  }

  /** A private copy of the account, safe to mutate. Callers have already checked it exists. */
  mutableAccount(id: string): Account {
    let copy = this.accounts.get(id);
    if (!copy) {
      const original = this.base.accounts.get(id);
      if (!original) throw new Error(`ledger bug: account ${id} vanished`);
      copy = { ...original, flags: { ...original.flags } };
      this.accounts.set(id, copy);
    }
    return copy;
  }

  transfer(id: string): Transfer | undefined {
    return this.transfers.get(id) ?? this.base.transfers.get(id);
  }

  pendingStatus(id: string): PendingStatus | undefined {
    return this.pending.get(id) ?? this.base.pending.get(id);
  }

  setPendingStatus(id: string, status: PendingStatus): void {
    this.pending.set(id, status);
  }

  record(transfer: Transfer): void {
    this.transfers.set(transfer.id, transfer);
    this.journal.push({ kind: 'transfer', transfer });
  }

  commit(): void {
    for (const [id, account] of this.accounts) this.base.accounts.set(id, account);
    for (const [id, transfer] of this.transfers) this.base.transfers.set(id, transfer);
    for (const [id, status] of this.pending) this.base.pending.set(id, status);
    this.base.journal.push(...this.journal);
  }
}
