// PostgreSQL via a pg Pool.
import pg from 'pg';
import { Kysely, PostgresDialect } from 'kysely';
import type { Database } from './database.js';

const INT8_OID = 20;
/** Longest wait for a new connection: an unreachable server fails requests (503) instead of hanging them. */
export const PG_CONNECT_TIMEOUT_MS = 5000;

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
  const pool = new pg.Pool({ connectionString: url, types, connectionTimeoutMillis: PG_CONNECT_TIMEOUT_MS });
  // An idle client that loses its connection emits 'error' on the pool; unhandled, that would crash
  // the process. pg already discards the client and the next query reconnects, so only report it.
  pool.on('error', (err) => process.emitWarning(`PostgreSQL idle client error: ${err.message}`, 'StoreWarning'));
  // A client checked out of the pool (a query running) emits 'error' on itself when its connection drops
  // (the server restarts, the network cuts it): with no listener that was an uncaught exception that took
  // the whole control plane down. The running query fails on its own (→ 503 store_unavailable) and pg
  // discards the client when it is released, so a listener that swallows the event is all that is needed.
  pool.on('connect', (client) => client.on('error', () => undefined));
  return new Kysely<Database>({ dialect: new PostgresDialect({ pool }) });
}
