// The deployments' table, run through the store's migrator with its own version range (400+).
import { sql } from 'kysely';
import { int64Type, type Migration } from '../../store/migrations.js';

export const DEPLOYMENTS_MIGRATIONS: readonly Migration[] = [
  {
    version: 400,
    name: 'deployments: long-running apps on leases, run by node launchers',
    async up(db, d) {
      const n = int64Type(d);
      await db.schema
        .createTable('deployments')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('user_id', 'text', (c) => c.notNull())
        .addColumn('app', 'text', (c) => c.notNull())
        .addColumn('lease_id', 'text', (c) => c.notNull().references('market_leases.id'))
        .addColumn('node_id', 'text', (c) => c.notNull().references('market_nodes.id'))
        .addColumn('image', 'text', (c) => c.notNull())
        .addColumn('command', 'text')
        .addColumn('port', 'integer', (c) => c.notNull())
        .addColumn('vcpus', 'integer', (c) => c.notNull().check(sql`vcpus > 0`))
        .addColumn('memory_mib', 'integer', (c) => c.notNull())
        .addColumn('sealed_env', 'text')
        .addColumn('env_key', 'text')
        .addColumn('state', 'text', (c) =>
          c.notNull().check(sql`state IN ('starting', 'running', 'updating', 'stopping', 'stopped', 'failed')`),
        )
        .addColumn('reason', 'text', (c) => c.notNull())
        .addColumn('generation', 'integer', (c) => c.notNull())
        .addColumn('retiring_generation', 'integer')
        .addColumn('image_id', 'text')
        .addColumn('image_digest', 'text')
        .addColumn('created_ms', n, (c) => c.notNull())
        .addColumn('updated_ms', n, (c) => c.notNull())
        .execute();
      await db.schema.createIndex('deployments_state').on('deployments').column('state').execute();
      await db.schema.createIndex('deployments_user').on('deployments').columns(['user_id', 'created_ms']).execute();
    },
  },
  {
    version: 401,
    name: 'deployments: what the serving generation runs during an update (an update may change the env)',
    async up(db) {
      for (const column of ['retiring_image', 'retiring_sealed_env', 'retiring_env_key'])
        await db.schema.alterTable('deployments').addColumn(column, 'text').execute();
    },
  },
];
