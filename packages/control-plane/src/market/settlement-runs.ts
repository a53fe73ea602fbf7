// The market's periodic runs over many leases (called by the scheduler and the settlement route): lock the
// next period of due leases, finalize ended periods, slash outages. Each lease or node is one ledger operation.
import type { ControlPlaneConfig } from '../config.js';
import type { LedgerStore } from '../ledger-store/ledger-store.js';
import type { Db as MarketDb } from '../store/database.js';
import { slashOp } from './ops-penalty.js';
import { finalizeOp, renewOp, type FinalizeResult, type MarketTiming, type PeriodRow } from './ops.js';
import { periodIndex } from './period.js';
import { slashAmount, type Tier } from './policy.js';
import { decide } from './settlement.js';
import { gatherEvidence } from './store/queries.js';

/** Lease-periods finalized at once by one finalize run (one ledger operation each). */
const FINALIZE_SLICE = 1024;

export type Finalized = FinalizeResult & { lease_id: string; period: number };

/** What the runs need of the market (a narrow port, so this module does not import the Market class). */
export interface SettlementHost {
  readonly db: MarketDb;
  readonly timing: MarketTiming;
  readonly now: number;
  readonly deps: { ledger: LedgerStore; config: ControlPlaneConfig };
  live(node_id: string): { healthy: number };
  liveEligible(node_id: string, app?: string): boolean;
  refreshRemoteLive(): Promise<void>;
  refreshRanking(): Promise<void>;
}

/** Decides one lease-period from its evidence and posts or voids its lock (idempotent). */
export async function finalize(m: SettlementHost, p: PeriodRow): Promise<Finalized> {
  const evidence = await gatherEvidence(m.db, p, m.deps.config.health_timeout_ms);
  const decision = decide(evidence);
  const r = await m.deps.ledger.submit(finalizeOp(p.lease_id, p.period, p.user_id, p.provider, decision));
  return { ...r, lease_id: p.lease_id, period: p.period };
}

export async function finalizePeriod(m: SettlementHost, index: number): Promise<Finalized[]> {
  const rows = await m.db
    .selectFrom('market_lease_periods')
    .selectAll()
    .where('period', '=', index)
    .orderBy('lease_id')
    .execute();
  const locked = rows.filter((r) => r.status === 'locked');
  const out: Finalized[] = [];
  // In slices: each lease-period is one ledger operation, and the writer's queue is bounded.
  for (let i = 0; i < locked.length; i += FINALIZE_SLICE)
    out.push(...(await Promise.all(locked.slice(i, i + FINALIZE_SLICE).map((r) => finalize(m, r)))));
  for (const r of rows.filter((x) => x.status !== 'locked')) {
    out.push({
      lease_id: r.lease_id,
      period: r.period,
      status: r.status as 'posted' | 'voided' | 'expired',
      reasons: JSON.parse(r.reasons ?? '[]') as string[],
      already: true,
    });
  }
  void m.refreshRanking();
  return out.sort((a, b) => (a.lease_id < b.lease_id ? -1 : 1));
}

/** Locks the current period of every active lease that has not locked it yet (or ends the lease). */
export async function renewDue(m: SettlementHost, limit: number): Promise<number> {
  const index = periodIndex(m.now, m.timing.period_ms);
  await m.refreshRemoteLive();
  const due = (await m.db
    .selectFrom('market_leases')
    .innerJoin('market_nodes', 'market_nodes.id', 'market_leases.node_id')
    .select(['market_leases.id', 'market_leases.user_id', 'market_nodes.provider'])
    .where('market_leases.status', '=', 'active')
    .where('market_leases.last_period', '<', index)
    .limit(limit)
    .execute()) as { id: string; user_id: string; provider: string }[];
  const eligible = (node_id: string) => m.liveEligible(node_id);
  await Promise.all(
    due.map((l) => m.deps.ledger.submit(renewOp(l.id, l.user_id, l.provider, index, m.timing, eligible))),
  );
  return due.length;
}

/** Finalizes every locked lease-period whose period ended more than EE_SETTLEMENT_DELAY ago. */
export async function finalizeDue(m: SettlementHost, limit: number): Promise<number> {
  const rows = await m.db
    .selectFrom('market_lease_periods')
    .selectAll()
    .where('status', '=', 'locked')
    .where('to_ms', '<=', m.now - m.deps.config.settlement_delay_ms)
    .orderBy('to_ms')
    .limit(limit)
    .execute();
  await Promise.all(rows.map((r) => finalize(m, r)));
  if (rows.length > 0) void m.refreshRanking();
  return rows.length;
}

/** The outage threshold of a tier (how long all of a node's agents may be down before it is slashed). */
function outageThresholdMs(c: ControlPlaneConfig, tier: string): number {
  return tier === 'premium'
    ? c.outage_threshold_premium_ms
    : tier === 'standard'
      ? c.outage_threshold_standard_ms
      : c.outage_threshold_economy_ms;
}

/**
 * Outage slashing: a staked node with an active lease whose agents have all been down (disconnected, or
 * connected without a passing health report) longer than its tier's threshold is slashed its tier penalty,
 * once per outage (the id names the outage's start, taken from the records, so every replica agrees).
 */
export async function slashOutages(m: SettlementHost): Promise<number> {
  const nodes = await m.db
    .selectFrom('market_nodes')
    .selectAll()
    .where('status', '=', 'active')
    .where('id', 'in', (eb) => eb.selectFrom('market_leases').select('node_id').where('status', '=', 'active'))
    .execute();
  let slashed = 0;
  for (const n of nodes) {
    if (m.live(n.id).healthy > 0) continue;
    const agents = (await m.db
      .selectFrom('market_node_agents')
      .innerJoin('agents', 'agents.agent_id', 'market_node_agents.agent_id')
      .select([
        'agents.connected',
        'agents.health_status',
        'agents.last_health_pass_ms',
        'agents.last_connected_ms',
        'agents.last_disconnected_ms',
        'agents.first_seen_ms',
      ])
      .where('market_node_agents.node_id', '=', n.id)
      .execute()) as {
      connected: number;
      health_status: string | null;
      last_health_pass_ms: number | null;
      last_connected_ms: number;
      last_disconnected_ms: number | null;
      first_seen_ms: number;
    }[];
    if (agents.length === 0) continue;
    const since = Math.max(
      ...agents.map((a) =>
        a.connected === 1
          ? Math.max(a.last_health_pass_ms ?? 0, a.last_connected_ms)
          : (a.last_disconnected_ms ?? a.first_seen_ms),
      ),
    );
    const threshold = outageThresholdMs(m.deps.config, n.tier);
    if (m.now - since <= threshold) continue;
    const r = await m.deps.ledger.submit(
      slashOp(
        n.id,
        n.provider,
        `slash:outage:${n.id}:${since}`,
        slashAmount(BigInt(n.price_micro), n.vcpus, n.tier as Tier),
        'outage',
        `outage since ${new Date(since).toISOString()} exceeded the ${n.tier} threshold of ${Math.round(threshold / 1000)} s`,
      ),
    );
    if (r.outcome === 'slashed') slashed++;
  }
  if (slashed > 0) await m.refreshRanking();
  return slashed;
}
