// PostgreSQL via a pg Pool.
import pg from 'pg';
import { Kysely, PostgresDialect } from 'kysely';
import type { Database } from './schema.js';

const INT8_OID = 20;

/**
 * `*_ms` columns, ids and count(*) are int8. pg returns int8 as a string by default; we want plain
 * numbers like SQLite gives, but never a silently rounded one.
 */
export function parseInt8(text: string): number {
  const n = Number(text);
  if (!Number.isSafeInteger(n)) throw new RangeError(`int8 value ${text} is outside JavaScript's safe integer range`);
  return n;
}

export function openPostgres(url: string): Kysely<Database> {
  // Per-pool parsers, so this does not change pg's global defaults for other code in the process.
  const types = new pg.TypeOverrides();
  types.setTypeParser(INT8_OID, parseInt8);
  const pool = new pg.Pool({ connectionString: url, types });
  // An idle client that loses its connection emits 'error' on the pool; unhandled, that would crash
  // the process. pg already discards the client and the next query reconnects, so only report it.
  pool.on('error', (err) => process.emitWarning(`PostgreSQL idle client error: ${err.message}`, 'StoreWarning'));
  return new Kysely<Database>({ dialect: new PostgresDialect({ pool }) });
}
