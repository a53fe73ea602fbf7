// Tables of reservations and receipts (migration 210; docs/confidential.md "Money flow"), and their reads.
// Money columns are micro-USD integers; times are ms since epoch. Receipts hold hashes, counts and
// signatures only: nothing of a sealed request or response.
import { sql } from 'kysely';
import { int64Type, type Migration } from '../../store/migrations.js';
import type { Db, Tx } from '../../store/database.js';
import type { MarketReceiptsTable, MarketReservationsTable } from './reservation-schema.js';

export const RESERVATION_MIGRATIONS: readonly Migration[] = [
  {
    version: 210,
    name: 'market: unit prices, attested receipt keys, reservations, receipts',
    async up(db, d) {
      const n = int64Type(d);
      await db.schema
        .createTable('market_unit_prices')
        .addColumn('node_id', 'text', (c) => c.primaryKey().references('market_nodes.id'))
        .addColumn('prices', 'text', (c) => c.notNull())
        .addColumn('updated_ms', n, (c) => c.notNull())
        .execute();
      await db.schema
        .createTable('market_agent_keys')
        .addColumn('receipt_key', 'text', (c) => c.primaryKey())
        .addColumn('hpke_key', 'text', (c) => c.notNull())
        .addColumn('agent_id', 'text', (c) => c.notNull())
        .addColumn('node_id', 'text', (c) => c.notNull())
        .addColumn('app_name', 'text', (c) => c.notNull())
        .addColumn('first_attested_ms', n, (c) => c.notNull())
        .addColumn('last_attested_ms', n, (c) => c.notNull())
        .execute();
      await db.schema.createIndex('market_agent_keys_agent').on('market_agent_keys').column('agent_id').execute();
      await db.schema
        .createTable('market_reservations')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('user_id', 'text', (c) => c.notNull())
        .addColumn('app_name', 'text', (c) => c.notNull())
        .addColumn('node_id', 'text', (c) => c.notNull().references('market_nodes.id'))
        .addColumn('provider', 'text', (c) => c.notNull())
        .addColumn('agent_id', 'text', (c) => c.notNull())
        .addColumn('unit_prices', 'text', (c) => c.notNull())
        .addColumn('quota', n, (c) => c.notNull().check(sql`quota > 0`))
        .addColumn('claimed', n, (c) => c.notNull().check(sql`claimed >= 0 AND claimed <= quota`))
        .addColumn('receipts', 'integer', (c) => c.notNull())
        .addColumn('lock_seq', 'integer', (c) => c.notNull())
        .addColumn('lock_period', n, (c) => c.notNull())
        .addColumn('status', 'text', (c) => c.notNull().check(sql`status IN ('open', 'closed')`))
        .addColumn('end_reason', 'text')
        .addColumn('created_ms', n, (c) => c.notNull())
        .addColumn('expires_ms', n, (c) => c.notNull())
        .addColumn('closed_ms', n)
        .execute();
      await db.schema
        .createIndex('market_reservations_open')
        .on('market_reservations')
        .columns(['status', 'expires_ms'])
        .execute();
      await db.schema
        .createIndex('market_reservations_node')
        .on('market_reservations')
        .columns(['node_id', 'status'])
        .execute();
      await db.schema
        .createTable('market_receipts')
        .addColumn('receipt_key', 'text', (c) => c.notNull())
        .addColumn('seq', n, (c) => c.notNull())
        .addColumn('reservation_id', 'text', (c) => c.notNull().references('market_reservations.id'))
        .addColumn('request_id', 'text', (c) => c.notNull())
        .addColumn('amount', n, (c) => c.notNull().check(sql`amount >= 0`))
        .addColumn('time_ms', n, (c) => c.notNull())
        .addColumn('accepted_ms', n, (c) => c.notNull())
        .addColumn('transfer_id', 'text')
        .addColumn('signed', 'text', (c) => c.notNull())
        .addPrimaryKeyConstraint('market_receipts_pk', ['receipt_key', 'seq'])
        .execute();
      await db.schema
        .createIndex('market_receipts_reservation')
        .on('market_receipts')
        .columns(['reservation_id', 'accepted_ms'])
        .execute();
    },
  },
  {
    version: 211,
    name: 'market: reservations keep the SHA-256 of their bearer token (receipts must name it)',
    async up(db) {
      await db.schema.alterTable('market_reservations').addColumn('token_sha256', 'text').execute();
    },
  },
];

export const getReservation = (db: Db | Tx, id: string): Promise<MarketReservationsTable | undefined> =>
  db.selectFrom('market_reservations').selectAll().where('id', '=', id).executeTakeFirst();

export async function reservationReceipts(
  db: Db,
  id: string,
  limit: number,
): Promise<{ rows: MarketReceiptsTable[]; total: number; sum: number }> {
  const [rows, agg] = await Promise.all([
    db
      .selectFrom('market_receipts')
      .selectAll()
      .where('reservation_id', '=', id)
      .orderBy('accepted_ms', 'desc')
      .orderBy('seq', 'desc')
      .limit(limit)
      .execute(),
    db
      .selectFrom('market_receipts')
      .select((eb) => [eb.fn.countAll<number>().as('n'), eb.fn.sum<number>('amount').as('s')])
      .where('reservation_id', '=', id)
      .executeTakeFirst(),
  ]);
  return { rows, total: Number(agg?.n ?? 0), sum: Number(agg?.s ?? 0) };
}

/** What counts against an open reservation under zero tolerance, since `since_ms` (docs/design.md §5). */
export async function nodeIncidents(
  db: Db | Tx,
  node_id: string,
  since_ms: number,
  from_period: number,
): Promise<{ node_status: string; attestation_failures: number; health_failures: number; abuse_reports: string[] }> {
  const node = await db.selectFrom('market_nodes').select('status').where('id', '=', node_id).executeTakeFirst();
  const agents = (
    await db.selectFrom('market_node_agents').select('agent_id').where('node_id', '=', node_id).execute()
  ).map((r) => r.agent_id);
  let attestation_failures = 0;
  let health_failures = 0;
  if (agents.length > 0) {
    const a = await db
      .selectFrom('attestations')
      .select((eb) => eb.fn.countAll<number>().as('n'))
      .where('agent_id', 'in', agents)
      .where('ok', '=', 0)
      .where('at_ms', '>=', since_ms)
      .executeTakeFirst();
    attestation_failures = Number(a?.n ?? 0);
    const h = await db
      .selectFrom('health_events')
      .select((eb) => eb.fn.countAll<number>().as('n'))
      .where('agent_id', 'in', agents)
      .where('kind', 'in', ['missed', 'fail'])
      .where('at_ms', '>=', since_ms)
      .executeTakeFirst();
    health_failures = Number(h?.n ?? 0);
  }
  const abuse = await db
    .selectFrom('market_abuse_reports')
    .select('id')
    .where('node_id', '=', node_id)
    .where('status', '=', 'authorized')
    .where('period', '>=', from_period)
    // Authorised since the reservation began: an older ruling was known when it was made.
    .where('authorized_ms', '>=', since_ms)
    .orderBy('id')
    .limit(8)
    .execute();
  return {
    node_status: node?.status ?? 'unknown',
    attestation_failures,
    health_failures,
    abuse_reports: abuse.map((r) => r.id),
  };
}
