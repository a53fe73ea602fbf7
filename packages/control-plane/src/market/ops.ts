// Every market mutation that moves money is one LedgerOp (ledger-store/batch.ts): `prepare` reads and locks the
// market rows it depends on inside the ledger's transaction, `apply` runs the pure engine, and the market rows
// are written by `writes.after` in the same transaction — money and market state commit together or not at all.
import { createTransfers } from '../ledger/engine.js';
import { providerEarnings, providerStake } from '../ledger/chart.js';
import { availableBalance } from '../ledger/accounts.js';
import { transferRefusal, type Refusal, type TransferRefusalCode } from '../ledger/refusal.js';
import type { LedgerState, TransferInput } from '../ledger/types.js';
import type { ApplyContext, LedgerOp } from '../ledger-store/batch.js';
import type { StoreDialect } from '../store/migrations.js';
import { lockFor, lockId, periodEnd, periodIndex, refundId, settleId } from './period.js';
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
function lockInput(
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

// ---------- Stake / unstake ----------

export type StakeResult = { ok: true; held: bigint; node: NodeRow } | MarketRefusal;

export function stakeOp<T>(
  node_id: string,
  provider: string,
  amount: bigint,
  transfer_id: string,
  then: (r: StakeResult, ctx: ApplyContext) => T,
): LedgerOp<T> {
  let node: NodeRow | undefined;
  return {
    accounts: [providerEarnings(provider), providerStake(provider)],
    transfers: [transfer_id],
    async prepare(tx, d) {
      node = (await lockNodes(tx, d, [node_id])).get(node_id);
    },
    apply(ctx) {
      if (!node) return then({ ok: false, code: 'unknown_node' }, ctx);
      if (node.status === 'banned') return then({ ok: false, code: 'node_banned' }, ctx);
      const [r] = createTransfers(
        ctx.state,
        [
          {
            id: transfer_id,
            debit_account: providerEarnings(provider),
            credit_account: providerStake(provider),
            amount,
            memo: `stake ${node_id}`,
          },
        ],
        ctx.now_ms,
      );
      if (r !== 'ok' && r !== 'exists') return then(transferRefusal(r!), ctx);
      return then({ ok: true, held: stakeHeld(ctx.state, provider), node }, ctx);
    },
  };
}

export const stakeHeld = (state: LedgerState, provider: string): bigint => balance(state, providerStake(provider));

export function unstakeOp<T>(
  node_id: string,
  provider: string,
  amount: bigint | undefined,
  transfer_id: string,
  cooldown_ms: number,
  then: (r: StakeResult & { amount?: bigint }, ctx: ApplyContext) => T,
): LedgerOp<T> {
  let node: NodeRow | undefined;
  let open = 0;
  let lastEnd = 0;
  return {
    accounts: [providerEarnings(provider), providerStake(provider)],
    transfers: [transfer_id],
    async prepare(tx, d) {
      // Stake is per provider, so a lock made on ANY of the provider's nodes must be seen by the count below:
      // lock all of them (lease creation and renewal lock their node first). Locking only this node let a lease
      // on a sibling node commit after the count and before the ledger's account locks: both succeeded.
      const ids = (await tx.selectFrom('market_nodes').select('id').where('provider', '=', provider).execute()).map(
        (r: { id: string }) => r.id,
      );
      node = (await lockNodes(tx, d, [...new Set([node_id, ...ids])])).get(node_id);
      const r = await tx
        .selectFrom('market_lease_periods')
        .select((eb) => [
          eb.fn.count<number>('lease_id').filterWhere('status', '=', 'locked').as('open'),
          eb.fn.max<number>('to_ms').as('last'),
        ])
        .where('provider', '=', provider)
        .executeTakeFirst();
      open = Number(r?.open ?? 0);
      lastEnd = Number(r?.last ?? 0);
    },
    apply(ctx) {
      const fail = (code: MarketRefusalCode, message?: string) =>
        then(message === undefined ? { ok: false, code } : { ok: false, code, message }, ctx);
      if (!node) return fail('unknown_node');
      const prior = ctx.state.transfers.get(transfer_id);
      if (prior) {
        // A retry of an unstake that committed: same accounts and, when given, the same amount — or a conflict.
        const same =
          prior.debit_account === providerStake(provider) &&
          prior.credit_account === providerEarnings(provider) &&
          (amount === undefined || prior.amount === amount);
        if (!same) return fail('transfer_conflict', 'this Idempotency-Key was already used for a different unstake');
        return then({ ok: true, held: stakeHeld(ctx.state, provider), node, amount: prior.amount }, ctx);
      }
      if (open > 0) return fail('open_periods', `the provider has ${open} locked period(s) not yet settled`);
      if (ctx.now_ms < lastEnd + cooldown_ms) {
        return fail(
          'cooldown',
          `unstake is possible from ${new Date(lastEnd + cooldown_ms).toISOString()} (EE_UNSTAKE_COOLDOWN after the last period)`,
        );
      }
      const held = stakeHeld(ctx.state, provider);
      const take = amount ?? held;
      if (take <= 0n) return fail('nothing_staked');
      if (take > held) return fail('insufficient_stake');
      const [r] = createTransfers(
        ctx.state,
        [
          {
            id: transfer_id,
            debit_account: providerStake(provider),
            credit_account: providerEarnings(provider),
            amount: take,
            memo: `unstake ${node_id}`,
          },
        ],
        ctx.now_ms,
      );
      if (r !== 'ok' && r !== 'exists') return then(transferRefusal(r!), ctx);
      return then({ ok: true, held: stakeHeld(ctx.state, provider), node, amount: take }, ctx);
    },
  };
}

// ---------- Leases ----------

export interface NewLease {
  lease_id: string;
  user_id: string;
  app_name: string;
  vcpus: number;
  periods: number | null;
  /** Candidate nodes, best first (routing order); the first that is still eligible inside the transaction wins. */
  candidates: readonly { id: string; provider: string }[];
}

export type LeaseResult = { ok: true; lease: LeaseRow; period: PeriodRow } | MarketRefusal;

/** Creates a lease and locks its first (prorated) period, re-checking each candidate node under its row lock. */
export function createLeaseOp<T>(
  l: NewLease,
  t: MarketTiming,
  liveEligible: (node_id: string) => boolean,
  then: (r: LeaseResult, ctx: ApplyContext) => T,
): LedgerOp<T> {
  let nodes = new Map<string, NodeRow>();
  let required = new Map<string, bigint>();
  const used = new Map<string, number>();
  let existing: { lease: LeaseRow; period: PeriodRow | undefined } | undefined;
  return {
    accounts: [l.user_id, ...l.candidates.flatMap((c) => [providerEarnings(c.provider), providerStake(c.provider)])],
    transfers: [],
    async prepare(tx, d, now_ms) {
      // The id comes from the caller's Idempotency-Key: a retry after its record expired finds the lease here.
      const lease = await tx.selectFrom('market_leases').selectAll().where('id', '=', l.lease_id).executeTakeFirst();
      existing = lease && {
        lease,
        period: await tx
          .selectFrom('market_lease_periods')
          .selectAll()
          .where('lease_id', '=', lease.id)
          .where('period', '=', lease.first_period)
          .executeTakeFirst(),
      };
      if (existing) return;
      nodes = await lockNodes(
        tx,
        d,
        l.candidates.map((c) => c.id),
      );
      required = await providerRequirements(
        tx,
        [...nodes.values()].map((n) => n.provider),
      );
      used.clear();
      if (nodes.size === 0) return;
      const rows = await tx
        .selectFrom('market_leases')
        .select(['node_id', (eb) => eb.fn.sum<number>('vcpus').as('vcpus')])
        .where('status', '=', 'active')
        .where('node_id', 'in', [...nodes.keys()])
        .groupBy('node_id')
        .execute();
      for (const r of rows) used.set(r.node_id, Number(r.vcpus));
      // The first period's lock: its id names the period `apply` will see (the batch's clock).
      return { transfers: [lockId(l.lease_id, periodIndex(now_ms, t.period_ms))] };
    },
    apply(ctx) {
      if (existing) {
        const e = existing.lease;
        const same =
          e.user_id === l.user_id && e.app_name === l.app_name && e.vcpus === l.vcpus && e.periods === l.periods;
        if (!same || !existing.period) return then({ ok: false, code: 'lease_conflict' }, ctx);
        return then({ ok: true, lease: e, period: existing.period }, ctx);
      }
      let lastError: LeaseResult = {
        ok: false,
        code: 'no_eligible_node',
        message: `no eligible node serves "${l.app_name}" with ${l.vcpus} free vCPUs`,
      };
      for (const c of l.candidates) {
        const node = nodes.get(c.id);
        if (!node || node.status !== 'active' || !liveEligible(node.id)) continue;
        if (stakeHeld(ctx.state, node.provider) < (required.get(node.provider) ?? 0n)) continue;
        if ((used.get(node.id) ?? 0) + l.vcpus > node.vcpus) continue;
        const index = periodIndex(ctx.now_ms, t.period_ms);
        const lock = lockFor(BigInt(node.price_micro), l.vcpus, index, t.period_ms, ctx.now_ms);
        const [r] = createTransfers(
          ctx.state,
          [lockInput(l.lease_id, index, l.user_id, node.provider, lock.amount, ctx.now_ms, t)],
          ctx.now_ms,
        );
        if (r !== 'ok') {
          lastError = transferRefusal(r!);
          if (r === 'exceeds_credits') return then(lastError, ctx);
          continue;
        }
        const lease: LeaseRow = {
          id: l.lease_id,
          user_id: l.user_id,
          app_name: l.app_name,
          node_id: node.id,
          vcpus: l.vcpus,
          price_micro: node.price_micro,
          periods: l.periods,
          periods_locked: 1,
          first_period: index,
          last_period: index,
          status: 'active',
          end_reason: null,
          created_ms: ctx.now_ms,
          ended_ms: null,
        };
        const period: PeriodRow = {
          lease_id: l.lease_id,
          period: index,
          node_id: node.id,
          provider: node.provider,
          user_id: l.user_id,
          app_name: l.app_name,
          from_ms: lock.from_ms,
          to_ms: lock.to_ms,
          amount: Number(lock.amount),
          status: 'locked',
          reasons: null,
          finalized_ms: null,
        };
        ctx.writes.after.push(async (tx) => {
          await tx.insertInto('market_leases').values(lease).execute();
          await tx.insertInto('market_lease_periods').values(period).execute();
        });
        return then({ ok: true, lease, period }, ctx);
      }
      return then(lastError, ctx);
    },
  };
}

export type RenewResult =
  { outcome: 'renewed'; period: PeriodRow } | { outcome: 'ended'; reason: string } | { outcome: 'noop' };

/** At the start of `index`: lock the next period, or end the lease (done, node ineligible, or unfunded). */
export function renewOp(
  lease_id: string,
  user_id: string,
  provider: string,
  index: number,
  t: MarketTiming,
  liveEligible: (node_id: string) => boolean,
): LedgerOp<RenewResult> {
  let lease: LeaseRow | undefined;
  let node: NodeRow | undefined;
  let required = 0n;
  return {
    accounts: [user_id, providerEarnings(provider), providerStake(provider)],
    transfers: [lockId(lease_id, index)],
    async prepare(tx, d) {
      // The node row first, then the lease's (a lease's node never changes, so it is read unlocked): every
      // operation locks market rows node → lease → lease-period. Lease-then-node deadlocked against fraud,
      // which holds the node and ends the node's leases.
      const node_id = (
        await tx.selectFrom('market_leases').select('node_id').where('id', '=', lease_id).executeTakeFirst()
      )?.node_id;
      node = node_id === undefined ? undefined : (await lockNodes(tx, d, [node_id])).get(node_id);
      lease = node
        ? await forUpdate(tx.selectFrom('market_leases').selectAll().where('id', '=', lease_id), d).executeTakeFirst()
        : undefined;
      required = node ? ((await providerRequirements(tx, [node.provider])).get(node.provider) ?? 0n) : 0n;
    },
    apply(ctx) {
      if (!lease || !node || lease.status !== 'active' || lease.last_period >= index) return { outcome: 'noop' };
      const l = lease;
      const end = (reason: string): RenewResult => {
        ctx.writes.after.push(async (tx) => {
          await tx
            .updateTable('market_leases')
            .set({ status: 'ended', end_reason: reason, ended_ms: ctx.now_ms })
            .where('id', '=', l.id)
            .where('status', '=', 'active')
            .execute();
        });
        return { outcome: 'ended', reason };
      };
      if (l.periods !== null && l.periods_locked >= l.periods) return end('completed');
      if (node.status !== 'active') return end('node_banned');
      if (stakeHeld(ctx.state, node.provider) < required || !liveEligible(node.id)) return end('node_ineligible');
      const lock = lockFor(BigInt(l.price_micro), l.vcpus, index, t.period_ms, ctx.now_ms);
      const [r] = createTransfers(
        ctx.state,
        [lockInput(l.id, index, l.user_id, node.provider, lock.amount, ctx.now_ms, t)],
        ctx.now_ms,
      );
      if (r === 'exceeds_credits') return end('insufficient_funds');
      if (r !== 'ok') return { outcome: 'noop' };
      const period: PeriodRow = {
        lease_id: l.id,
        period: index,
        node_id: node.id,
        provider: node.provider,
        user_id: l.user_id,
        app_name: l.app_name,
        from_ms: lock.from_ms,
        to_ms: lock.to_ms,
        amount: Number(lock.amount),
        status: 'locked',
        reasons: null,
        finalized_ms: null,
      };
      ctx.writes.after.push(async (tx) => {
        await tx.insertInto('market_lease_periods').values(period).execute();
        await tx
          .updateTable('market_leases')
          .set({ last_period: index, periods_locked: l.periods_locked + 1 })
          .where('id', '=', l.id)
          .execute();
      });
      return { outcome: 'renewed', period };
    },
  };
}

// ---------- Settlement ----------

export type FinalizeResult =
  { status: 'posted' | 'voided' | 'expired'; reasons: string[]; already: boolean } | { status: 'unknown' };

/** Posts (`settle:`) or voids (`refund:`) one lease-period's lock; a second run finds it resolved and changes nothing. */
export function finalizeOp(
  lease_id: string,
  index: number,
  user_id: string,
  provider: string,
  decision: { outcome: 'post' | 'void'; reasons: string[] },
): LedgerOp<FinalizeResult> {
  let row: PeriodRow | undefined;
  return {
    accounts: [user_id, providerEarnings(provider)],
    transfers: [lockId(lease_id, index), settleId(lease_id, index), refundId(lease_id, index)],
    async prepare(tx, d) {
      row = await forUpdate(
        tx.selectFrom('market_lease_periods').selectAll().where('lease_id', '=', lease_id).where('period', '=', index),
        d,
      ).executeTakeFirst();
    },
    apply(ctx) {
      if (!row) return { status: 'unknown' };
      if (row.status !== 'locked')
        return { status: row.status, reasons: row.reasons ? (JSON.parse(row.reasons) as string[]) : [], already: true };
      const post = decision.outcome === 'post';
      const input: TransferInput = {
        id: post ? settleId(lease_id, index) : refundId(lease_id, index),
        debit_account: row.user_id,
        credit_account: providerEarnings(row.provider),
        pending_id: lockId(lease_id, index),
        flags: post ? { post_pending: true } : { void_pending: true },
      };
      const [r] = createTransfers(ctx.state, [input], ctx.now_ms);
      let status: 'posted' | 'voided' | 'expired';
      let reasons = decision.reasons;
      if (r === 'ok' || r === 'exists') status = post ? 'posted' : 'voided';
      else if (r === 'pending_transfer_already_posted') status = 'posted';
      else if (r === 'pending_transfer_already_voided') status = 'voided';
      else if (r === 'pending_transfer_expired') {
        status = 'expired';
        reasons = ['grace_expired'];
      } else throw new Error(`market: finalize ${lease_id}/${index}: ${r}`);
      const id = row.lease_id;
      ctx.writes.after.push(async (tx) => {
        await tx
          .updateTable('market_lease_periods')
          .set({ status, reasons: JSON.stringify(reasons), finalized_ms: ctx.now_ms })
          .where('lease_id', '=', id)
          .where('period', '=', index)
          .where('status', '=', 'locked')
          .execute();
      });
      return { status, reasons, already: r !== 'ok' };
    },
  };
}
