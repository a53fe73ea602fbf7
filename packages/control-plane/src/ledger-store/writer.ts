// The ledger's single writer with group commit: operations submitted while a batch is being committed queue
// up and go into the next transaction together, so N concurrent requests cost one fsync (SQLite) or one
// commit round trip (PostgreSQL) instead of N. Bounded: a full queue refuses new work (LedgerBusyError → 503)
// rather than growing without limit.
//
// Failure handling: a retryable database conflict (PostgreSQL serialization failure, deadlock, a unique
// violation from a concurrent replica, or BatchConflictError) reruns the whole batch after a jittered backoff;
// any other error reruns each operation alone, so one bad operation fails only itself.
import { setTimeout as sleep } from 'node:timers/promises';
import type { StoreDialect } from '../store/migrations.js';
import { runBatch, type LedgerDb, type LedgerOp } from './batch.js';

/** Operations per transaction: bounds the transaction's size and how long one commit holds the writer. */
export const MAX_BATCH_OPS = 1024;
/** Operations waiting for the writer; beyond this, submit() fails fast. */
export const MAX_QUEUED_OPS = 65_536;
/** Attempts for a batch that keeps hitting retryable conflicts before its operations are failed. */
export const MAX_BATCH_ATTEMPTS = 12;
const BACKOFF_BASE_MS = 2;
const BACKOFF_CAP_MS = 200;

export class LedgerBusyError extends Error {
  constructor() {
    super(`ledger write queue is full (${MAX_QUEUED_OPS} operations)`);
    this.name = 'LedgerBusyError';
  }
}

export class LedgerClosedError extends Error {
  constructor() {
    super('ledger is closed');
    this.name = 'LedgerClosedError';
  }
}

interface Queued {
  op: LedgerOp<unknown>;
  resolve: (v: unknown) => void;
  reject: (e: unknown) => void;
}

// 40001 serialization_failure, 40P01 deadlock_detected, 23505 unique_violation (a concurrent replica inserted
// the same transfer id; the retry then sees it and answers 'exists').
const RETRYABLE_PG_CODES = new Set(['40001', '40P01', '23505']);

export function isRetryable(err: unknown): boolean {
  if (typeof err !== 'object' || err === null) return false;
  if ((err as { retryable?: unknown }).retryable === true) return true;
  const code = (err as { code?: unknown }).code;
  return typeof code === 'string' && (RETRYABLE_PG_CODES.has(code) || code === 'SQLITE_BUSY');
}

export interface WriterStats {
  batches: number;
  ops: number;
  retries: number;
}

export class LedgerWriter {
  readonly #queue: Queued[] = [];
  #running = false;
  #closed = false;
  #idle: Array<() => void> = [];
  readonly stats: WriterStats = { batches: 0, ops: 0, retries: 0 };

  constructor(
    private readonly db: LedgerDb,
    private readonly dialect: StoreDialect,
    private readonly now: () => number,
  ) {}

  get queued(): number {
    return this.#queue.length;
  }

  submit<T>(op: LedgerOp<T>): Promise<T> {
    if (this.#closed) return Promise.reject(new LedgerClosedError());
    if (this.#queue.length >= MAX_QUEUED_OPS) return Promise.reject(new LedgerBusyError());
    return new Promise<T>((resolve, reject) => {
      this.#queue.push({ op, resolve: resolve as (v: unknown) => void, reject });
      if (!this.#running) {
        this.#running = true;
        // Let the rest of this event-loop turn queue its operations too.
        setImmediate(() => void this.#drain());
      }
    });
  }

  /** Stops accepting operations and waits for the queued ones to commit. */
  async close(): Promise<void> {
    this.#closed = true;
    if (!this.#running) return;
    await new Promise<void>((resolve) => this.#idle.push(resolve));
  }

  async #drain(): Promise<void> {
    try {
      while (this.#queue.length > 0) {
        const batch = this.#queue.splice(0, MAX_BATCH_OPS);
        await this.#commit(batch);
      }
    } finally {
      this.#running = false;
      for (const resolve of this.#idle.splice(0)) resolve();
    }
  }

  async #commit(batch: Queued[]): Promise<void> {
    try {
      const results = await this.#withRetry(batch.map((q) => q.op));
      batch.forEach((q, i) => q.resolve(results[i]));
      return;
    } catch (err) {
      if (batch.length === 1) {
        batch[0]!.reject(err);
        return;
      }
    }
    for (const q of batch) {
      try {
        q.resolve((await this.#withRetry([q.op]))[0]);
      } catch (err) {
        q.reject(err);
      }
    }
  }

  async #withRetry(ops: LedgerOp<unknown>[]): Promise<unknown[]> {
    for (let attempt = 1; ; attempt++) {
      try {
        const results = await runBatch(this.db, this.dialect, ops, this.now);
        this.stats.batches += 1;
        this.stats.ops += ops.length;
        return results;
      } catch (err) {
        if (!isRetryable(err) || attempt >= MAX_BATCH_ATTEMPTS) throw err;
        this.stats.retries += 1;
        const cap = Math.min(BACKOFF_CAP_MS, BACKOFF_BASE_MS * 2 ** attempt);
        await sleep(Math.random() * cap);
      }
    }
  }
}
