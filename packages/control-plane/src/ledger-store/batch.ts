// One group-commit batch = one database transaction: load the rows the batch's operations need (locking them,
// in one global order, on PostgreSQL), run the pure engine on that working set, write back what changed.
//
// The engine does the isolating a savepoint per request would do: every linked chain is applied to a
// copy-on-write overlay and merged only when all of it succeeded, so one request's failure never leaks into
// another's, and nothing is written for it (except, on purpose, its id into ledger_failed). Each operation's
// result is computed inside the transaction and handed out only after COMMIT returns.
//
// Lock order on PostgreSQL (a total order, so concurrent replicas cannot deadlock): accounts by id, then
// pending rows by id, then the audit head. Rows read before locking are immutable journal rows only.
import { sql, type Selectable } from 'kysely';
import { checkCommit, countersOf, LedgerInvariantError } from '../ledger/commit-check.js';
import { GuardedState, type Declaration } from '../ledger/declared.js';
import { expirePending } from '../ledger/engine.js';
import type { Account, JournalEntry, LedgerState, PendingStatus, TransferResult } from '../ledger/types.js';
import type { Db, Tx } from '../store/database.js';
import type { StoreDialect } from '../store/migrations.js';
import { extendChain, type AuditEntry } from './audit.js';
import {
  insertAudit,
  insertFailed,
  insertJournal,
  selectAccounts,
  selectFailed,
  selectJournal,
  selectPending,
  upsertAccounts,
  upsertPending,
} from './bulk.js';
import {
  accountFromRow,
  accountPayload,
  accountToRow,
  entryFromJournalRow,
  failedPayload,
  identityPayload,
  journalPayload,
  journalRowFromEntry,
  type AccountRow,
} from './rows.js';
import type { EeAccountsTable, EeIdempotencyTable } from './schema.js';

export type LedgerDb = Db;

/** Rows an operation writes next to its transfers, in the same transaction. */
export interface ExtraWrites {
  identities: Selectable<EeAccountsTable>[];
  idempotency: EeIdempotencyTable[];
  /** Other features' rows (e.g. the market's), written after the ledger rows, before COMMIT. */
  after: ((tx: Tx) => Promise<void>)[];
}

/** What `prepare` adds to an operation's working set after reading inside the transaction. */
export interface PreparedNeeds {
  accounts?: readonly string[];
  transfers?: readonly string[];
}

export interface ApplyContext {
  /** The batch's working set: only the rows the batch's operations declared, plus due expiries. */
  readonly state: LedgerState;
  readonly now_ms: number;
  readonly writes: ExtraWrites;
}

/** A unit of ledger work. `apply` must be synchronous, deterministic and must not throw for bad input. */
export interface LedgerOp<T> {
  /** Ledger account ids the operation may read or change (loaded, and locked on PostgreSQL). */
  readonly accounts: readonly string[];
  /** Transfer ids it may create or resolve (its own ids and every pending_id). */
  readonly transfers: readonly string[];
  /**
   * Optional: runs inside the transaction before the ledger rows are loaded, to read (and on PostgreSQL lock,
   * with SELECT … FOR UPDATE) another feature's rows the operation depends on — e.g. a node's status, or the
   * open locks to void — and to add what it found to the working set. Runs again if the batch is retried.
   * `now_ms` is the batch's clock, the same `apply` gets (for ids that name the current period).
   */
  prepare?(tx: Tx, dialect: StoreDialect, now_ms: number): Promise<PreparedNeeds | void>;
  apply(ctx: ApplyContext): T;
}

/** Expired locks released per batch; the rest go in the next batches (each batch runs the sweep first). */
export const MAX_EXPIRIES_PER_BATCH = 256;

const counterKey = (a: Account) => `${a.debits_pending}|${a.debits_posted}|${a.credits_pending}|${a.credits_posted}`;

interface WorkingSet {
  state: LedgerState;
  /** Checks each operation's reads and writes against its declaration (declared.ts). */
  guard: GuardedState;
  /** Per operation, in order: what it declared, with the accounts of the pending transfers it named. */
  declared: Declaration[];
  /** Counters as loaded, to find what changed. */
  loadedCounters: Map<string, string>;
  /** The same counters, for the commit's invariant check. */
  loadedAccounts: Map<string, ReturnType<typeof countersOf>>;
  loadedPending: Map<string, PendingStatus>;
  loadedFailed: Set<string>;
  head: { seq: number; hash: string };
}

/** Thrown when a concurrent writer changed what the batch must lock; the writer retries the batch. */
export class BatchConflictError extends Error {
  readonly retryable = true;
}

async function load(
  tx: Tx,
  dialect: StoreDialect,
  ops: readonly LedgerOp<unknown>[],
  now_ms: number,
): Promise<WorkingSet> {
  const lock = dialect === 'postgres';
  const due = await tx
    .selectFrom('ledger_pending')
    .select('id')
    .where('status', '=', 'pending')
    .where('expires_at_ms', '<=', now_ms)
    .orderBy('expires_at_ms')
    .limit(MAX_EXPIRIES_PER_BATCH)
    .execute();

  const accountIds = new Set<string>();
  const transferIds = new Set<string>(due.map((r) => r.id));
  const declared: { accounts: Set<string>; transfers: Set<string> }[] = [];
  /** transfer id → the declarations naming it. */
  const namedBy = new Map<string, { accounts: Set<string> }[]>();
  for (const op of ops) {
    const more = op.prepare ? await op.prepare(tx, dialect, now_ms) : undefined;
    const d = {
      accounts: new Set([...op.accounts, ...(more?.accounts ?? [])]),
      transfers: new Set([...op.transfers, ...(more?.transfers ?? [])]),
    };
    declared.push(d);
    for (const id of d.accounts) accountIds.add(id);
    for (const id of d.transfers) {
      transferIds.add(id);
      const named = namedBy.get(id);
      if (named) named.push(d);
      else namedBy.set(id, [d]);
    }
  }
  // Journal rows are immutable, so reading them before locking is safe; their accounts join the lock set (a
  // pending transfer being resolved or expired needs both of its accounts in the working set).
  const transferList = [...transferIds];
  const journal = await selectJournal(tx, dialect, transferList);
  for (const r of journal) {
    accountIds.add(r.debit_account);
    accountIds.add(r.credit_account);
    // An operation naming a transfer may touch that transfer's accounts (resolving a lock needs both).
    if (r.transfer_id === null) continue;
    for (const d of namedBy.get(r.transfer_id) ?? []) {
      d.accounts.add(r.debit_account);
      d.accounts.add(r.credit_account);
    }
  }

  const guard = new GuardedState();
  const state = guard.state;
  const loadedCounters = new Map<string, string>();
  const loadedAccounts = new Map<string, ReturnType<typeof countersOf>>();
  for (const row of await selectAccounts(tx, dialect, [...accountIds].sort())) {
    const account = accountFromRow(row);
    state.accounts.set(account.id, account);
    loadedCounters.set(account.id, counterKey(account));
    loadedAccounts.set(account.id, countersOf(account));
  }
  const pendingIds: string[] = [];
  for (const row of journal) {
    const entry = entryFromJournalRow(row);
    if (entry.kind !== 'transfer') continue;
    state.transfers.set(entry.transfer.id, entry.transfer);
    if (entry.transfer.flags.pending) pendingIds.push(entry.transfer.id);
  }
  const loadedPending = new Map<string, PendingStatus>();
  for (const r of await selectPending(tx, dialect, pendingIds.sort())) {
    state.pending.set(r.id, r.status);
    loadedPending.set(r.id, r.status);
  }
  const head = await tx
    .selectFrom('ledger_audit_head')
    .select(['seq', 'hash'])
    .where('id', '=', 1)
    .$if(lock, (q) => q.forUpdate())
    .executeTakeFirstOrThrow();
  // What happened to our ids is read only now: the head lock serialises every batch, so READ COMMITTED sees
  // every batch committed before ours. An id of ours committed by another replica since the unlocked read
  // above (its accounts may be outside our lock set, its pending row unlocked) means the working set is
  // stale: retry. The row locks do not cover a replica that used one of our ids with other accounts (a retry
  // with a different body): reading failed ids earlier let it record the id as failed while another applied
  // it, or record it failed twice.
  if (lock && transferIds.size > 0) {
    const now = await selectJournal(tx, dialect, transferList);
    if (now.length !== journal.length) throw new BatchConflictError('an id of this batch was committed meanwhile');
  }
  const loadedFailed = new Set<string>();
  for (const r of await selectFailed(tx, dialect, transferList)) {
    state.failed.set(r.id, r.result as TransferResult);
    loadedFailed.add(r.id);
  }
  return {
    state,
    guard,
    declared,
    loadedCounters,
    loadedAccounts,
    loadedPending,
    loadedFailed,
    head: { seq: Number(head.seq), hash: head.hash },
  };
}

async function persist(
  tx: Tx,
  dialect: StoreDialect,
  ws: WorkingSet,
  writes: ExtraWrites,
  now_ms: number,
): Promise<void> {
  const { state } = ws;
  const audit: AuditEntry[] = [];

  const accountRows: AccountRow[] = [];
  for (const [id, account] of state.accounts) {
    const before = ws.loadedCounters.get(id);
    if (before === counterKey(account)) continue;
    const row = accountToRow(account, now_ms);
    if (before === undefined) audit.push({ kind: 'account', payload: accountPayload(row) });
    accountRows.push(row);
  }
  await upsertAccounts(tx, dialect, accountRows);

  const journalRows = state.journal.map(journalRowFromEntry);
  for (const row of journalRows) audit.push({ kind: row.kind, payload: journalPayload(row) });
  await insertJournal(tx, dialect, journalRows);

  const pendingRows = [];
  for (const [id, status] of state.pending) {
    if (ws.loadedPending.get(id) === status) continue;
    pendingRows.push({ id, status, expires_at_ms: state.transfers.get(id)?.expires_at_ms ?? null });
  }
  await upsertPending(tx, dialect, pendingRows);

  const failedRows = [];
  for (const [id, result] of state.failed) {
    if (ws.loadedFailed.has(id)) continue;
    const row = { id, result, timestamp_ms: now_ms };
    failedRows.push(row);
    audit.push({ kind: 'failed', payload: failedPayload(row) });
  }
  await insertFailed(tx, dialect, failedRows);

  for (const identity of writes.identities) audit.push({ kind: 'identity', payload: identityPayload(identity) });
  if (writes.identities.length > 0) await tx.insertInto('ee_accounts').values(writes.identities).execute();
  if (writes.idempotency.length > 0) {
    await tx
      .insertInto('ee_idempotency')
      .values(writes.idempotency)
      .onConflict((oc) => oc.columns(['principal', 'key']).doNothing())
      .execute();
  }
  for (const write of writes.after) await write(tx);

  if (audit.length === 0) return;
  const chained = extendChain(ws.head, audit, now_ms);
  await insertAudit(tx, dialect, chained.rows);
  await tx
    .updateTable('ledger_audit_head')
    .set({ seq: chained.head.seq, hash: chained.head.hash })
    .where('id', '=', 1)
    .execute();
}

async function inTransaction<T>(db: LedgerDb, dialect: StoreDialect, fn: (tx: Tx) => Promise<T>): Promise<T> {
  if (dialect === 'postgres') return db.transaction().execute(fn);
  // SQLite: BEGIN IMMEDIATE takes the write lock before the first read, so what the batch reads is what it
  // overwrites even if another process (a second control plane by mistake) shares the file.
  return db.connection().execute(async (conn) => {
    await sql`BEGIN IMMEDIATE`.execute(conn);
    try {
      const result = await fn(conn);
      await sql`COMMIT`.execute(conn);
      return result;
    } catch (err) {
      await sql`ROLLBACK`.execute(conn).catch(() => undefined);
      throw err;
    }
  });
}

/** A journal entry a batch committed, and the index of the operation that made it (-1: the expiry sweep). */
export interface CommittedEntry {
  readonly entry: JournalEntry;
  readonly op: number;
}

/**
 * Runs `ops` in one transaction; returns their results in order. Throws (nothing committed) on any error.
 * `committed` hears the batch's journal entries once COMMIT has returned (never for a rolled-back attempt).
 */
export async function runBatch(
  db: LedgerDb,
  dialect: StoreDialect,
  ops: readonly LedgerOp<unknown>[],
  now: () => number,
  committed?: (entries: readonly CommittedEntry[]) => void,
): Promise<unknown[]> {
  const entries: CommittedEntry[] = [];
  const results = await inTransaction(db, dialect, async (tx) => {
    const now_ms = now();
    const ws = await load(tx, dialect, ops, now_ms);
    // Due locks are released before anything else runs, so no operation in the batch sees them as held.
    expirePending(ws.state, now_ms);
    const writes: ExtraWrites = { identities: [], idempotency: [], after: [] };
    const journal = ws.state.journal;
    for (const entry of journal) entries.push({ entry, op: -1 });
    const results = ops.map((op, i) => {
      const result = ws.guard.within(ws.declared[i]!, () => op.apply({ state: ws.state, now_ms, writes }));
      for (let j = entries.length; j < journal.length; j++) entries.push({ entry: journal[j]!, op: i });
      return result;
    });
    const violations = checkCommit(ws.loadedAccounts, ws.state.accounts.values(), ws.state.journal, (id) =>
      ws.state.transfers.get(id),
    );
    if (violations.length > 0) throw new LedgerInvariantError(violations);
    await persist(tx, dialect, ws, writes, now_ms);
    return results;
  });
  try {
    committed?.(entries);
  } catch (err) {
    // The batch IS committed: an observer's failure must not reach the writer, which would rerun it.
    process.emitWarning(`ledger commit observer failed: ${String(err)}`, 'LedgerWarning');
  }
  return results;
}
