// Every market mutation that moves money is one LedgerOp (ledger-store/batch.ts): `prepare` reads and locks the
// market rows it depends on inside the ledger's transaction, `apply` runs the pure engine, and the market rows
// are written by `writes.after` in the same transaction — money and market state commit together or not at all.
// Leases (create, renew) and settlement live here; the shared pieces are in ops-common.ts and stake in
// ops-stake.ts, re-exported below so callers keep importing from ops.js.
import { createTransfers } from '../ledger/engine.js';
import { providerEarnings, providerStake } from '../ledger/chart.js';
import { transferRefusal } from '../ledger/refusal.js';
import type { TransferInput } from '../ledger/types.js';
import type { ApplyContext, ExtraWrites, LedgerOp } from '../ledger-store/batch.js';
import type { Tx } from '../store/database.js';
import { lockFor, lockId, periodIndex, refundId, settleId } from './period.js';
import {
  forUpdate,
  lockedPeriodRow,
  lockInput,
  lockNodes,
  providerRequirements,
  stakeHeld,
  type LeaseRow,
  type MarketRefusal,
  type MarketTiming,
  type NodeRow,
  type PeriodRow,
} from './ops-common.js';

export * from './ops-common.js';
export * from './ops-stake.js';

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

/**
 * A check the caller adds to the lease's own vCPU count, made under the candidates' row locks in the same
 * transaction (a deployment: its launcher's room beside the node's jobs and deployments).
 */
export interface LeaseRoom {
  /** Reads what the locked candidate nodes hold (inside the transaction, after their rows are locked). */
  load(tx: Tx, node_ids: readonly string[]): Promise<void>;
  /** Whether the node has room for the lease now, counting earlier operations of the same batch. */
  fits(ctx: ApplyContext, node_id: string): boolean;
  /** The lease was placed on the node: later operations of the batch count it. */
  took(ctx: ApplyContext, node_id: string): void;
}

/**
 * vCPUs leased per node by earlier operations of the same group-commit batch. Their lease rows are written only
 * at the batch's end, so the per-node sum `prepare` reads does not see them; without this, leases created in
 * one batch could overcommit a node. One batch has one `writes` object.
 */
const leasedInBatch = new WeakMap<ExtraWrites, Map<string, number>>();
function batchLeases(ctx: ApplyContext): Map<string, number> {
  let m = leasedInBatch.get(ctx.writes);
  if (m === undefined) leasedInBatch.set(ctx.writes, (m = new Map()));
  return m;
}

/** Creates a lease and locks its first (prorated) period, re-checking each candidate node under its row lock. */
export function createLeaseOp<T>(
  l: NewLease,
  t: MarketTiming,
  liveEligible: (node_id: string) => boolean,
  then: (r: LeaseResult, ctx: ApplyContext) => T,
  room?: LeaseRoom,
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
      await room?.load(tx, [...nodes.keys()]);
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
        const inBatch = batchLeases(ctx);
        if ((used.get(node.id) ?? 0) + (inBatch.get(node.id) ?? 0) + l.vcpus > node.vcpus) continue;
        if (room && !room.fits(ctx, node.id)) continue;
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
        const period = lockedPeriodRow(lease, index, node, lock);
        room?.took(ctx, node.id);
        inBatch.set(node.id, (inBatch.get(node.id) ?? 0) + l.vcpus);
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
      const period = lockedPeriodRow(l, index, node, lock);
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
