/**
 * Ledger invariants (docs/design.md §4), checked by property tests after every operation. Returns human-readable
 * violations; an empty array means the ledger is consistent. Recomputes everything from the journal rather than
 * trusting the counters, because the counters are what it is checking. The replay itself is JournalFold, shared
 * with `ee ledger verify` (ledger-store/verify.ts), which checks the stored tables the same way.
 */
import { JournalFold } from './fold.js';
import type { LedgerState } from './types.js';

export function checkInvariants(state: LedgerState): string[] {
  const errors: string[] = [];
  const fold = new JournalFold(
    (id) => state.accounts.get(id)?.flags,
    (m) => errors.push(m),
  );
  const seenIds = new Set<string>();

  for (const [index, entry] of state.journal.entries()) {
    fold.apply(entry, `journal #${index}`);
    if (entry.kind !== 'transfer') continue;
    const t = entry.transfer;
    if (seenIds.has(t.id)) errors.push(`journal id ${t.id} appears twice`);
    seenIds.add(t.id);
    if (state.transfers.get(t.id) !== t) errors.push(`journal transfer ${t.id} is not the one in the transfers map`);
  }

  if (seenIds.size !== state.transfers.size)
    errors.push(`transfers map has ${state.transfers.size} ids, journal ${seenIds.size}`);
  for (const id of state.failed.keys()) {
    if (state.transfers.has(id)) errors.push(`id ${id} is both failed and applied`);
  }
  for (const [id, status] of state.pending) fold.checkLockStatus(id, status);
  if (fold.locks.size !== state.pending.size) errors.push('pending status map and journal disagree on pending ids');
  fold.checkAccounts(state.accounts.values());
  return errors;
}
