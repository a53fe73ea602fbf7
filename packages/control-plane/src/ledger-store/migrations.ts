// The ledger's tables, run through the store's migrator with its own version range (100+). Journal, failed ids
// and the audit log are append-only, enforced by triggers in the database itself so that no code path (ours or
// a hand-typed SQL session) can rewrite history without first dropping a trigger — which `ee ledger verify`
// would then still catch through the hash chain.
import { sql, type Kysely } from 'kysely';
import type { Database } from '../store/database.js';
import { int64Type, type Migration, type StoreDialect } from '../store/migrations.js';

export const GENESIS_HASH = '0'.repeat(64);
const APPEND_ONLY = ['ledger_journal', 'ledger_failed', 'ledger_audit'] as const;

async function appendOnlyTriggers(db: Kysely<Database>, d: StoreDialect): Promise<void> {
  if (d === 'sqlite') {
    for (const table of APPEND_ONLY) {
      for (const op of ['UPDATE', 'DELETE']) {
        await sql
          .raw(
            `CREATE TRIGGER ${table}_no_${op.toLowerCase()} BEFORE ${op} ON ${table}
          BEGIN SELECT RAISE(ABORT, '${table} is append-only'); END`,
          )
          .execute(db);
      }
    }
    return;
  }
  await sql
    .raw(
      `CREATE FUNCTION ledger_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN RAISE EXCEPTION '% is append-only', TG_TABLE_NAME USING ERRCODE = 'restrict_violation'; END $$`,
    )
    .execute(db);
  for (const table of APPEND_ONLY) {
    await sql
      .raw(
        `CREATE TRIGGER ${table}_append_only BEFORE UPDATE OR DELETE ON ${table}
      FOR EACH ROW EXECUTE FUNCTION ledger_append_only()`,
      )
      .execute(db);
    await sql
      .raw(
        `CREATE TRIGGER ${table}_no_truncate BEFORE TRUNCATE ON ${table}
      FOR EACH STATEMENT EXECUTE FUNCTION ledger_append_only()`,
      )
      .execute(db);
  }
}

export const LEDGER_MIGRATIONS: readonly Migration[] = [
  {
    version: 100,
    name: 'ledger: accounts, journal, pending, failed, audit chain, identities, idempotency',
    async up(db, d) {
      const i64 = int64Type(d);
      await db.schema
        .createTable('ledger_accounts')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('flags', 'integer', (c) => c.notNull())
        .addColumn('debits_pending', i64, (c) => c.notNull().check(sql`debits_pending >= 0`))
        .addColumn('debits_posted', i64, (c) => c.notNull().check(sql`debits_posted >= 0`))
        .addColumn('credits_pending', i64, (c) => c.notNull().check(sql`credits_pending >= 0`))
        .addColumn('credits_posted', i64, (c) => c.notNull().check(sql`credits_posted >= 0`))
        .addColumn('created_ms', i64, (c) => c.notNull())
        .execute();

      // No foreign keys on the journal: the engine only journals transfers between accounts it loaded, and a
      // per-row FK probe would cost the hot path two index lookups; `ee ledger verify` checks the references.
      const journal =
        d === 'postgres'
          ? db.schema.createTable('ledger_journal').addColumn('seq', 'bigserial', (c) => c.primaryKey())
          : db.schema.createTable('ledger_journal').addColumn('seq', 'integer', (c) => c.primaryKey().autoIncrement());
      await journal
        .addColumn('kind', 'text', (c) => c.notNull().check(sql`kind IN ('transfer', 'expiry')`))
        .addColumn('transfer_id', 'text', (c) => c.unique())
        .addColumn('debit_account', 'text', (c) => c.notNull())
        .addColumn('credit_account', 'text', (c) => c.notNull())
        .addColumn('amount', i64, (c) => c.notNull().check(sql`amount > 0`))
        .addColumn('requested_amount', i64)
        .addColumn('flags', 'integer', (c) => c.notNull())
        .addColumn('pending_id', 'text')
        .addColumn('timeout_ms', i64)
        .addColumn('expires_at_ms', i64)
        .addColumn('memo', 'text')
        .addColumn('reference', 'text')
        .addColumn('timestamp_ms', i64, (c) => c.notNull())
        .addCheckConstraint('ledger_journal_id_by_kind', sql`(kind = 'transfer') = (transfer_id IS NOT NULL)`)
        .execute();
      await db.schema
        .createIndex('ledger_journal_debit')
        .on('ledger_journal')
        .columns(['debit_account', 'seq'])
        .execute();
      await db.schema
        .createIndex('ledger_journal_credit')
        .on('ledger_journal')
        .columns(['credit_account', 'seq'])
        .execute();

      await db.schema
        .createTable('ledger_pending')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('status', 'text', (c) =>
          c.notNull().check(sql`status IN ('pending', 'posted', 'voided', 'expired')`),
        )
        .addColumn('expires_at_ms', i64)
        .execute();
      // The expiry sweep's query; only open locks are indexed.
      await db.schema
        .createIndex('ledger_pending_open')
        .on('ledger_pending')
        .column('expires_at_ms')
        .where(sql.ref('status'), '=', 'pending')
        .execute();

      await db.schema
        .createTable('ledger_failed')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('result', 'text', (c) => c.notNull())
        .addColumn('timestamp_ms', i64, (c) => c.notNull())
        .execute();

      await db.schema
        .createTable('ledger_audit')
        .addColumn('seq', i64, (c) => c.primaryKey())
        .addColumn('at_ms', i64, (c) => c.notNull())
        .addColumn('kind', 'text', (c) => c.notNull())
        .addColumn('payload', 'text', (c) => c.notNull())
        .addColumn('prev_hash', 'text', (c) => c.notNull())
        .addColumn('hash', 'text', (c) => c.notNull())
        .execute();
      await db.schema
        .createTable('ledger_audit_head')
        .addColumn('id', 'integer', (c) => c.primaryKey().check(sql`id = 1`))
        .addColumn('seq', i64, (c) => c.notNull())
        .addColumn('hash', 'text', (c) => c.notNull())
        .execute();
      await db.insertInto('ledger_audit_head').values({ id: 1, seq: 0, hash: GENESIS_HASH }).execute();

      await db.schema
        .createTable('ee_accounts')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('kind', 'text', (c) => c.notNull().check(sql`kind IN ('user', 'provider')`))
        .addColumn('name', 'text', (c) => c.notNull())
        .addColumn('key_hash', 'text', (c) => c.notNull())
        .addColumn('created_ms', i64, (c) => c.notNull())
        .execute();

      await db.schema
        .createTable('ee_idempotency')
        .addColumn('principal', 'text', (c) => c.notNull())
        .addColumn('key', 'text', (c) => c.notNull())
        .addColumn('request_hash', 'text', (c) => c.notNull())
        .addColumn('status_code', 'integer', (c) => c.notNull())
        .addColumn('response', 'text', (c) => c.notNull())
        .addColumn('created_ms', i64, (c) => c.notNull())
        .addPrimaryKeyConstraint('ee_idempotency_pk', ['principal', 'key'])
        .execute();
      await db.schema.createIndex('ee_idempotency_created').on('ee_idempotency').column('created_ms').execute();

      await appendOnlyTriggers(db, d);
    },
  },
  {
    version: 101,
    name: 'ledger: rotated API keys',
    async up(db, d) {
      const i64 = int64Type(d);
      await db.schema
        .createTable('ee_api_keys')
        .addColumn('account_id', 'text', (c) => c.notNull().references('ee_accounts.id'))
        .addColumn('key_hash', 'text', (c) => c.notNull())
        .addColumn('created_ms', i64, (c) => c.notNull())
        .addColumn('expires_ms', i64)
        .addPrimaryKeyConstraint('ee_api_keys_pk', ['account_id', 'key_hash'])
        .execute();
    },
  },
];
