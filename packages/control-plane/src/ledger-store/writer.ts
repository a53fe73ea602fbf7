// The ledger's writer: the shared group-commit writer (store/writer.ts: limits and failure rule) running each
// batch of LedgerOps through runBatch (batch.ts), one database transaction per batch.
import type { Db } from '../store/database.js';
import type { StoreDialect } from '../store/migrations.js';
import { GroupWriter, isConflict } from '../store/writer.js';
import { runBatch, type CommittedEntry, type LedgerOp } from './batch.js';

/** Operations per transaction: bounds the transaction's size and how long one commit holds the writer. */
export const MAX_BATCH_OPS = 1024;

/** The writer's conflicts plus 23505 unique_violation: a concurrent replica inserted the same transfer id; the
 *  retry then sees it and answers 'exists'. */
export function isRetryable(err: unknown): boolean {
  return isConflict(err) || (typeof err === 'object' && err !== null && (err as { code?: unknown }).code === '23505');
}

export type LedgerWriter = GroupWriter<LedgerOp<unknown>>;

/** `committed` hears each committed batch's journal entries with the operations that made them. */
export function ledgerWriter(
  db: Db,
  dialect: StoreDialect,
  now: () => number,
  committed?: (entries: readonly CommittedEntry[], ops: readonly LedgerOp<unknown>[]) => void,
): LedgerWriter {
  return new GroupWriter<LedgerOp<unknown>>({
    name: 'ledger',
    max_batch_ops: MAX_BATCH_OPS,
    retryable: isRetryable,
    commit: (ops) => runBatch(db, dialect, ops, now, committed && ((entries) => committed(entries, ops))),
  });
}
