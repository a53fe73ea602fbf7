// Shared pieces of the market's ledger operations (ops.ts, ops-stake.ts, ops-penalty.ts, ops-reservation.ts,
// jobs/ops.ts): row types, row locks, provider stake requirements, the refusal codes and the period lock.
import { providerEarnings, providerStake } from '../ledger/chart.js';
import { availableBalance } from '../ledger/accounts.js';
import type { Refusal, TransferRefusalCode } from '../ledger/refusal.js';
import type { LedgerState, TransferInput } from '../ledger/types.js';
import type { StoreDialect } from '../store/migrations.js';
import { lockId, periodEnd } from './period.js';
import { requiredStake, type Tier } from './policy.js';
import type { Tx } from '../store/database.js';
import type { MarketLeasePeriodsTable, MarketLeasesTable, MarketNodesTable } from './store/schema.js';
export type NodeRow = MarketNodesTable;
export type LeaseRow = MarketLeasesTable;
export type PeriodRow = MarketLeasePeriodsTable;

export const forUpdate = <Q extends { forUpdate(): Q }>(q: Q, d: StoreDialect): Q =>
  d === 'postgres' ? q.forUpdate() : q;

/** What `account` can spend in the batch's working set (0 when it does not exist). */
export function balance(state: LedgerState, account: string): bigint {
  const a = state.accounts.get(account);
  return a ? availableBalance(a) : 0n;
}

/** The codes the market's operations refuse with (the HTTP layer's catalogue maps them to statuses). */
export type MarketRefusalCode =
  | TransferRefusalCode
  | 'unknown_node'
  | 'node_banned'
  | 'open_periods'
  | 'cooldown'
  | 'nothing_staked'
  | 'insufficient_stake'
  | 'lease_conflict'
  | 'no_eligible_node'
  | 'payout_resolved'
  | 'reservation_conflict';
export type MarketRefusal = Refusal<MarketRefusalCode>;

export async function lockNodes(tx: Tx, d: StoreDialect, ids: readonly string[]): Promise<Map<string, NodeRow>> {
  if (ids.length === 0) return new Map();
  const rows: NodeRow[] = await forUpdate(
    tx
      .selectFrom('market_nodes')
      .selectAll()
      .where('id', 'in', [...ids])
      .orderBy('id'),
    d,
  ).execute();
  return new Map(rows.map((r) => [r.id, r]));
}

/**
 * Stake is held per provider (chart of accounts: provider:{id}:stake), so it must cover the required stake of
 * every active node of the provider together. Read inside the transaction, under the node row locks.
 */
export async function providerRequirements(tx: Tx, providers: readonly string[]): Promise<Map<string, bigint>> {
  const out = new Map<string, bigint>();
  if (providers.length === 0) return out;
  const rows: NodeRow[] = await tx
    .selectFrom('market_nodes')
    .selectAll()
    .where('provider', 'in', [...new Set(providers)])
    .where('status', '=', 'active')
    .execute();
  for (const r of rows)
    out.set(r.provider, (out.get(r.provider) ?? 0n) + requiredStake(BigInt(r.price_micro), r.vcpus, r.tier as Tier));
  return out;
}

export interface MarketTiming {
  period_ms: number;
  grace_ms: number;
}

/** A pending lock of `amount` from the user to the provider, expiring at the period's end + grace. */
export function lockInput(
  lease: string,
  index: number,
  user: string,
  provider: string,
  amount: bigint,
  now_ms: number,
  t: MarketTiming,
): TransferInput {
  return {
    id: lockId(lease, index),
    debit_account: user,
    credit_account: providerEarnings(provider),
    amount,
    flags: { pending: true },
    timeout_ms: Math.max(1, periodEnd(index, t.period_ms) + t.grace_ms - now_ms),
    reference: `lease:${lease}`,
  };
}

/** The provider's stake in the batch's working set. */
export const stakeHeld = (state: LedgerState, provider: string): bigint => balance(state, providerStake(provider));

/** The row of a newly locked lease-period (lease creation and renewal write the same shape). */
export function lockedPeriodRow(
  lease: { id: string; user_id: string; app_name: string },
  index: number,
  node: NodeRow,
  lock: { amount: bigint; from_ms: number; to_ms: number },
): PeriodRow {
  return {
    lease_id: lease.id,
    period: index,
    node_id: node.id,
    provider: node.provider,
    user_id: lease.user_id,
    app_name: lease.app_name,
    from_ms: lock.from_ms,
    to_ms: lock.to_ms,
    amount: Number(lock.amount),
    status: 'locked',
    reasons: null,
    finalized_ms: null,
  };
}
