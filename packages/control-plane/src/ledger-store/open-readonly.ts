// Opening a control plane's database only to read it (`ee ledger verify`): no migrations, no pragmas that
// write, and on SQLite a read-only handle on a file that must already exist.
import BetterSqlite3 from 'better-sqlite3';
import { Kysely, SqliteDialect } from 'kysely';
import type { Database, Db } from '../store/database.js';
import type { StoreDialect } from '../store/migrations.js';
import { openPostgres } from '../store/postgres.js';

export type ReadOnlyTarget = { dialect: 'sqlite'; path: string } | { dialect: 'postgres'; url: string };

/** Waits this long for a writer's lock (e.g. a checkpoint) instead of failing at once. */
const SQLITE_BUSY_TIMEOUT_MS = 5000;

export function openReadOnly(t: ReadOnlyTarget): { db: Db; dialect: StoreDialect } {
  if (t.dialect === 'postgres') return { db: openPostgres(t.url), dialect: 'postgres' };
  // fileMustExist: a mistyped path must not create (and then "verify") an empty database.
  const sqlite = new BetterSqlite3(t.path, { readonly: true, fileMustExist: true, timeout: SQLITE_BUSY_TIMEOUT_MS });
  return { db: new Kysely<Database>({ dialect: new SqliteDialect({ database: sqlite }) }), dialect: 'sqlite' };
}
