// Stake and unstake: provider money moved between its earnings and its stake account, one ledger operation each.
import { createTransfers } from '../ledger/engine.js';
import { providerEarnings, providerStake } from '../ledger/chart.js';
import { transferRefusal } from '../ledger/refusal.js';
import type { ApplyContext, LedgerOp } from '../ledger-store/batch.js';
import { lockNodes, stakeHeld, type MarketRefusal, type MarketRefusalCode, type NodeRow } from './ops-common.js';

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
