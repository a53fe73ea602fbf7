// The market's tables, run through the store's migrator with their own version range (200+).
import { sql } from 'kysely';
import { int64Type, type Migration } from '../../store/migrations.js';

export const MARKET_MIGRATIONS: readonly Migration[] = [
  {
    version: 200,
    name: 'market: nodes, agent bindings, leases, lease periods, usage and abuse reports, slashes, payouts',
    async up(db, d) {
      const n = int64Type(d);
      await db.schema
        .createTable('market_nodes')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('provider', 'text', (c) => c.notNull())
        .addColumn('name', 'text', (c) => c.notNull())
        .addColumn('region', 'text', (c) => c.notNull())
        .addColumn('tier', 'text', (c) => c.notNull().check(sql`tier IN ('premium', 'standard', 'economy')`))
        .addColumn('network', 'text', (c) => c.notNull())
        .addColumn('vcpus', 'integer', (c) => c.notNull().check(sql`vcpus > 0`))
        .addColumn('capacity_months', 'integer', (c) => c.notNull())
        .addColumn('price_micro', n, (c) => c.notNull().check(sql`price_micro > 0`))
        .addColumn('ppid', 'text', (c) => c.unique())
        .addColumn('token_hash', 'text')
        .addColumn('status', 'text', (c) => c.notNull().check(sql`status IN ('active', 'banned')`))
        .addColumn('banned_reason', 'text')
        .addColumn('banned_ms', n)
        .addColumn('created_ms', n, (c) => c.notNull())
        .execute();
      await db.schema.createIndex('market_nodes_provider').on('market_nodes').column('provider').execute();

      await db.schema
        .createTable('market_node_agents')
        .addColumn('agent_id', 'text', (c) => c.primaryKey())
        .addColumn('node_id', 'text', (c) => c.notNull().references('market_nodes.id'))
        .addColumn('via', 'text', (c) => c.notNull())
        .addColumn('bound_ms', n, (c) => c.notNull())
        .execute();
      await db.schema.createIndex('market_node_agents_node').on('market_node_agents').column('node_id').execute();

      await db.schema
        .createTable('market_leases')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('user_id', 'text', (c) => c.notNull())
        .addColumn('app_name', 'text', (c) => c.notNull())
        .addColumn('node_id', 'text', (c) => c.notNull().references('market_nodes.id'))
        .addColumn('vcpus', 'integer', (c) => c.notNull())
        .addColumn('price_micro', n, (c) => c.notNull())
        .addColumn('periods', 'integer')
        .addColumn('periods_locked', 'integer', (c) => c.notNull())
        .addColumn('first_period', n, (c) => c.notNull())
        .addColumn('last_period', n, (c) => c.notNull())
        .addColumn('status', 'text', (c) => c.notNull().check(sql`status IN ('active', 'ended')`))
        .addColumn('end_reason', 'text')
        .addColumn('created_ms', n, (c) => c.notNull())
        .addColumn('ended_ms', n)
        .execute();
      await db.schema
        .createIndex('market_leases_status')
        .on('market_leases')
        .columns(['status', 'last_period'])
        .execute();
      await db.schema.createIndex('market_leases_node').on('market_leases').column('node_id').execute();

      await db.schema
        .createTable('market_lease_periods')
        .addColumn('lease_id', 'text', (c) => c.notNull().references('market_leases.id'))
        .addColumn('period', n, (c) => c.notNull())
        .addColumn('node_id', 'text', (c) => c.notNull())
        .addColumn('provider', 'text', (c) => c.notNull())
        .addColumn('user_id', 'text', (c) => c.notNull())
        .addColumn('app_name', 'text', (c) => c.notNull())
        .addColumn('from_ms', n, (c) => c.notNull())
        .addColumn('to_ms', n, (c) => c.notNull())
        .addColumn('amount', n, (c) => c.notNull().check(sql`amount > 0`))
        .addColumn('status', 'text', (c) => c.notNull().check(sql`status IN ('locked', 'posted', 'voided', 'expired')`))
        .addColumn('reasons', 'text')
        .addColumn('finalized_ms', n)
        .addPrimaryKeyConstraint('market_lease_periods_pk', ['lease_id', 'period'])
        .execute();
      await db.schema
        .createIndex('market_lease_periods_open')
        .on('market_lease_periods')
        .columns(['status', 'to_ms'])
        .execute();
      await db.schema
        .createIndex('market_lease_periods_node')
        .on('market_lease_periods')
        .columns(['node_id', 'status'])
        .execute();
      await db.schema.createIndex('market_lease_periods_period').on('market_lease_periods').column('period').execute();

      await db.schema
        .createTable('market_usage_reports')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('node_id', 'text', (c) => c.notNull())
        .addColumn('period', n, (c) => c.notNull())
        .addColumn('units', 'integer', (c) => c.notNull())
        .addColumn('missed_checks', 'integer', (c) => c.notNull())
        .addColumn('detail', 'text')
        .addColumn('created_ms', n, (c) => c.notNull())
        .execute();
      await db.schema
        .createIndex('market_usage_reports_node')
        .on('market_usage_reports')
        .columns(['node_id', 'period'])
        .execute();

      await db.schema
        .createTable('market_abuse_reports')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('node_id', 'text', (c) => c.notNull())
        .addColumn('lease_id', 'text')
        .addColumn('period', n, (c) => c.notNull())
        .addColumn('reason', 'text', (c) => c.notNull())
        .addColumn('status', 'text', (c) => c.notNull().check(sql`status IN ('filed', 'authorized')`))
        .addColumn('filed_ms', n, (c) => c.notNull())
        .addColumn('authorized_ms', n)
        .execute();
      await db.schema
        .createIndex('market_abuse_reports_node')
        .on('market_abuse_reports')
        .columns(['node_id', 'period'])
        .execute();

      await db.schema
        .createTable('market_slashes')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('node_id', 'text', (c) => c.notNull())
        .addColumn('kind', 'text', (c) => c.notNull())
        .addColumn('amount', n, (c) => c.notNull())
        .addColumn('reason', 'text', (c) => c.notNull())
        .addColumn('at_ms', n, (c) => c.notNull())
        .execute();
      await db.schema.createIndex('market_slashes_node').on('market_slashes').column('node_id').execute();

      await db.schema
        .createTable('market_payouts')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('provider', 'text', (c) => c.notNull())
        .addColumn('amount', n, (c) => c.notNull())
        .addColumn('status', 'text', (c) => c.notNull().check(sql`status IN ('pending', 'confirmed', 'cancelled')`))
        .addColumn('reference', 'text')
        .addColumn('created_ms', n, (c) => c.notNull())
        .addColumn('resolved_ms', n)
        .execute();
    },
  },
];
