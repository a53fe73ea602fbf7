// The ledger's whole state loaded back from its tables, for the model tests' invariant checks after each step.
import type { Kysely } from 'kysely';
import { createLedgerState } from '@easyenclave/control-plane/ledger/engine';
import { accountFromRow, entryFromJournalRow } from '@easyenclave/control-plane/ledger-store/rows';

/** Any store's database (only the ledger tables are read). */
export async function loadLedgerState(db: Kysely<any>) {
  const state = createLedgerState();
  for (const r of await db.selectFrom('ledger_accounts').selectAll().execute())
    state.accounts.set(r.id, accountFromRow(r as Parameters<typeof accountFromRow>[0]));
  for (const r of await db.selectFrom('ledger_journal').selectAll().orderBy('seq').execute()) {
    const e = entryFromJournalRow(r as Parameters<typeof entryFromJournalRow>[0]);
    state.journal.push(e);
    if (e.kind === 'transfer') state.transfers.set(e.transfer.id, e.transfer);
  }
  for (const r of await db.selectFrom('ledger_pending').selectAll().execute()) state.pending.set(r.id, r.status);
  return state;
}
