// `ee ledger verify`: re-derives the ledger from its append-only history and compares it with what is stored.
// Read-only, in one consistent snapshot (PostgreSQL REPEATABLE READ READ ONLY; a SQLite read transaction), so it
// can run against a live control plane. Memory is bounded by the number of accounts and locks: journal, audit,
// pending and failed rows are streamed in pages.
//
// How the audit log is matched to the tables: the writer appends, per batch, the journal rows and their audit
// rows in the same order, and batches commit one at a time (SQLite's single writer; on PostgreSQL every batch
// holds the audit head's row lock until COMMIT). So the audit rows of kind transfer/expiry, in audit seq order,
// pair one to one with journal rows in journal seq order: one merged pass checks both. Accounts are matched in
// memory; failed ids and identities are looked up per page and counted.
import { sql, type Kysely } from 'kysely';
import { JournalFold, type Counters } from '../ledger/fold.js';
import type { Account, PendingStatus } from '../ledger/types.js';
import type { StoreDialect } from '../store/migrations.js';
import { auditHash } from './audit.js';
import { GENESIS_HASH } from './migrations.js';
import {
  accountFromRow,
  accountPayload,
  big,
  entryFromJournalRow,
  failedPayload,
  identityPayload,
  journalPayload,
  type AccountRow,
  type JournalRow,
} from './rows.js';

/** Rows fetched per query while streaming a table. */
export const VERIFY_PAGE_ROWS = 5000;
/** Discrepancies listed in a report; beyond this they are only counted (one bad row can cascade). */
export const MAX_REPORTED_ERRORS = 500;
/** Ids per `IN (...)` lookup, below SQLite's parameter limit. */
const LOOKUP_CHUNK_IDS = 900;

export interface LedgerVerifyReport {
  ok: boolean;
  errors: string[];
  accounts: number;
  journal_rows: number;
  /** Locks still pending. */
  pending_open: number;
  audit_rows: number;
  /** The stored audit head; compare its hash with an earlier run's to detect a rewritten history. */
  head: { seq: number; hash: string };
  /** Sums of the stored account counters, micro-USD as decimal strings. */
  totals: { debits_posted: string; credits_posted: string; debits_pending: string; credits_pending: string };
  checked_at_ms: number;
}

const LEDGER_TABLES = [
  'ledger_accounts',
  'ledger_journal',
  'ledger_pending',
  'ledger_failed',
  'ledger_audit',
  'ledger_audit_head',
  'ee_accounts',
];

/** The database has no (complete) ledger schema: nothing to verify. */
export class LedgerMissingError extends Error {
  constructor(readonly missing: string[]) {
    super(`no ledger in this database (missing table${missing.length > 1 ? 's' : ''} ${missing.join(', ')})`);
    this.name = 'LedgerMissingError';
  }
}

class ErrorList {
  readonly shown: string[] = [];
  hidden = 0;
  readonly push = (message: string): void => {
    if (this.shown.length < MAX_REPORTED_ERRORS) this.shown.push(message);
    else this.hidden += 1;
  };
  list(): string[] {
    return this.hidden === 0 ? this.shown : [...this.shown, `... and ${this.hidden} more discrepancies`];
  }
}

// The verifier walks tables by name, and must also read a database whose schema is older or damaged: its
// queries are untyped on purpose (the rows are checked field by field instead).
// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Db = Kysely<any>;

async function inSnapshot<T>(db: Db, dialect: StoreDialect, fn: (conn: Db) => Promise<T>): Promise<T> {
  return db.connection().execute(async (conn) => {
    // SQLite: a deferred BEGIN takes its read snapshot at the first SELECT and keeps it until the end (WAL).
    await sql.raw(dialect === 'postgres' ? 'BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY' : 'BEGIN').execute(conn);
    try {
      return await fn(conn);
    } finally {
      await sql`ROLLBACK`.execute(conn).catch(() => undefined);
    }
  });
}

async function missingTables(conn: Db, dialect: StoreDialect): Promise<string[]> {
  // pg_tables, not information_schema.tables: the latter is a slow view (tens of ms).
  const rows =
    dialect === 'sqlite'
      ? (await sql<{ name: string }>`SELECT name FROM sqlite_master WHERE type = 'table'`.execute(conn)).rows
      : (
          await sql<{
            name: string;
          }>`SELECT tablename AS name FROM pg_catalog.pg_tables WHERE schemaname = current_schema()`.execute(conn)
        ).rows;
  const present = new Set(rows.map((r) => r.name));
  return LEDGER_TABLES.filter((t) => !present.has(t));
}

/** Streams `table` ordered by its unique `key` column, VERIFY_PAGE_ROWS at a time (keyset pagination). */
// eslint-disable-next-line @typescript-eslint/no-explicit-any -- rows of a table named at run time (see Db)
async function* streamRows<R extends Record<string, any>>(conn: Db, table: string, key: string): AsyncGenerator<R> {
  let after: unknown;
  for (;;) {
    const page = (await conn
      .selectFrom(table)
      .selectAll()
      .$if(after !== undefined, (q) => q.where(key, '>', after))
      .orderBy(key)
      .limit(VERIFY_PAGE_ROWS)
      .execute()) as R[];
    yield* page;
    if (page.length < VERIFY_PAGE_ROWS) return;
    after = page[page.length - 1]![key];
  }
}

async function count(conn: Db, table: string, where?: [string, string]): Promise<number> {
  const row = await conn
    .selectFrom(table)
    .select((eb) => eb.fn.countAll().as('n'))
    .$if(where !== undefined, (q) => q.where(where![0], '=', where![1]))
    .executeTakeFirstOrThrow();
  return Number(row.n);
}

interface StoredAccount {
  account: Account;
  row: Pick<AccountRow, 'id' | 'flags' | 'created_ms'>;
  audited: boolean;
}

/** Audit rows keyed by an id in another table (failed ids, identities), checked a page at a time. */
interface KeyedKind {
  table: 'ledger_failed' | 'ee_accounts';
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- a row of `table`, read untyped (see Db)
  payload: (row: any) => string;
  waiting: { seq: number; id: string; payload: string }[];
  audit_rows: number;
}

function payloadId(payload: string): string | undefined {
  try {
    const parsed: unknown = JSON.parse(payload);
    return Array.isArray(parsed) && typeof parsed[0] === 'string' ? parsed[0] : undefined;
  } catch {
    return undefined;
  }
}

async function checkKeyed(conn: Db, kind: string, k: KeyedKind, report: (m: string) => void): Promise<void> {
  for (let i = 0; i < k.waiting.length; i += LOOKUP_CHUNK_IDS) {
    const part = k.waiting.slice(i, i + LOOKUP_CHUNK_IDS);
    const rows = await conn
      .selectFrom(k.table)
      .selectAll()
      .where(
        'id',
        'in',
        part.map((w) => w.id),
      )
      .execute();
    const byId = new Map(rows.map((r) => [r.id as string, r]));
    for (const w of part) {
      const row = byId.get(w.id);
      if (!row) report(`audit seq ${w.seq}: ${kind} ${w.id} is not in ${k.table}`);
      else if (k.payload(row) !== w.payload)
        report(`audit seq ${w.seq}: ${kind} ${w.id} differs from its ${k.table} row`);
    }
  }
  k.waiting.length = 0;
}

/** Verifies the ledger stored in `db` (read-only). Throws LedgerMissingError when there is no ledger schema. */
export async function verifyLedger(
  db: Db,
  dialect: StoreDialect,
  now: () => number = Date.now,
): Promise<LedgerVerifyReport> {
  return inSnapshot(db, dialect, async (conn) => {
    const missing = await missingTables(conn, dialect);
    if (missing.length > 0) throw new LedgerMissingError(missing);
    const errors = new ErrorList();
    const report = errors.push;

    const accounts = new Map<string, StoredAccount>();
    for await (const row of streamRows<AccountRow>(conn, 'ledger_accounts', 'id')) {
      accounts.set(row.id, {
        account: accountFromRow(row),
        row: { id: row.id, flags: row.flags, created_ms: row.created_ms },
        audited: false,
      });
    }
    const fold = new JournalFold((id) => accounts.get(id)?.account.flags, report);

    // The journal is consumed in step with the audit log's transfer/expiry rows.
    const journal = streamRows<JournalRow & { seq: number }>(conn, 'ledger_journal', 'seq');
    let journalRows = 0;
    const nextJournal = async (): Promise<(JournalRow & { seq: number }) | undefined> => {
      const next = await journal.next();
      if (next.done) return undefined;
      journalRows += 1;
      fold.apply(entryFromJournalRow(next.value), `journal seq ${next.value.seq}`);
      return next.value;
    };

    const keyed: Record<'failed' | 'identity', KeyedKind> = {
      failed: { table: 'ledger_failed', payload: failedPayload, waiting: [], audit_rows: 0 },
      identity: { table: 'ee_accounts', payload: identityPayload, waiting: [], audit_rows: 0 },
    };
    let last = { seq: 0, hash: GENESIS_HASH };
    let auditRows = 0;
    for await (const a of streamRows<{
      seq: number;
      at_ms: number;
      kind: string;
      payload: string;
      prev_hash: string;
      hash: string;
    }>(conn, 'ledger_audit', 'seq')) {
      auditRows += 1;
      const seq = Number(a.seq);
      if (seq !== last.seq + 1) report(`audit seq ${seq} follows ${last.seq}: the chain has a gap`);
      if (a.prev_hash !== last.hash) report(`audit seq ${seq}: prev_hash does not link to the previous row`);
      if (auditHash(a.prev_hash, seq, Number(a.at_ms), a.kind, a.payload) !== a.hash)
        report(`audit seq ${seq}: hash does not match its contents`);
      // Continue from the stored hash so one bad row is reported once, not as every later row.
      last = { seq, hash: a.hash };

      if (a.kind === 'transfer' || a.kind === 'expiry') {
        const j = await nextJournal();
        if (!j) report(`audit seq ${seq}: ${a.kind} has no journal row`);
        else if (j.kind !== a.kind || journalPayload(j) !== a.payload)
          report(`audit seq ${seq}: differs from journal seq ${j.seq}`);
      } else if (a.kind === 'account') {
        const id = payloadId(a.payload);
        const stored = id === undefined ? undefined : accounts.get(id);
        if (!stored) report(`audit seq ${seq}: account ${id} is not in ledger_accounts`);
        else {
          if (stored.audited) report(`audit seq ${seq}: account ${id} has a second audit row`);
          if (accountPayload(stored.row) !== a.payload)
            report(`audit seq ${seq}: account ${id} differs from its ledger_accounts row`);
          stored.audited = true;
        }
      } else if (a.kind === 'failed' || a.kind === 'identity') {
        const k = keyed[a.kind];
        k.audit_rows += 1;
        const id = payloadId(a.payload);
        if (id === undefined) report(`audit seq ${seq}: ${a.kind} payload is malformed`);
        else k.waiting.push({ seq, id, payload: a.payload });
        if (k.waiting.length >= VERIFY_PAGE_ROWS) await checkKeyed(conn, a.kind, k, report);
      } else {
        report(`audit seq ${seq}: unknown kind ${JSON.stringify(a.kind)}`);
      }
    }
    for (let j = await nextJournal(); j; j = await nextJournal()) report(`journal seq ${j.seq} has no audit row`);
    for (const [kind, k] of Object.entries(keyed)) {
      await checkKeyed(conn, kind, k, report);
      // Every audit row matched a row of the table; equal counts and no repeated payload make that one to one.
      const rows = await count(conn, k.table);
      if (rows !== k.audit_rows) report(`${k.table} has ${rows} rows but the audit log records ${k.audit_rows}`);
      const dup = await conn
        .selectFrom('ledger_audit')
        .select(['payload'])
        .where('kind', '=', kind)
        .groupBy('payload')
        .having((eb) => eb.fn.countAll(), '>', 1)
        .limit(1)
        .executeTakeFirst();
      if (dup) report(`audit log records ${kind} ${payloadId(dup.payload)} more than once`);
    }
    for (const s of accounts.values()) if (!s.audited) report(`account ${s.account.id} has no audit row`);

    const head = await conn
      .selectFrom('ledger_audit_head')
      .select(['seq', 'hash'])
      .where('id', '=', 1)
      .executeTakeFirst();
    const headSeq = head ? Number(head.seq) : 0;
    if (!head) report('ledger_audit_head has no row');
    else if (headSeq !== last.seq || head.hash !== last.hash) {
      report(
        `audit head (${headSeq}, ${String(head.hash).slice(0, 12)}…) is not the last audit row (${last.seq}, ${last.hash.slice(0, 12)}…)`,
      );
    }

    let pendingRows = 0;
    let pendingOpen = 0;
    for await (const p of streamRows<{ id: string; status: PendingStatus; expires_at_ms: number | null }>(
      conn,
      'ledger_pending',
      'id',
    )) {
      pendingRows += 1;
      if (p.status === 'pending') pendingOpen += 1;
      fold.checkLockStatus(p.id, p.status, p.expires_at_ms === null ? null : Number(big(p.expires_at_ms)));
    }
    if (pendingRows !== fold.locks.size)
      report(`ledger_pending has ${pendingRows} rows but the journal created ${fold.locks.size} locks`);

    const both = await conn
      .selectFrom('ledger_failed')
      .innerJoin('ledger_journal', 'ledger_journal.transfer_id', 'ledger_failed.id')
      .select('ledger_failed.id')
      .limit(MAX_REPORTED_ERRORS)
      .execute();
    for (const r of both) report(`id ${r.id} is both failed and in the journal`);
    // The UNIQUE constraint makes this impossible unless someone dropped it.
    const twice = await conn
      .selectFrom('ledger_journal')
      .select('transfer_id')
      .where('transfer_id', 'is not', null)
      .groupBy('transfer_id')
      .having((eb) => eb.fn.countAll(), '>', 1)
      .limit(MAX_REPORTED_ERRORS)
      .execute();
    for (const r of twice) report(`journal id ${r.transfer_id} appears more than once`);

    const totals: Counters = fold.checkAccounts([...accounts.values()].map((s) => s.account));
    const list = errors.list();
    return {
      ok: list.length === 0,
      errors: list,
      accounts: accounts.size,
      journal_rows: journalRows,
      pending_open: pendingOpen,
      audit_rows: auditRows,
      head: { seq: headSeq, hash: head?.hash ?? GENESIS_HASH },
      totals: {
        debits_posted: String(totals.debits_posted),
        credits_posted: String(totals.credits_posted),
        debits_pending: String(totals.debits_pending),
        credits_pending: String(totals.credits_pending),
      },
      checked_at_ms: now(),
    };
  });
}
