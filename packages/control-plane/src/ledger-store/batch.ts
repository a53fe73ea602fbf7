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
import { sql, type Kysely, type Selectable, type Transaction } from 'kysely';
import { createLedgerState, expirePending } from '../ledger/engine.js';
import type { Account, LedgerState, PendingStatus } from '../ledger/types.js';
import type { StoreDialect } from '../store/migrations.js';
import { extendChain, type AuditEntry } from './audit.js';
import {
  accountFromRow, accountPayload, accountToRow, entryFromJournalRow, failedPayload, identityPayload,
  journalPayload, journalRowFromEntry, type JournalRow,
} from './rows.js';
import type { EeAccountsTable, EeIdempotencyTable, LedgerDatabase } from './schema.js';

export type LedgerDb = Kysely<LedgerDatabase>;
type Tx = Transaction<LedgerDatabase>;

/** Rows an operation writes next to its transfers, in the same transaction. */
export interface ExtraWrites {
  identities: Selectable<EeAccountsTable>[];
  idempotency: EeIdempotencyTable[];
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
  apply(ctx: ApplyContext): T;
}

/** Expired locks released per batch; the rest go in the next batches (each batch runs the sweep first). */
export const MAX_EXPIRIES_PER_BATCH = 256;
/** Rows per multi-row INSERT: 13 columns x 400 stays far below SQLite's and PostgreSQL's parameter limits. */
const INSERT_CHUNK_ROWS = 400;
const SELECT_CHUNK_IDS = 900;

function chunks<T>(items: readonly T[], size: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
}

const counterKey = (a: Account) => `${a.debits_pending}|${a.debits_posted}|${a.credits_pending}|${a.credits_posted}`;

interface WorkingSet {
  state: LedgerState;
  /** Counters as loaded, to find what changed. */
  loadedCounters: Map<string, string>;
  loadedPending: Map<string, PendingStatus>;
  loadedFailed: Set<string>;
  head: { seq: number; hash: string };
}

async function selectJournal(tx: Tx, ids: readonly string[]): Promise<JournalRow[]> {
  const rows: JournalRow[] = [];
  for (const part of chunks(ids, SELECT_CHUNK_IDS)) {
    rows.push(...await tx.selectFrom('ledger_journal')
      .select(['kind', 'transfer_id', 'debit_account', 'credit_account', 'amount', 'requested_amount', 'flags',
        'pending_id', 'timeout_ms', 'expires_at_ms', 'memo', 'reference', 'timestamp_ms'])
      .where('transfer_id', 'in', part).execute());
  }
  return rows;
}

/** Thrown when a concurrent writer changed what the batch must lock; the writer retries the batch. */
export class BatchConflictError extends Error {
  readonly retryable = true;
}

async function load(tx: Tx, dialect: StoreDialect, ops: readonly LedgerOp<unknown>[], now_ms: number): Promise<WorkingSet> {
  const lock = dialect === 'postgres';
  const due = await tx.selectFrom('ledger_pending').select('id')
    .where('status', '=', 'pending').where('expires_at_ms', '<=', now_ms)
    .orderBy('expires_at_ms').limit(MAX_EXPIRIES_PER_BATCH).execute();

  const accountIds = new Set<string>();
  const transferIds = new Set<string>(due.map((r) => r.id));
  for (const op of ops) {
    for (const id of op.accounts) accountIds.add(id);
    for (const id of op.transfers) transferIds.add(id);
  }
  // Journal rows are immutable, so reading them before locking is safe; their accounts join the lock set (a
  // pending transfer being resolved or expired needs both of its accounts in the working set).
  let journal = transferIds.size > 0 ? await selectJournal(tx, [...transferIds]) : [];
  for (const r of journal) {
    accountIds.add(r.debit_account);
    accountIds.add(r.credit_account);
  }

  const state = createLedgerState();
  const loadedCounters = new Map<string, string>();
  for (const part of chunks([...accountIds].sort(), SELECT_CHUNK_IDS)) {
    const rows = await tx.selectFrom('ledger_accounts').selectAll().where('id', 'in', part).orderBy('id')
      .$if(lock, (q) => q.forUpdate()).execute();
    for (const row of rows) {
      const account = accountFromRow(row);
      state.accounts.set(account.id, account);
      loadedCounters.set(account.id, counterKey(account));
    }
  }
  if (lock && transferIds.size > 0) {
    // Another replica may have committed one of our ids meanwhile (READ COMMITTED sees it now).
    journal = await selectJournal(tx, [...transferIds]);
    for (const r of journal) {
      if (!accountIds.has(r.debit_account) || !accountIds.has(r.credit_account)) throw new BatchConflictError('journal changed while locking');
    }
  }

  const pendingIds: string[] = [];
  for (const row of journal) {
    const entry = entryFromJournalRow(row);
    if (entry.kind !== 'transfer') continue;
    state.transfers.set(entry.transfer.id, entry.transfer);
    if (entry.transfer.flags.pending) pendingIds.push(entry.transfer.id);
  }
  const loadedPending = new Map<string, PendingStatus>();
  for (const part of chunks(pendingIds.sort(), SELECT_CHUNK_IDS)) {
    const rows = await tx.selectFrom('ledger_pending').select(['id', 'status']).where('id', 'in', part).orderBy('id')
      .$if(lock, (q) => q.forUpdate()).execute();
    for (const r of rows) {
      state.pending.set(r.id, r.status);
      loadedPending.set(r.id, r.status);
    }
  }
  const head = await tx.selectFrom('ledger_audit_head').select(['seq', 'hash']).where('id', '=', 1)
    .$if(lock, (q) => q.forUpdate()).executeTakeFirstOrThrow();
  // What happened to our ids is read only now: the head lock serialises every batch, so READ COMMITTED sees
  // every batch committed before ours. The row locks above do not cover a replica that used one of our ids
  // with other accounts (a retry with a different body): reading earlier let it record the id as failed while
  // another applied it, or record it failed twice.
  if (lock && transferIds.size > 0) {
    const now = await selectJournal(tx, [...transferIds]);
    if (now.length !== journal.length) throw new BatchConflictError('an id of this batch was committed meanwhile');
  }
  const loadedFailed = new Set<string>();
  for (const part of chunks([...transferIds], SELECT_CHUNK_IDS)) {
    for (const r of await tx.selectFrom('ledger_failed').select(['id', 'result']).where('id', 'in', part).execute()) {
      state.failed.set(r.id, r.result as never);
      loadedFailed.add(r.id);
    }
  }
  return { state, loadedCounters, loadedPending, loadedFailed, head: { seq: Number(head.seq), hash: head.hash } };
}

async function persist(tx: Tx, ws: WorkingSet, writes: ExtraWrites, now_ms: number): Promise<void> {
  const { state } = ws;
  const audit: AuditEntry[] = [];

  const accountRows = [];
  for (const [id, account] of state.accounts) {
    const before = ws.loadedCounters.get(id);
    if (before === counterKey(account)) continue;
    const row = accountToRow(account, now_ms);
    if (before === undefined) audit.push({ kind: 'account', payload: accountPayload(row) });
    accountRows.push(row);
  }
  for (const part of chunks(accountRows, INSERT_CHUNK_ROWS)) {
    await tx.insertInto('ledger_accounts').values(part).onConflict((oc) => oc.column('id').doUpdateSet((eb) => ({
      debits_pending: eb.ref('excluded.debits_pending'),
      debits_posted: eb.ref('excluded.debits_posted'),
      credits_pending: eb.ref('excluded.credits_pending'),
      credits_posted: eb.ref('excluded.credits_posted'),
    }))).execute();
  }

  const journalRows = state.journal.map(journalRowFromEntry);
  for (const row of journalRows) audit.push({ kind: row.kind, payload: journalPayload(row) });
  for (const part of chunks(journalRows, INSERT_CHUNK_ROWS)) await tx.insertInto('ledger_journal').values(part).execute();

  const pendingRows = [];
  for (const [id, status] of state.pending) {
    if (ws.loadedPending.get(id) === status) continue;
    const expires = state.transfers.get(id)?.expires_at_ms;
    pendingRows.push({ id, status, expires_at_ms: expires ?? null });
  }
  for (const part of chunks(pendingRows, INSERT_CHUNK_ROWS)) {
    await tx.insertInto('ledger_pending').values(part)
      .onConflict((oc) => oc.column('id').doUpdateSet((eb) => ({ status: eb.ref('excluded.status') }))).execute();
  }

  const failedRows = [];
  for (const [id, result] of state.failed) {
    if (ws.loadedFailed.has(id)) continue;
    const row = { id, result, timestamp_ms: now_ms };
    failedRows.push(row);
    audit.push({ kind: 'failed', payload: failedPayload(row) });
  }
  for (const part of chunks(failedRows, INSERT_CHUNK_ROWS)) {
    await tx.insertInto('ledger_failed').values(part).onConflict((oc) => oc.column('id').doNothing()).execute();
  }

  for (const identity of writes.identities) audit.push({ kind: 'identity', payload: identityPayload(identity) });
  if (writes.identities.length > 0) await tx.insertInto('ee_accounts').values(writes.identities).execute();
  for (const part of chunks(writes.idempotency, INSERT_CHUNK_ROWS)) {
    await tx.insertInto('ee_idempotency').values(part).onConflict((oc) => oc.columns(['principal', 'key']).doNothing()).execute();
  }

  if (audit.length === 0) return;
  const chained = extendChain(ws.head, audit, now_ms);
  for (const part of chunks(chained.rows, INSERT_CHUNK_ROWS)) await tx.insertInto('ledger_audit').values(part).execute();
  await tx.updateTable('ledger_audit_head').set({ seq: chained.head.seq, hash: chained.head.hash }).where('id', '=', 1).execute();
}

async function inTransaction<T>(db: LedgerDb, dialect: StoreDialect, fn: (tx: Tx) => Promise<T>): Promise<T> {
  if (dialect === 'postgres') return db.transaction().execute(fn);
  // SQLite: BEGIN IMMEDIATE takes the write lock before the first read, so what the batch reads is what it
  // overwrites even if another process (a second control plane by mistake) shares the file.
  return db.connection().execute(async (conn) => {
    await sql`BEGIN IMMEDIATE`.execute(conn);
    try {
      const result = await fn(conn as unknown as Tx);
      await sql`COMMIT`.execute(conn);
      return result;
    } catch (err) {
      await sql`ROLLBACK`.execute(conn).catch(() => undefined);
      throw err;
    }
  });
}

/** Runs `ops` in one transaction; returns their results in order. Throws (nothing committed) on any error. */
export async function runBatch(db: LedgerDb, dialect: StoreDialect, ops: readonly LedgerOp<unknown>[], now: () => number): Promise<unknown[]> {
  return inTransaction(db, dialect, async (tx) => {
    const now_ms = now();
    const ws = await load(tx, dialect, ops, now_ms);
    // Due locks are released before anything else runs, so no operation in the batch sees them as held.
    expirePending(ws.state, now_ms);
    const writes: ExtraWrites = { identities: [], idempotency: [] };
    const results = ops.map((op) => op.apply({ state: ws.state, now_ms, writes }));
    await persist(tx, ws, writes, now_ms);
    return results;
  });
}
