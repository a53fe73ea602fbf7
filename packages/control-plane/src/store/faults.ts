// Which errors mean "the database cannot serve now" (a full disk, PostgreSQL down or unreachable, a dropped
// connection) rather than a bug: the API answers those with 503 store_unavailable and Retry-After, /health
// and /ready report them, and the logs say so once in a while instead of a stack trace per request.

/** SQLite result codes (better-sqlite3 `SqliteError.code`, extended codes start with these). */
const SQLITE_UNAVAILABLE = [
  'SQLITE_FULL',
  'SQLITE_IOERR',
  'SQLITE_CANTOPEN',
  'SQLITE_READONLY',
  'SQLITE_BUSY',
  'SQLITE_LOCKED',
  'SQLITE_NOMEM',
  'SQLITE_PROTOCOL',
];

/**
 * PostgreSQL SQLSTATE classes and codes: 08 connection exception, 53 insufficient resources (disk full, out of
 * memory, too many connections), 58 system error (I/O), 57P01-03 shutdown / cannot connect now, 3D000 the
 * database does not exist (dropped), 25006 a read-only standby.
 */
const PG_CLASSES = ['08', '53', '58'];
const PG_CODES = new Set(['57P01', '57P02', '57P03', '3D000', '25006']);

/** Socket errors on the way to the database server. */
const SOCKET_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ETIMEDOUT',
  'EPIPE',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ENOTFOUND',
  'EAI_AGAIN',
]);

/** pg's own errors carry no code, only these messages. */
const PG_MESSAGES = [
  'Connection terminated',
  'timeout exceeded when trying to connect',
  'Client has encountered a connection error',
  'Connection terminated unexpectedly',
];

/** Causes followed at most (err.cause, AggregateError.errors): bounds the walk over a hostile chain. */
const MAX_CAUSE_DEPTH = 4;

function codeOf(err: object): string | undefined {
  const code = (err as { code?: unknown }).code;
  return typeof code === 'string' ? code : undefined;
}

export function isStoreUnavailable(err: unknown, depth = 0): boolean {
  if (typeof err !== 'object' || err === null || depth > MAX_CAUSE_DEPTH) return false;
  const code = codeOf(err);
  if (code !== undefined) {
    if (SQLITE_UNAVAILABLE.some((c) => code === c || code.startsWith(`${c}_`))) return true;
    if (SOCKET_CODES.has(code) || PG_CODES.has(code)) return true;
    if (/^[0-9A-Z]{5}$/.test(code) && PG_CLASSES.includes(code.slice(0, 2))) return true;
  }
  const message = (err as { message?: unknown }).message;
  if (typeof message === 'string' && PG_MESSAGES.some((m) => message.startsWith(m))) return true;
  const errors = (err as { errors?: unknown }).errors;
  if (Array.isArray(errors) && errors.some((x) => isStoreUnavailable(x, depth + 1))) return true;
  return isStoreUnavailable((err as { cause?: unknown }).cause, depth + 1);
}
