// Group commit: writes submitted in the same event-loop turn run in ONE transaction (one fsync on SQLite,
// one round trip of BEGIN/COMMIT on PostgreSQL). A reconnect storm of 1000 agents then costs a handful of
// commits instead of thousands. If a batch fails, each write is retried alone so one bad write (say, for
// an agent that no longer exists) never fails the others. Batches run one at a time: a single writer.

import type { Kysely } from 'kysely';
import type { Database } from './schema.js';

type Db = Kysely<Database>;

interface Op {
  run: (tx: Db) => Promise<unknown>;
  resolve: (v: unknown) => void;
  reject: (e: unknown) => void;
}

/** Largest batch: bounds the transaction's size and the time one flush holds the writer. */
export const MAX_GROUP_COMMIT_OPS = 512;

export class GroupCommitter {
  private queue: Op[] = [];
  private scheduled = false;
  private flushing = false;
  batches = 0;

  constructor(private readonly db: Db) {}

  submit<T>(run: (tx: Db) => Promise<T>): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      this.queue.push({ run, resolve: resolve as (v: unknown) => void, reject });
      this.schedule();
    });
  }

  private schedule(): void {
    if (this.scheduled || this.flushing) return;
    this.scheduled = true;
    setImmediate(() => {
      this.scheduled = false;
      void this.flush();
    });
  }

  private async flush(): Promise<void> {
    this.flushing = true;
    try {
      while (this.queue.length > 0) {
        const batch = this.queue.splice(0, MAX_GROUP_COMMIT_OPS);
        this.batches++;
        let results: unknown[];
        try {
          results = await this.db.transaction().execute(async (tx) => {
            const out: unknown[] = [];
            for (const op of batch) out.push(await op.run(tx));
            return out;
          });
        } catch {
          // Something in the batch failed and the whole transaction rolled back: run each alone.
          for (const op of batch) {
            try {
              op.resolve(await this.db.transaction().execute((tx) => op.run(tx)));
            } catch (err) {
              op.reject(err);
            }
          }
          continue;
        }
        batch.forEach((op, i) => op.resolve(results[i]));
      }
    } finally {
      this.flushing = false;
    }
  }
}
