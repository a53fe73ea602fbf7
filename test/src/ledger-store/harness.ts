// LedgerStore on each backend the control plane supports: SQLite file, SQLite :memory:, PostgreSQL (a throwaway
// database; skipped only under pg.ts's rules). Each run gets a fresh database and an injected clock.
import { join } from 'node:path';
import assert from 'node:assert/strict';
import { sql, type Kysely } from 'kysely';
import { LedgerStore } from '@easyenclave/control-plane/ledger-store/ledger-store';
import { verifyLedger, type LedgerVerifyReport } from '@easyenclave/control-plane/ledger-store/verify';
import type { StoreDialect } from '@easyenclave/control-plane/store/migrations';
import { openPostgres } from '@easyenclave/control-plane/store/postgres';
import { openSqlite } from '@easyenclave/control-plane/store/sqlite';
import { pgSkipReason, withTempPgDatabase } from '../helpers/pg.js';
import { tmpDir } from '../helpers/tmp.js';
import { ISSUANCE, USER_FLAGS } from '../ledger/model.js';

export const START_MS = 1_000_000;

export interface Clock {
  now_ms: number;
}

export interface LedgerUnderTest {
  ledger: LedgerStore;
  db: Kysely<any>;
  dialect: StoreDialect;
  clock: Clock;
  /** A PostgreSQL URL or a SQLite path (":memory:" for memory), to open more connections. */
  location: string;
  verify(): Promise<LedgerVerifyReport>;
}

export type WithLedger = <T>(fn: (l: LedgerUnderTest) => Promise<T>) => Promise<T>;

export interface Backend {
  name: string;
  dialect: StoreDialect;
  skip: false | string;
  /**
   * Runs fn with an opener of fresh ledgers (each closed after its callback). On PostgreSQL one throwaway
   * database per session and a schema per ledger: creating a database per property run would dominate the time.
   */
  session<T>(fn: (withLedger: WithLedger) => Promise<T>): Promise<T>;
}

async function run<T>(
  db: Kysely<any>,
  dialect: StoreDialect,
  location: string,
  fn: (l: LedgerUnderTest) => Promise<T>,
): Promise<T> {
  try {
    const clock: Clock = { now_ms: START_MS };
    const ledger = await LedgerStore.open(db, dialect, () => clock.now_ms);
    try {
      return await fn({ ledger, db, dialect, clock, location, verify: () => verifyLedger(db, dialect) });
    } finally {
      await ledger.close();
    }
  } finally {
    await db.destroy();
  }
}

/**
 * `url` with every connection's search_path set to `schema` (created first). synchronous_commit=off: these
 * tests check what commits, not that it survives power loss, and a flush per commit would dominate the time.
 */
async function inFreshSchema<T>(url: string, schema: string, fn: (schemaUrl: string) => Promise<T>): Promise<T> {
  const admin = openPostgres(url);
  try {
    await sql.raw(`CREATE SCHEMA ${schema}`).execute(admin);
    const u = new URL(url);
    u.searchParams.set('options', `-c search_path=${schema} -c synchronous_commit=off`);
    return await fn(u.toString());
  } finally {
    await admin.destroy();
  }
}

let seq = 0;
const sqliteFile: WithLedger = (fn) => {
  const path = join(tmpDir(), `ledger-${seq++}.db`);
  return run(openSqlite(path), 'sqlite', path, fn);
};
const sqliteMemory: WithLedger = (fn) => run(openSqlite(':memory:'), 'sqlite', ':memory:', fn);

export const BACKENDS: Backend[] = [
  { name: 'SQLite file', dialect: 'sqlite', skip: false, session: (fn) => fn(sqliteFile) },
  { name: 'SQLite :memory:', dialect: 'sqlite', skip: false, session: (fn) => fn(sqliteMemory) },
  {
    name: 'PostgreSQL',
    dialect: 'postgres',
    skip: await pgSkipReason(),
    session: (fn) =>
      withTempPgDatabase((url) =>
        fn((inner) =>
          inFreshSchema(url, `ledger_${seq++}`, (schemaUrl) =>
            run(openPostgres(schemaUrl), 'postgres', schemaUrl, inner),
          ),
        ),
      ),
  },
];

export const U0 = 'user:t0';
export const U1 = 'user:t1';

/** A small ledger with every kind of row: accounts, plain and pending transfers, a failed id. */
export async function populate(l: LedgerUnderTest): Promise<void> {
  assert.deepEqual(
    await l.ledger.createAccounts([
      { id: U0, flags: USER_FLAGS },
      { id: U1, flags: USER_FLAGS },
    ]),
    ['ok', 'ok'],
  );
  const results = await l.ledger.createTransfers([
    { id: 'mint', debit_account: ISSUANCE, credit_account: U0, amount: 100n },
    { id: 'pay', debit_account: U0, credit_account: U1, amount: 30n },
    { id: 'lock', debit_account: U0, credit_account: U1, amount: 20n, flags: { pending: true } },
    { id: 'too-much', debit_account: U1, credit_account: U0, amount: 1_000n },
  ]);
  assert.deepEqual(results, ['ok', 'ok', 'ok', 'exceeds_credits']);
  const report = await l.verify();
  assert.deepEqual(report.errors, []);
}

/** Drops the triggers that make `table` append-only, as someone tampering with the database would. */
export async function dropAppendOnly(db: Kysely<any>, dialect: StoreDialect, table: string): Promise<void> {
  if (dialect === 'sqlite') {
    await sql.raw(`DROP TRIGGER ${table}_no_update`).execute(db);
    await sql.raw(`DROP TRIGGER ${table}_no_delete`).execute(db);
  } else {
    await sql.raw(`DROP TRIGGER ${table}_append_only ON ${table}`).execute(db);
  }
}
