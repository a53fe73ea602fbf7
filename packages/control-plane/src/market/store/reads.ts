// Reads the market's API answers with (nodes, leases, settlements, reports, payouts): the SQL lives here, the
// routes (http/market-*.ts) only shape rows into views. Typed against the market's schema; no casts.
import type { Db as MarketDb } from '../../store/database.js';
import type {
  MarketAbuseReportsTable,
  MarketLeasePeriodsTable,
  MarketLeasesTable,
  MarketNodesTable,
  MarketPayoutsTable,
  MarketSlashesTable,
  PeriodStatus,
} from './schema.js';

/** Attestations and health events shown in a node's detail. */
export const NODE_RECENT_EVENTS = 20;

export const nodeByPpid = (db: MarketDb, ppid: string): Promise<MarketNodesTable | undefined> =>
  db.selectFrom('market_nodes').selectAll().where('ppid', '=', ppid).executeTakeFirst();

export async function activeNodeCount(db: MarketDb, provider: string): Promise<number> {
  const r = await db
    .selectFrom('market_nodes')
    .select((eb) => eb.fn.countAll<number>().as('n'))
    .where('provider', '=', provider)
    .where('status', '=', 'active')
    .executeTakeFirstOrThrow();
  return Number(r.n);
}

export interface NodeAgentRow {
  agent_id: string;
  via: 'token' | 'ppid';
  bound_ms: number;
  app_name: string | null;
  connected: number | null;
  health_status: string | null;
  attest_ok: number | null;
  last_attest_ms: number | null;
}

/** A node's bound agents with what their rows say (an agent bound before it ever connected has no row yet). */
export const nodeAgents = (db: MarketDb, node_id: string): Promise<NodeAgentRow[]> =>
  db
    .selectFrom('market_node_agents')
    .leftJoin('agents', 'agents.agent_id', 'market_node_agents.agent_id')
    .select([
      'market_node_agents.agent_id',
      'market_node_agents.via',
      'market_node_agents.bound_ms',
      'agents.app_name',
      'agents.connected',
      'agents.health_status',
      'agents.attest_ok',
      'agents.last_attest_ms',
    ])
    .where('market_node_agents.node_id', '=', node_id)
    .orderBy('market_node_agents.agent_id')
    .execute();

export interface AgentAttestationRow {
  agent_id: string;
  at_ms: number;
  reason: string;
  ok: number;
  missed: number;
  failure: string | null;
}

export const recentAttestations = async (db: MarketDb, agent_ids: readonly string[]): Promise<AgentAttestationRow[]> =>
  agent_ids.length === 0
    ? []
    : db
        .selectFrom('attestations')
        .select(['agent_id', 'at_ms', 'reason', 'ok', 'missed', 'failure'])
        .where('agent_id', 'in', [...agent_ids])
        .orderBy('at_ms', 'desc')
        .orderBy('id', 'desc')
        .limit(NODE_RECENT_EVENTS)
        .execute();

export interface AgentHealthRow {
  agent_id: string;
  at_ms: number;
  kind: string;
  detail: string | null;
}

export const recentHealthEvents = async (db: MarketDb, agent_ids: readonly string[]): Promise<AgentHealthRow[]> =>
  agent_ids.length === 0
    ? []
    : db
        .selectFrom('health_events')
        .select(['agent_id', 'at_ms', 'kind', 'detail'])
        .where('agent_id', 'in', [...agent_ids])
        .orderBy('at_ms', 'desc')
        .orderBy('id', 'desc')
        .limit(NODE_RECENT_EVENTS)
        .execute();

export const nodeSlashes = (db: MarketDb, node_id: string): Promise<MarketSlashesTable[]> =>
  db.selectFrom('market_slashes').selectAll().where('node_id', '=', node_id).orderBy('at_ms').execute();

export const getLease = (db: MarketDb, id: string): Promise<MarketLeasesTable | undefined> =>
  db.selectFrom('market_leases').selectAll().where('id', '=', id).executeTakeFirst();

/** The newest `limit` lease-periods of a lease, oldest first. */
export async function leasePeriods(db: MarketDb, lease_id: string, limit: number): Promise<MarketLeasePeriodsTable[]> {
  const rows = await db
    .selectFrom('market_lease_periods')
    .selectAll()
    .where('lease_id', '=', lease_id)
    .orderBy('period', 'desc')
    .limit(limit)
    .execute();
  return rows.reverse();
}

/** Amount and count of a lease's lease-periods per status, over all of them. */
export async function leaseTotals(
  db: MarketDb,
  lease_id: string,
): Promise<{ status: PeriodStatus; amount: bigint; count: number }[]> {
  const rows = await db
    .selectFrom('market_lease_periods')
    .select(['status', (eb) => eb.fn.sum<number>('amount').as('amount'), (eb) => eb.fn.countAll<number>().as('n')])
    .where('lease_id', '=', lease_id)
    .groupBy('status')
    .execute();
  return rows.map((r) => ({ status: r.status, amount: BigInt(r.amount ?? 0), count: Number(r.n) }));
}

export const leaseOnNode = async (db: MarketDb, lease_id: string, node_id: string): Promise<boolean> =>
  (await db
    .selectFrom('market_leases')
    .select('id')
    .where('id', '=', lease_id)
    .where('node_id', '=', node_id)
    .executeTakeFirst()) !== undefined;

export const periodLeasePeriods = (db: MarketDb, index: number): Promise<MarketLeasePeriodsTable[]> =>
  db.selectFrom('market_lease_periods').selectAll().where('period', '=', index).orderBy('lease_id').execute();

export const getAbuseReport = (db: MarketDb, id: string): Promise<MarketAbuseReportsTable | undefined> =>
  db.selectFrom('market_abuse_reports').selectAll().where('id', '=', id).executeTakeFirst();

export const getPayout = (db: MarketDb, id: string): Promise<MarketPayoutsTable | undefined> =>
  db.selectFrom('market_payouts').selectAll().where('id', '=', id).executeTakeFirst();
