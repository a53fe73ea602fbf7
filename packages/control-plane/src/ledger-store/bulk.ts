// Bulk statements for the hot path. Kysely builds one AST node per bound value, which for a 1000-row batch
// costs more than SQLite spends storing it; here every statement binds ONE parameter — a JSON array of rows
// (or ids) — expanded by the database itself (SQLite json_each, PostgreSQL jsonb_array_elements / ANY).
// The SQL text is constant, so SQLite's prepared statement is reused too. Still Kysely's `sql` (one query
// layer); only the row expansion differs per dialect.
import { sql, type RawBuilder } from 'kysely';
import type { Tx } from '../store/database.js';
import type { StoreDialect } from '../store/migrations.js';
import type { AccountRow, JournalRow } from './rows.js';
import type { LedgerAuditTable } from './schema.js';
type Column = readonly [name: string, pgType: 'text' | 'bigint' | 'integer'];

const JOURNAL_COLUMNS: readonly Column[] = [
  ['kind', 'text'],
  ['transfer_id', 'text'],
  ['debit_account', 'text'],
  ['credit_account', 'text'],
  ['amount', 'bigint'],
  ['requested_amount', 'bigint'],
  ['flags', 'integer'],
  ['pending_id', 'text'],
  ['timeout_ms', 'bigint'],
  ['expires_at_ms', 'bigint'],
  ['memo', 'text'],
  ['reference', 'text'],
  ['timestamp_ms', 'bigint'],
];
const ACCOUNT_COLUMNS: readonly Column[] = [
  ['id', 'text'],
  ['flags', 'integer'],
  ['debits_pending', 'bigint'],
  ['debits_posted', 'bigint'],
  ['credits_pending', 'bigint'],
  ['credits_posted', 'bigint'],
  ['created_ms', 'bigint'],
];
const PENDING_COLUMNS: readonly Column[] = [
  ['id', 'text'],
  ['status', 'text'],
  ['expires_at_ms', 'bigint'],
];
const FAILED_COLUMNS: readonly Column[] = [
  ['id', 'text'],
  ['result', 'text'],
  ['timestamp_ms', 'bigint'],
];
const AUDIT_COLUMNS: readonly Column[] = [
  ['seq', 'bigint'],
  ['at_ms', 'bigint'],
  ['kind', 'text'],
  ['payload', 'text'],
  ['prev_hash', 'text'],
  ['hash', 'text'],
];

/** `SELECT <columns> FROM <rows of the JSON parameter>` for INSERT … SELECT. */
function fromJson(dialect: StoreDialect, columns: readonly Column[], rows: readonly unknown[][]): RawBuilder<unknown> {
  const json = JSON.stringify(rows);
  if (dialect === 'sqlite') {
    // `WHERE true` disambiguates INSERT … SELECT … ON CONFLICT in SQLite's grammar.
    return sql`SELECT ${sql.raw(columns.map((_, i) => `value->>${i}`).join(', '))} FROM json_each(${json}) WHERE true`;
  }
  return sql`SELECT ${sql.raw(columns.map(([, t], i) => `(e->>${i})::${t}`).join(', '))} FROM jsonb_array_elements(${json}::jsonb) AS e`;
}

const names = (columns: readonly Column[]) => sql.raw(columns.map(([n]) => n).join(', '));

/** `<column> IN (<ids>)` with the ids as one parameter. */
function inIds(dialect: StoreDialect, column: string, ids: readonly string[]): RawBuilder<unknown> {
  return dialect === 'sqlite'
    ? sql`${sql.ref(column)} IN (SELECT value FROM json_each(${JSON.stringify(ids)}))`
    : sql`${sql.ref(column)} = ANY(${ids as string[]}::text[])`;
}

export async function selectJournal(tx: Tx, dialect: StoreDialect, ids: readonly string[]): Promise<JournalRow[]> {
  if (ids.length === 0) return [];
  const r =
    await sql<JournalRow>`SELECT ${names(JOURNAL_COLUMNS)} FROM ledger_journal WHERE ${inIds(dialect, 'transfer_id', ids)}`.execute(
      tx,
    );
  return r.rows;
}

/** Accounts by id; on PostgreSQL locked FOR UPDATE in id order (the global lock order's first step). */
export async function selectAccounts(
  tx: Tx,
  dialect: StoreDialect,
  sortedIds: readonly string[],
): Promise<AccountRow[]> {
  if (sortedIds.length === 0) return [];
  const lock = dialect === 'postgres' ? sql` ORDER BY id FOR UPDATE` : sql``;
  const r =
    await sql<AccountRow>`SELECT ${names(ACCOUNT_COLUMNS)} FROM ledger_accounts WHERE ${inIds(dialect, 'id', sortedIds)}${lock}`.execute(
      tx,
    );
  return r.rows;
}

export async function selectPending(
  tx: Tx,
  dialect: StoreDialect,
  sortedIds: readonly string[],
): Promise<{ id: string; status: 'pending' | 'posted' | 'voided' | 'expired' }[]> {
  if (sortedIds.length === 0) return [];
  const lock = dialect === 'postgres' ? sql` ORDER BY id FOR UPDATE` : sql``;
  const r = await sql<{
    id: string;
    status: 'pending' | 'posted' | 'voided' | 'expired';
  }>`SELECT id, status FROM ledger_pending WHERE ${inIds(dialect, 'id', sortedIds)}${lock}`.execute(tx);
  return r.rows;
}

export async function selectFailed(
  tx: Tx,
  dialect: StoreDialect,
  ids: readonly string[],
): Promise<{ id: string; result: string }[]> {
  if (ids.length === 0) return [];
  const r = await sql<{
    id: string;
    result: string;
  }>`SELECT id, result FROM ledger_failed WHERE ${inIds(dialect, 'id', ids)}`.execute(tx);
  return r.rows;
}

const values = <T>(rows: readonly T[], columns: readonly Column[]) =>
  rows.map((r) => columns.map(([n]) => (r as Record<string, unknown>)[n] ?? null));

export async function insertJournal(tx: Tx, dialect: StoreDialect, rows: readonly JournalRow[]): Promise<void> {
  if (rows.length === 0) return;
  await sql`INSERT INTO ledger_journal (${names(JOURNAL_COLUMNS)}) ${fromJson(dialect, JOURNAL_COLUMNS, values(rows, JOURNAL_COLUMNS))}`.execute(
    tx,
  );
}

/** New accounts are inserted; existing ones get their counters (never their flags or creation time) replaced. */
export async function upsertAccounts(tx: Tx, dialect: StoreDialect, rows: readonly AccountRow[]): Promise<void> {
  if (rows.length === 0) return;
  await sql`INSERT INTO ledger_accounts (${names(ACCOUNT_COLUMNS)}) ${fromJson(dialect, ACCOUNT_COLUMNS, values(rows, ACCOUNT_COLUMNS))}
    ON CONFLICT (id) DO UPDATE SET debits_pending = excluded.debits_pending, debits_posted = excluded.debits_posted,
      credits_pending = excluded.credits_pending, credits_posted = excluded.credits_posted`.execute(tx);
}

export async function upsertPending(
  tx: Tx,
  dialect: StoreDialect,
  rows: readonly { id: string; status: string; expires_at_ms: number | null }[],
): Promise<void> {
  if (rows.length === 0) return;
  await sql`INSERT INTO ledger_pending (${names(PENDING_COLUMNS)}) ${fromJson(dialect, PENDING_COLUMNS, values(rows, PENDING_COLUMNS))}
    ON CONFLICT (id) DO UPDATE SET status = excluded.status`.execute(tx);
}

export async function insertFailed(
  tx: Tx,
  dialect: StoreDialect,
  rows: readonly { id: string; result: string; timestamp_ms: number }[],
): Promise<void> {
  if (rows.length === 0) return;
  // No ON CONFLICT: each failed id gets exactly one audit row, so a concurrent insert of the same id must fail
  // (a unique violation, retried) rather than be silently skipped.
  await sql`INSERT INTO ledger_failed (${names(FAILED_COLUMNS)}) ${fromJson(dialect, FAILED_COLUMNS, values(rows, FAILED_COLUMNS))}`.execute(
    tx,
  );
}

export async function insertAudit(tx: Tx, dialect: StoreDialect, rows: readonly LedgerAuditTable[]): Promise<void> {
  if (rows.length === 0) return;
  await sql`INSERT INTO ledger_audit (${names(AUDIT_COLUMNS)}) ${fromJson(dialect, AUDIT_COLUMNS, values(rows, AUDIT_COLUMNS))}`.execute(
    tx,
  );
}
