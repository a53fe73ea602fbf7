// Reads of the market's tables and of the control plane's own records (evidence for settlement, trust inputs).
import type { PeriodEvidence } from '../settlement.js';
import type { TrustInput } from '../policy.js';
import type { Db } from '../../store/database.js';
import type { MarketLeasePeriodsTable, MarketNodesTable } from './schema.js';

export type { Db };

export const getNode = (db: Db, id: string): Promise<MarketNodesTable | undefined> =>
  db.selectFrom('market_nodes').selectAll().where('id', '=', id).executeTakeFirst();

export const boundAgents = async (db: Db, node_id: string): Promise<string[]> =>
  (await db.selectFrom('market_node_agents').select('agent_id').where('node_id', '=', node_id).execute()).map(
    (r: { agent_id: string }) => r.agent_id,
  );

/** Everything the settlement decision needs for one lease-period (see settlement.ts). */
export async function gatherEvidence(
  db: Db,
  p: MarketLeasePeriodsTable,
  health_timeout_ms: number,
): Promise<PeriodEvidence> {
  const agents = await boundAgents(db, p.node_id);
  const base: PeriodEvidence = {
    from_ms: p.from_ms,
    to_ms: p.to_ms,
    connected_at_start: [],
    health: [],
    attestations: [],
    usage_reports: [],
    abuse_reports: [],
    health_timeout_ms,
  };
  if (agents.length > 0) {
    const atStart: string[] = [];
    for (const agent_id of agents) {
      const last = await db
        .selectFrom('health_events')
        .select('kind')
        .where('agent_id', '=', agent_id)
        .where('app_name', '=', p.app_name)
        .where('kind', 'in', ['connected', 'disconnected'])
        .where('at_ms', '<', p.from_ms)
        .orderBy('at_ms', 'desc')
        .orderBy('id', 'desc')
        .limit(1)
        .executeTakeFirst();
      if (last?.kind === 'connected') atStart.push(agent_id);
    }
    base.connected_at_start = atStart;
    base.health = await db
      .selectFrom('health_events')
      .select(['agent_id', 'at_ms', 'kind'])
      .where('agent_id', 'in', agents)
      .where('app_name', '=', p.app_name)
      .where('at_ms', '>=', p.from_ms)
      .where('at_ms', '<', p.to_ms)
      .where('kind', 'in', ['missed', 'fail', 'connected', 'disconnected'])
      .orderBy('at_ms')
      .orderBy('id')
      .execute();
    base.attestations = (
      await db
        .selectFrom('attestations')
        .select(['at_ms', 'ok', 'missed'])
        .where('agent_id', 'in', agents)
        .where('app_name', '=', p.app_name)
        .where('at_ms', '>=', p.from_ms)
        .where('at_ms', '<', p.to_ms)
        .where('ok', '=', 0)
        .execute()
    ).map((r: { at_ms: number; ok: number; missed: number }) => ({
      at_ms: r.at_ms,
      ok: r.ok === 1,
      missed: r.missed === 1,
    }));
  }
  base.usage_reports = await db
    .selectFrom('market_usage_reports')
    .select(['id', 'missed_checks'])
    .where('node_id', '=', p.node_id)
    .where('period', '=', p.period)
    .execute();
  base.abuse_reports = await db
    .selectFrom('market_abuse_reports')
    .select('id')
    .where('node_id', '=', p.node_id)
    .where('period', '=', p.period)
    .where('status', '=', 'authorized')
    .where((eb) => eb.or([eb('lease_id', 'is', null), eb('lease_id', '=', p.lease_id)]))
    .orderBy('id')
    .execute();
  return base;
}

/** Trust inputs per node: its agents' last 100 attestations, its settled lease-periods, its authorised reports. */
export async function trustInputs(db: Db, node_id: string): Promise<TrustInput> {
  const agents = await boundAgents(db, node_id);
  let attest_ok = 0;
  let attest_failed = 0;
  if (agents.length > 0) {
    const rows = await db
      .selectFrom('attestations')
      .select('ok')
      .where('agent_id', 'in', agents)
      .orderBy('at_ms', 'desc')
      .limit(100)
      .execute();
    for (const r of rows as { ok: number }[])
      if (r.ok === 1) attest_ok++;
      else attest_failed++;
  }
  const periods = (await db
    .selectFrom('market_lease_periods')
    .select(['status', (eb) => eb.fn.countAll<number>().as('n')])
    .where('node_id', '=', node_id)
    .where('status', 'in', ['posted', 'voided'])
    .groupBy('status')
    .execute()) as { status: string; n: number }[];
  const abuse = (await db
    .selectFrom('market_abuse_reports')
    .select((eb) => eb.fn.countAll<number>().as('n'))
    .where('node_id', '=', node_id)
    .where('status', '=', 'authorized')
    .executeTakeFirst()) as { n: number } | undefined;
  return {
    attest_ok,
    attest_failed,
    periods_posted: Number(periods.find((p) => p.status === 'posted')?.n ?? 0),
    periods_voided: Number(periods.find((p) => p.status === 'voided')?.n ?? 0),
    authorised_reports: Number(abuse?.n ?? 0),
  };
}
