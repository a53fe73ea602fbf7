// Slashing, attestation fraud and provider payouts as LedgerOps (see ops.ts for the pattern).
import { createTransfers } from '../ledger/engine.js';
import { PLATFORM_PAYOUTS, PLATFORM_SLASH_POOL, providerEarnings, providerStake } from '../ledger/chart.js';
import type { TransferInput } from '../ledger/types.js';
import type { ApplyContext, LedgerOp } from '../ledger-store/batch.js';
import type { StoreDialect } from '../store/migrations.js';
import { lockId, refundId } from './period.js';
import { transferRefusal } from '../ledger/refusal.js';
import { stakeHeld, type MarketRefusal, type NodeRow, type PeriodRow } from './ops.js';

const forUpdate = <Q extends { forUpdate(): Q }>(q: Q, d: StoreDialect): Q => (d === 'postgres' ? q.forUpdate() : q);

export type SlashResult =
  | { outcome: 'slashed'; amount: bigint }
  | { outcome: 'already'; amount: bigint }
  | { outcome: 'nothing_held' }
  | { outcome: 'unknown_node' };

/**
 * A balancing transfer stake → platform:slash_pool of at most `amount` (clamped to the stake held). The id is
 * deterministic per event, so the same outage is slashed once however often (and wherever) it is detected.
 */
export function slashOp(
  node_id: string,
  provider: string,
  id: string,
  amount: bigint,
  kind: 'outage',
  reason: string,
): LedgerOp<SlashResult> {
  let node: NodeRow | undefined;
  return {
    accounts: [providerStake(provider), PLATFORM_SLASH_POOL],
    transfers: [id],
    async prepare(tx, d) {
      node = await forUpdate(tx.selectFrom('market_nodes').selectAll().where('id', '=', node_id), d).executeTakeFirst();
    },
    apply(ctx) {
      if (!node) return { outcome: 'unknown_node' };
      const existing = ctx.state.transfers.get(id);
      if (existing) return { outcome: 'already', amount: existing.amount };
      const [r] = createTransfers(
        ctx.state,
        [
          {
            id,
            debit_account: providerStake(provider),
            credit_account: PLATFORM_SLASH_POOL,
            amount,
            flags: { balancing_debit: true },
            memo: reason.slice(0, 200),
          },
        ],
        ctx.now_ms,
      );
      if (r !== 'ok') return { outcome: 'nothing_held' };
      const moved = ctx.state.transfers.get(id)!.amount;
      ctx.writes.after.push(async (tx) => {
        await tx
          .insertInto('market_slashes')
          .values({ id, node_id, kind, amount: Number(moved), reason: reason.slice(0, 500), at_ms: ctx.now_ms })
          .onConflict((oc) => oc.column('id').doNothing())
          .execute();
      });
      return { outcome: 'slashed', amount: moved };
    },
  };
}

export type FraudResult =
  | { outcome: 'banned'; slashed: bigint; voided: { lease_id: string; period: number; amount: bigint }[] }
  | { outcome: 'already_banned' }
  | { outcome: 'unknown_node' };

export const fraudSlashId = (node_id: string) => `slash:fraud:${node_id}`;

/**
 * Attestation fraud, in ONE transaction: the whole stake to the slash pool, every open lock of the node voided
 * back to its user (one linked chain: all or nothing), the node banned for good and its leases ended.
 */
export function fraudOp(node_id: string, reason: string): LedgerOp<FraudResult> {
  let node: NodeRow | undefined;
  let open: PeriodRow[] = [];
  return {
    accounts: [PLATFORM_SLASH_POOL],
    transfers: [fraudSlashId(node_id)],
    async prepare(tx, d) {
      node = await forUpdate(tx.selectFrom('market_nodes').selectAll().where('id', '=', node_id), d).executeTakeFirst();
      if (!node) return;
      open = await forUpdate(
        tx
          .selectFrom('market_lease_periods')
          .selectAll()
          .where('node_id', '=', node_id)
          .where('status', '=', 'locked')
          .orderBy('lease_id')
          .orderBy('period'),
        d,
      ).execute();
      return {
        accounts: [providerEarnings(node.provider), providerStake(node.provider), ...open.map((p) => p.user_id)],
        transfers: open.flatMap((p) => [lockId(p.lease_id, p.period), refundId(p.lease_id, p.period)]),
      };
    },
    apply(ctx) {
      if (!node) return { outcome: 'unknown_node' };
      if (node.status === 'banned') return { outcome: 'already_banned' };
      const n = node;
      const chain: TransferInput[] = [];
      const held = stakeHeld(ctx.state, n.provider);
      if (held > 0n) {
        chain.push({
          id: fraudSlashId(n.id),
          debit_account: providerStake(n.provider),
          credit_account: PLATFORM_SLASH_POOL,
          amount: held,
          flags: { balancing_debit: true },
          memo: `fraud ${n.id}`,
        });
      }
      const voided: { lease_id: string; period: number; amount: bigint }[] = [];
      const expired: PeriodRow[] = [];
      for (const p of open) {
        const lock = ctx.state.transfers.get(lockId(p.lease_id, p.period));
        const live =
          lock &&
          ctx.state.pending.get(lock.id) === 'pending' &&
          (lock.expires_at_ms === undefined || lock.expires_at_ms > ctx.now_ms);
        if (!live) {
          expired.push(p);
          continue;
        }
        chain.push({
          id: refundId(p.lease_id, p.period),
          debit_account: p.user_id,
          credit_account: providerEarnings(p.provider),
          pending_id: lock.id,
          flags: { void_pending: true },
          memo: 'fraud',
        });
        voided.push({ lease_id: p.lease_id, period: p.period, amount: lock.amount });
      }
      chain.forEach((t, i) => {
        if (i < chain.length - 1) t.flags = { ...t.flags, linked: true };
      });
      const results = chain.length > 0 ? createTransfers(ctx.state, chain, ctx.now_ms) : [];
      const bad = results.find((r) => r !== 'ok');
      // Every member was checked above; a failure here is a bug, and throwing aborts the whole transaction.
      if (bad !== undefined) throw new Error(`market: fraud chain for ${n.id} failed: ${bad}`);
      const slashed = held > 0n ? ctx.state.transfers.get(fraudSlashId(n.id))!.amount : 0n;
      const now = ctx.now_ms;
      ctx.writes.after.push(async (tx) => {
        await tx
          .updateTable('market_nodes')
          .set({ status: 'banned', banned_reason: reason.slice(0, 500), banned_ms: now })
          .where('id', '=', n.id)
          .execute();
        for (const v of voided) {
          await tx
            .updateTable('market_lease_periods')
            .set({ status: 'voided', reasons: JSON.stringify(['fraud']), finalized_ms: now })
            .where('lease_id', '=', v.lease_id)
            .where('period', '=', v.period)
            .execute();
        }
        for (const p of expired) {
          await tx
            .updateTable('market_lease_periods')
            .set({ status: 'expired', reasons: JSON.stringify(['grace_expired']), finalized_ms: now })
            .where('lease_id', '=', p.lease_id)
            .where('period', '=', p.period)
            .execute();
        }
        await tx
          .updateTable('market_leases')
          .set({ status: 'ended', end_reason: 'node_banned', ended_ms: now })
          .where('node_id', '=', n.id)
          .where('status', '=', 'active')
          .execute();
        if (slashed > 0n) {
          await tx
            .insertInto('market_slashes')
            .values({
              id: fraudSlashId(n.id),
              node_id: n.id,
              kind: 'fraud',
              amount: Number(slashed),
              reason: reason.slice(0, 500),
              at_ms: now,
            })
            .execute();
        }
      });
      return { outcome: 'banned', slashed, voided };
    },
  };
}

// ---------- Payouts ----------

export type PayoutResult = { ok: true; status: 'pending' | 'confirmed' | 'cancelled' } | MarketRefusal;

export const payoutLockId = (id: string) => `payout:${id}`;

/** A provider withdrawal: pending earnings → platform:payouts until confirmed (post) or cancelled (void). */
export function createPayoutOp<T>(
  id: string,
  provider: string,
  amount: bigint,
  reference: string | null,
  then: (r: PayoutResult, ctx: ApplyContext) => T,
): LedgerOp<T> {
  return {
    accounts: [providerEarnings(provider), PLATFORM_PAYOUTS],
    transfers: [payoutLockId(id)],
    apply(ctx) {
      const [r] = createTransfers(
        ctx.state,
        [
          {
            id: payoutLockId(id),
            debit_account: providerEarnings(provider),
            credit_account: PLATFORM_PAYOUTS,
            amount,
            flags: { pending: true },
            memo: 'payout',
          },
        ],
        ctx.now_ms,
      );
      if (r === 'exists') return then({ ok: true, status: 'pending' }, ctx);
      if (r !== 'ok') return then(transferRefusal(r!), ctx);
      ctx.writes.after.push(async (tx) => {
        await tx
          .insertInto('market_payouts')
          .values({
            id,
            provider,
            amount: Number(amount),
            status: 'pending',
            reference,
            created_ms: ctx.now_ms,
            resolved_ms: null,
          })
          .execute();
      });
      return then({ ok: true, status: 'pending' }, ctx);
    },
  };
}

export function resolvePayoutOp<T>(
  id: string,
  provider: string,
  confirm: boolean,
  then: (r: PayoutResult, ctx: ApplyContext) => T,
): LedgerOp<T> {
  const tid = `${confirm ? 'payout-confirm' : 'payout-cancel'}:${id}`;
  return {
    accounts: [providerEarnings(provider), PLATFORM_PAYOUTS],
    transfers: [payoutLockId(id), tid],
    apply(ctx) {
      const [r] = createTransfers(
        ctx.state,
        [
          {
            id: tid,
            debit_account: providerEarnings(provider),
            credit_account: PLATFORM_PAYOUTS,
            pending_id: payoutLockId(id),
            flags: confirm ? { post_pending: true } : { void_pending: true },
          },
        ],
        ctx.now_ms,
      );
      const status = confirm ? 'confirmed' : 'cancelled';
      if (r === 'exists') return then({ ok: true, status }, ctx);
      if (r === 'pending_transfer_already_posted' || r === 'pending_transfer_already_voided') {
        return then(
          {
            ok: false,
            code: 'payout_resolved',
            message: `the payout is already ${r === 'pending_transfer_already_posted' ? 'confirmed' : 'cancelled'}`,
          },
          ctx,
        );
      }
      if (r !== 'ok') return then(transferRefusal(r!), ctx);
      ctx.writes.after.push(async (tx) => {
        await tx.updateTable('market_payouts').set({ status, resolved_ms: ctx.now_ms }).where('id', '=', id).execute();
      });
      return then({ ok: true, status }, ctx);
    },
  };
}
