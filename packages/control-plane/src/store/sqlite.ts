// SQLite via better-sqlite3 (synchronous; Kysely's SqliteDialect serialises queries on the one connection).
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import BetterSqlite3 from 'better-sqlite3';
import { Kysely, SqliteDialect, type SqliteDatabase } from 'kysely';
import type { Database } from './database.js';

/** How long a statement waits for another process's write lock before SQLITE_BUSY. */
export const SQLITE_BUSY_TIMEOUT_MS = 5000;

export function openSqlite(path: string): Kysely<Database> {
  // better-sqlite3 treats "" as an anonymous temporary database: never what a config meant.
  if (path === '') throw new Error('SQLite db_path must not be empty');
  const memory = path === ':memory:';
  // The default path (control_plane/data/...) does not exist in a fresh checkout.
  if (!memory) mkdirSync(dirname(path), { recursive: true });

  const sqlite = new BetterSqlite3(path, { timeout: SQLITE_BUSY_TIMEOUT_MS });
  try {
    if (!memory) {
      // WAL: readers do not block the writer. Checked, because SQLite silently keeps the old mode
      // when it cannot switch (e.g. on some network file systems).
      const mode = sqlite.pragma('journal_mode = WAL', { simple: true });
      if (mode !== 'wal') throw new Error(`SQLite refused journal_mode=WAL for ${path} (got ${String(mode)})`);
    }
    sqlite.pragma('synchronous = FULL'); // a committed transaction survives power loss (ledger data)
    sqlite.pragma('foreign_keys = ON'); // off by default in SQLite, always on in PostgreSQL
    sqlite.pragma(`busy_timeout = ${SQLITE_BUSY_TIMEOUT_MS}`); // wait for another process's write lock instead of failing
  } catch (err) {
    sqlite.close();
    throw err;
  }
  return new Kysely<Database>({ dialect: new SqliteDialect({ database: withStatementCache(sqlite) }) });
}

/** Prepared statements kept per SQL text; parsing costs more than running a small query or a bulk INSERT. */
export const STATEMENT_CACHE_SIZE = 256;

/**
 * Kysely's SQLite driver prepares every query anew. Statements are cached by their SQL text in a small LRU;
 * one that is still being iterated (`busy`: a streamed SELECT not yet exhausted) is not handed out again —
 * a fresh one is prepared for that call instead.
 */
function withStatementCache(db: BetterSqlite3.Database): SqliteDatabase {
  const cache = new Map<string, BetterSqlite3.Statement>();
  return {
    close: () => db.close(),
    prepare(sql: string) {
      const hit = cache.get(sql);
      if (hit && !hit.busy) {
        cache.delete(sql); // re-insert: Map order is the LRU order
        cache.set(sql, hit);
        return hit;
      }
      const stmt = db.prepare(sql);
      if (!hit) {
        cache.set(sql, stmt);
        if (cache.size > STATEMENT_CACHE_SIZE) cache.delete(cache.keys().next().value!);
      }
      return stmt;
    },
  } as SqliteDatabase;
}
