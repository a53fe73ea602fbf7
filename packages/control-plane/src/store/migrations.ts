// A tiny migrator: an ordered list of {version, name, up}. Each migration runs in its own transaction
// together with the insert of its schema_migrations row, so it is applied exactly once or not at all.
// SQLite: BEGIN IMMEDIATE takes the write lock up front, so two processes on one file serialise.
// PostgreSQL: pg_advisory_xact_lock serialises concurrent start-ups of several replicas; the loser then
// sees the winner's row and skips. Versions are checked one by one (not "max version"), so a later
// feature (e.g. the ledger) can run its own list through runMigrations with a disjoint version range.
import { sql, type CreateTableBuilder, type Kysely } from 'kysely';
import type { Database } from './database.js';

export type StoreDialect = 'sqlite' | 'postgres';

export interface Migration {
  readonly version: number;
  readonly name: string;
  /** `db` is bound to the migration's transaction; do not open another transaction inside. */
  up(db: Kysely<Database>, dialect: StoreDialect): Promise<void>;
}

// Arbitrary constant shared by every process that migrates this database: "ee-migr" in ASCII as a JavaScript
// number rounds it (0x65652d6d696770), and that rounded value is what every release has locked on.
const PG_MIGRATION_LOCK_KEY = 0x65652d6d696770n;

/** Runs `fn` in one transaction holding the database's migration lock. */
async function inLockedTransaction<T>(
  db: Kysely<Database>,
  dialect: StoreDialect,
  fn: (tx: Kysely<Database>) => Promise<T>,
): Promise<T> {
  return db.connection().execute(async (conn) => {
    if (dialect === 'sqlite') {
      await sql`BEGIN IMMEDIATE`.execute(conn);
    } else {
      await sql`BEGIN`.execute(conn);
    }
    try {
      if (dialect === 'postgres')
        await sql`SELECT pg_advisory_xact_lock(${sql.raw(PG_MIGRATION_LOCK_KEY.toString())})`.execute(conn);
      const result = await fn(conn);
      await sql`COMMIT`.execute(conn);
      return result;
    } catch (err) {
      await sql`ROLLBACK`.execute(conn).catch(() => undefined); // keep the original error
      throw err;
    }
  });
}

function checkList(migrations: readonly Migration[]): void {
  let previous = 0;
  for (const m of migrations) {
    if (!Number.isSafeInteger(m.version) || m.version <= previous) {
      throw new Error(
        `migration versions must be positive integers in ascending order; got ${m.version} after ${previous}`,
      );
    }
    previous = m.version;
  }
}

/** Applies every migration of `migrations` not yet recorded in schema_migrations. Returns the versions applied now. */
export async function runMigrations(
  db: Kysely<Database>,
  dialect: StoreDialect,
  migrations: readonly Migration[],
  now = Date.now,
): Promise<number[]> {
  checkList(migrations);
  // Created under the lock too: concurrent CREATE TABLE IF NOT EXISTS can still collide on PostgreSQL.
  await inLockedTransaction(db, dialect, (tx) =>
    tx.schema
      .createTable('schema_migrations')
      .ifNotExists()
      .addColumn('version', 'integer', (c) => c.primaryKey())
      .addColumn('name', 'text', (c) => c.notNull())
      .addColumn('applied_at_ms', dialect === 'postgres' ? 'bigint' : 'integer', (c) => c.notNull())
      .execute(),
  );

  const applied: number[] = [];
  for (const m of migrations) {
    const ran = await inLockedTransaction(db, dialect, async (tx) => {
      const row = await tx
        .selectFrom('schema_migrations')
        .select(['name'])
        .where('version', '=', m.version)
        .executeTakeFirst();
      if (row) {
        // Same version, different name: this code and the database disagree about history. Stop.
        if (row.name !== m.name)
          throw new Error(
            `schema_migrations version ${m.version} is "${row.name}" in the database but "${m.name}" in code`,
          );
        return false;
      }
      await m.up(tx, dialect);
      await tx
        .insertInto('schema_migrations')
        .values({ version: m.version, name: m.name, applied_at_ms: now() })
        .execute();
      return true;
    });
    if (ran) applied.push(m.version);
  }
  return applied;
}

/** Column type for 64-bit integers (times in ms, micro-USD): BIGINT on PostgreSQL (INTEGER there is 32-bit);
 *  SQLite INTEGER is 64-bit already. Shared by every migration set (ledger-store, market). */
export const int64Type = (d: StoreDialect) => (d === 'postgres' ? 'bigint' : 'integer');

type TableBuilder = CreateTableBuilder<string, string>;

/** An append-only event table: autoincrement id plus the caller's columns, indexed by (agent, time) and (app, time). */
async function createEventTable(
  db: Kysely<Database>,
  d: StoreDialect,
  table: string,
  build: (t: TableBuilder) => TableBuilder,
): Promise<void> {
  const t0: TableBuilder = db.schema.createTable(table);
  // Autoincrement ids: SQLite's AUTOINCREMENT never reuses ids of deleted rows; BIGSERIAL on PostgreSQL.
  const t =
    d === 'postgres'
      ? t0.addColumn('id', 'bigserial', (c) => c.primaryKey())
      : t0.addColumn('id', 'integer', (c) => c.primaryKey().autoIncrement());
  await build(t).execute();
  await db.schema.createIndex(`${table}_agent_at`).on(table).columns(['agent_id', 'at_ms']).execute();
  await db.schema.createIndex(`${table}_app_at`).on(table).columns(['app_name', 'at_ms']).execute();
}

const bool01 = (col: string) => sql`${sql.ref(col)} IN (0, 1)`;

export const STORE_MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    name: 'apps, registrations, agents, attestations, health_events',
    async up(db, d) {
      const ms = int64Type(d);
      await db.schema
        .createTable('apps')
        .addColumn('app_name', 'text', (c) => c.primaryKey())
        .addColumn('repo', 'text', (c) => c.notNull())
        .addColumn('network', 'text', (c) => c.notNull())
        .addColumn('created_at_ms', ms, (c) => c.notNull())
        .execute();

      await db.schema
        .createTable('registrations')
        .addColumn('app_name', 'text', (c) => c.notNull().references('apps.app_name'))
        .addColumn('release_tag', 'text', (c) => c.notNull())
        .addColumn('repo', 'text', (c) => c.notNull())
        .addColumn('network', 'text', (c) => c.notNull())
        .addColumn('created_at_ms', ms, (c) => c.notNull())
        .addColumn('expires_at_ms', ms, (c) => c.notNull())
        .addPrimaryKeyConstraint('registrations_pk', ['app_name', 'release_tag'])
        .execute();

      await db.schema
        .createTable('agents')
        .addColumn('agent_id', 'text', (c) => c.primaryKey())
        .addColumn('app_name', 'text', (c) => c.notNull().references('apps.app_name'))
        .addColumn('repo', 'text', (c) => c.notNull())
        .addColumn('release_tag', 'text', (c) => c.notNull())
        .addColumn('network', 'text', (c) => c.notNull())
        .addColumn('first_seen_ms', ms, (c) => c.notNull())
        .addColumn('last_connected_ms', ms, (c) => c.notNull())
        .addColumn('last_disconnected_ms', ms)
        .addColumn('connected', 'integer', (c) => c.notNull().defaultTo(0).check(bool01('connected')))
        .addColumn('remote_addr', 'text')
        .addColumn('last_health_ms', ms)
        .addColumn('last_health_pass_ms', ms)
        .addColumn('health_status', 'text', (c) => c.check(sql`health_status IN ('pass', 'fail')`))
        .addColumn('last_attest_ms', ms)
        .addColumn('attest_ok', 'integer', (c) => c.notNull().defaultTo(0).check(bool01('attest_ok')))
        .addColumn('attest_evidence_type', 'text')
        .addColumn('attest_failure', 'text')
        .execute();
      await db.schema.createIndex('agents_app').on('agents').column('app_name').execute();

      await createEventTable(db, d, 'attestations', (t) =>
        t
          .addColumn('agent_id', 'text', (c) => c.notNull().references('agents.agent_id'))
          .addColumn('app_name', 'text', (c) => c.notNull())
          .addColumn('at_ms', ms, (c) => c.notNull())
          .addColumn('reason', 'text', (c) => c.notNull())
          .addColumn('ok', 'integer', (c) => c.notNull().check(bool01('ok')))
          .addColumn('evidence_type', 'text', (c) => c.notNull())
          .addColumn('evidence_hash', 'text')
          .addColumn('policy_version', 'text')
          .addColumn('failure', 'text')
          .addColumn('missed', 'integer', (c) => c.notNull().check(bool01('missed'))),
      );

      await createEventTable(db, d, 'health_events', (t) =>
        t
          .addColumn('agent_id', 'text', (c) => c.notNull().references('agents.agent_id'))
          .addColumn('app_name', 'text', (c) => c.notNull())
          .addColumn('at_ms', ms, (c) => c.notNull())
          .addColumn('kind', 'text', (c) =>
            c.notNull().check(sql`kind IN ('pass', 'fail', 'missed', 'connected', 'disconnected')`),
          )
          .addColumn('detail', 'text'),
      );
    },
  },
  {
    version: 2,
    name: 'apps.attested_at_ms: claims that were never attested, or not for long, lapse',
    async up(db, d) {
      await db.schema.alterTable('apps').addColumn('attested_at_ms', int64Type(d)).execute();
      // Existing claims with an attested agent count as attested now.
      await db
        .updateTable('apps')
        .set({ attested_at_ms: sql`(SELECT MAX(last_attest_ms) FROM agents WHERE agents.app_name = apps.app_name)` })
        .execute();
    },
  },
];
