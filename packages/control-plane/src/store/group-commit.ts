// The store's writes: each is a function run inside a transaction, committed in groups by the shared writer
// (writer.ts, which documents the limits and the failure rule).
import type { Db } from './database.js';
import { GroupWriter } from './writer.js';

/** Largest batch: bounds the transaction's size and the time one flush holds the writer. */
export const MAX_GROUP_COMMIT_OPS = 512;

/** A store write: runs inside the batch's transaction (`tx`); throws to fail (the writer reruns it alone). */
export type StoreWrite = (tx: Db) => Promise<unknown>;

export class GroupCommitter {
  readonly writer: GroupWriter<StoreWrite>;

  constructor(db: Db) {
    this.writer = new GroupWriter<StoreWrite>({
      name: 'store',
      max_batch_ops: MAX_GROUP_COMMIT_OPS,
      commit: (writes) =>
        db.transaction().execute(async (tx) => {
          const out: unknown[] = [];
          for (const write of writes) out.push(await write(tx));
          return out;
        }),
    });
  }

  /** Batches formed so far (a batch split by the failure rule counts once). */
  get batches(): number {
    return this.writer.stats.groups;
  }

  submit<T>(write: (tx: Db) => Promise<T>): Promise<T> {
    return this.writer.submit<T>(write);
  }

  /** Stops accepting writes and waits for the queued ones. */
  close(): Promise<void> {
    return this.writer.close();
  }
}
