// The one database writer, shared by the store (agent records) and the ledger: a single writer with group
// commit. Operations submitted while a batch is being committed queue up and go into the next transaction
// together, so N concurrent writes cost one fsync (SQLite) or one BEGIN/COMMIT round trip (PostgreSQL) instead of
// N, and a reconnect storm of 1000 agents costs a handful of commits. Batches run one at a time.
//
// Limits: at most `max_batch_ops` operations per transaction (bounds its size and how long one commit holds the
// writer) and at most MAX_QUEUED_OPS waiting; beyond that submit() fails at once with WriterBusyError (→ 503
// busy) instead of letting the queue grow without bound. After close(), submit() fails with WriterClosedError.
//
// The failure rule (the same for every user of the writer):
//   1. An error the user's `retryable` classifies as a transient conflict (PostgreSQL serialization failure or
//      deadlock, SQLITE_BUSY, and whatever the user adds) reruns the whole batch after a jittered exponential
//      backoff, up to MAX_BATCH_ATTEMPTS attempts.
//   2. An unavailable database (faults.ts: disk full, PostgreSQL down or unreachable) fails every operation of
//      the batch with that error at once: each would wait for the same fault alone (a connect timeout each).
//   3. Any other error, or a conflict that outlived its attempts, reruns each operation of the batch alone
//      (each under rules 1 and 2), so one bad operation fails only itself; a batch of one fails with its error.
import { setTimeout as sleep } from 'node:timers/promises';
import { isStoreUnavailable } from './faults.js';

/** Operations waiting for the writer; beyond this, submit() fails fast. */
export const MAX_QUEUED_OPS = 65_536;
/** Attempts for a batch that keeps hitting retryable conflicts before it is split (rule 3). */
export const MAX_BATCH_ATTEMPTS = 12;
const BACKOFF_BASE_MS = 2;
const BACKOFF_CAP_MS = 200;

export class WriterBusyError extends Error {
  constructor(writer: string) {
    super(`${writer} write queue is full (${MAX_QUEUED_OPS} operations)`);
    this.name = 'WriterBusyError';
  }
}

export class WriterClosedError extends Error {
  constructor(writer: string) {
    super(`${writer} is closed`);
    this.name = 'WriterClosedError';
  }
}

// 40001 serialization_failure, 40P01 deadlock_detected.
const RETRYABLE_PG_CODES = new Set(['40001', '40P01']);

/** Transient conflicts every writer retries: an error marked `retryable`, a PostgreSQL serialization failure or
 *  deadlock, SQLITE_BUSY. */
export function isConflict(err: unknown): boolean {
  if (typeof err !== 'object' || err === null) return false;
  if ((err as { retryable?: unknown }).retryable === true) return true;
  const code = (err as { code?: unknown }).code;
  return typeof code === 'string' && (RETRYABLE_PG_CODES.has(code) || code === 'SQLITE_BUSY');
}

export interface WriterOptions<Op> {
  /** Names the writer in errors ("ledger", "store"). */
  readonly name: string;
  /** Runs `ops` in ONE transaction and returns their results in order; throws, with nothing committed, on any error. */
  readonly commit: (ops: readonly Op[]) => Promise<readonly unknown[]>;
  readonly max_batch_ops: number;
  /** Rule 1's classification; isConflict when not given. */
  readonly retryable?: (err: unknown) => boolean;
}

export interface WriterStats {
  /** Batches taken from the queue (each then commits whole, fails whole by rule 2, or is split by rule 3). */
  groups: number;
  /** Committed transactions. */
  batches: number;
  /** Committed operations. */
  ops: number;
  /** Batch attempts rerun after a retryable conflict. */
  retries: number;
}

interface Queued<Op> {
  op: Op;
  resolve: (v: unknown) => void;
  reject: (e: unknown) => void;
}

export class GroupWriter<Op> {
  readonly #queue: Queued<Op>[] = [];
  #running = false;
  #closed = false;
  #idle: Array<() => void> = [];
  readonly #retryable: (err: unknown) => boolean;
  readonly stats: WriterStats = { groups: 0, batches: 0, ops: 0, retries: 0 };
  /** Called after each committed transaction with its size and how long it took (metrics). */
  onCommit: ((ops: number, duration_ms: number) => void) | undefined;

  constructor(private readonly opts: WriterOptions<Op>) {
    if (!Number.isSafeInteger(opts.max_batch_ops) || opts.max_batch_ops < 1)
      throw new RangeError(`max_batch_ops must be a positive integer, got ${opts.max_batch_ops}`);
    this.#retryable = opts.retryable ?? isConflict;
  }

  get queued(): number {
    return this.#queue.length;
  }

  /** Resolves with the operation's result once its transaction committed. T is what `commit` returns for `op`. */
  submit<T>(op: Op): Promise<T> {
    if (this.#closed) return Promise.reject(new WriterClosedError(this.opts.name));
    if (this.#queue.length >= MAX_QUEUED_OPS) return Promise.reject(new WriterBusyError(this.opts.name));
    return new Promise<T>((resolve, reject) => {
      this.#queue.push({ op, resolve: resolve as (v: unknown) => void, reject });
      if (!this.#running) {
        this.#running = true;
        // Let the rest of this event-loop turn queue its operations too.
        setImmediate(() => void this.#drain());
      }
    });
  }

  /** Stops accepting operations and waits for the queued ones to commit (or fail). Idempotent. */
  async close(): Promise<void> {
    this.#closed = true;
    if (!this.#running) return;
    await new Promise<void>((resolve) => this.#idle.push(resolve));
  }

  async #drain(): Promise<void> {
    try {
      while (this.#queue.length > 0) {
        const batch = this.#queue.splice(0, this.opts.max_batch_ops);
        this.stats.groups += 1;
        await this.#commitBatch(batch);
      }
    } finally {
      this.#running = false;
      for (const resolve of this.#idle.splice(0)) resolve();
    }
  }

  async #commitBatch(batch: Queued<Op>[]): Promise<void> {
    try {
      const results = await this.#withRetry(batch.map((q) => q.op));
      batch.forEach((q, i) => q.resolve(results[i]));
      return;
    } catch (err) {
      if (batch.length === 1 || isStoreUnavailable(err)) {
        for (const q of batch) q.reject(err);
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

  async #withRetry(ops: Op[]): Promise<readonly unknown[]> {
    for (let attempt = 1; ; attempt++) {
      const start_ms = performance.now();
      try {
        const results = await this.opts.commit(ops);
        this.stats.batches += 1;
        this.stats.ops += ops.length;
        this.onCommit?.(ops.length, performance.now() - start_ms);
        return results;
      } catch (err) {
        if (!this.#retryable(err) || attempt >= MAX_BATCH_ATTEMPTS) throw err;
        this.stats.retries += 1;
        const cap = Math.min(BACKOFF_CAP_MS, BACKOFF_BASE_MS * 2 ** attempt);
        await sleep(Math.random() * cap);
      }
    }
  }
}
