// The jobs' table, run through the store's migrator with its own version range (300+).
import { sql } from 'kysely';
import { int64Type, type Migration } from '../../store/migrations.js';

export const JOBS_MIGRATIONS: readonly Migration[] = [
  {
    version: 300,
    name: 'jobs: private jobs on nodes, their locks, states and sealed results',
    async up(db, d) {
      const n = int64Type(d);
      await db.schema
        .createTable('jobs')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('user_id', 'text', (c) => c.notNull())
        .addColumn('node_id', 'text', (c) => c.notNull().references('market_nodes.id'))
        .addColumn('provider', 'text', (c) => c.notNull())
        .addColumn('image', 'text', (c) => c.notNull())
        .addColumn('command', 'text')
        .addColumn('vcpus', 'integer', (c) => c.notNull().check(sql`vcpus > 0`))
        .addColumn('memory_mib', 'integer', (c) => c.notNull())
        .addColumn('max_runtime_ms', n, (c) => c.notNull())
        .addColumn('network', 'integer', (c) => c.notNull())
        .addColumn('price_micro', n, (c) => c.notNull())
        .addColumn('lock_micro', n, (c) => c.notNull())
        .addColumn('sealed_env', 'text')
        .addColumn('env_key', 'text')
        .addColumn('result_key', 'text', (c) => c.notNull())
        .addColumn('state', 'text', (c) =>
          c
            .notNull()
            .check(sql`state IN ('queued', 'starting', 'running', 'succeeded', 'failed', 'timed_out', 'cancelled')`),
        )
        .addColumn('reason', 'text', (c) => c.notNull())
        .addColumn('history', 'text', (c) => c.notNull())
        .addColumn('assignment_seq', n, (c) => c.notNull())
        .addColumn('cancel_requested', 'integer', (c) => c.notNull())
        .addColumn('image_id', 'text')
        .addColumn('image_digest', 'text')
        .addColumn('exit_code', 'integer')
        .addColumn('started_ms', n)
        .addColumn('finished_ms', n)
        .addColumn('billed_vcpu_ms', n)
        .addColumn('settled_micro', n)
        .addColumn('refunded_micro', n)
        .addColumn('result_sealed', 'text')
        .addColumn('usage_record', 'text')
        .addColumn('created_ms', n, (c) => c.notNull())
        .addColumn('updated_ms', n, (c) => c.notNull())
        .execute();
      await db.schema.createIndex('jobs_node_state').on('jobs').columns(['node_id', 'state']).execute();
      await db.schema.createIndex('jobs_user').on('jobs').columns(['user_id', 'created_ms']).execute();
      await db.schema.createIndex('jobs_state').on('jobs').column('state').execute();
    },
  },
  {
    version: 301,
    name: 'jobs: a retry on another node when the first is lost (opt-in), the earlier attempts, an output file',
    async up(db) {
      await db.schema
        .alterTable('jobs')
        .addColumn('retry_on_node_loss', 'integer', (c) => c.notNull().defaultTo(0))
        .execute();
      await db.schema
        .alterTable('jobs')
        .addColumn('attempt', 'integer', (c) => c.notNull().defaultTo(1))
        .execute();
      await db.schema
        .alterTable('jobs')
        .addColumn('env_pending', 'integer', (c) => c.notNull().defaultTo(0))
        .execute();
      await db.schema.alterTable('jobs').addColumn('attempts', 'text').execute();
      await db.schema.alterTable('jobs').addColumn('output_file', 'text').execute();
    },
  },
];
