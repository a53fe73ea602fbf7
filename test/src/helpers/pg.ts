// Throw-away PostgreSQL databases for tests. The server is the local one (trust auth) unless
// EE_TEST_PG_URL points at another maintenance database.
import { randomBytes } from 'node:crypto';
import pg from 'pg';

const ADMIN_URL = process.env.EE_TEST_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';

function urlFor(database: string): string {
  const u = new URL(ADMIN_URL);
  u.pathname = `/${database}`;
  return u.toString();
}

async function withAdmin<T>(fn: (c: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: ADMIN_URL, connectionTimeoutMillis: 3000 });
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end();
  }
}

export async function pgAvailable(): Promise<boolean> {
  try {
    await withAdmin((c) => c.query('SELECT 1'));
    return true;
  } catch {
    return false;
  }
}

/** True when a missing PostgreSQL must fail the run instead of skipping (CI, or EE_REQUIRE_PG=1). */
export function pgRequired(): boolean {
  return Boolean(process.env.CI) || process.env.EE_REQUIRE_PG === '1';
}

/**
 * For `describe(name, { skip }, ...)`: false when PostgreSQL is reachable; a visible skip reason when it
 * is not and not required; throws when it is required but unreachable.
 */
export async function pgSkipReason(): Promise<false | string> {
  if (await pgAvailable()) return false;
  const msg =
    `PostgreSQL is not reachable at ${new URL(ADMIN_URL).host} (start it with: ` +
    'pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start)';
  if (pgRequired()) throw new Error(`${msg}; required because CI or EE_REQUIRE_PG=1 is set`);
  console.warn(`SKIPPING PostgreSQL tests: ${msg}`);
  return `SKIPPED: ${msg}`;
}

/** Creates database ee_test_<random hex>, runs fn with its URL, then drops it (forcing out any leftover session). */
export async function withTempPgDatabase<T>(fn: (url: string) => Promise<T>): Promise<T> {
  const name = `ee_test_${randomBytes(6).toString('hex')}`;
  await withAdmin((c) => c.query(`CREATE DATABASE ${name}`));
  try {
    return await fn(urlFor(name));
  } finally {
    await withAdmin((c) => c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`));
  }
}
