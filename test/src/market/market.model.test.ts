// Property-based model test of the market's money: random sequences of stake, lease (creation and renewal),
// finalize (post or void), slash, fraud, agents going up and down, and time passing (lock expiry), run through
// the real LedgerOps on a real LedgerStore (SQLite in memory). After every step: the ledger invariants on the
// full state loaded back from the database, and the market's own — no lock was ever made toward an ineligible
// node, a settled period paid exactly its lock or refunded exactly its lock, market rows agree with the ledger,
// a banned node holds no stake and no open lock, and the slash pool holds exactly what was slashed.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { identityAccountInputs, PLATFORM_SLASH_POOL } from '@easyenclave/control-plane/ledger/chart';
import { checkInvariants } from '@easyenclave/control-plane/ledger/invariants';
import { LedgerStore } from '@easyenclave/control-plane/ledger-store/ledger-store';
import { createLeaseOp, finalizeOp, renewOp, stakeOp } from '@easyenclave/control-plane/market/ops';
import { fraudOp, slashOp } from '@easyenclave/control-plane/market/ops-penalty';
import { lockId, periodIndex, refundId, settleId } from '@easyenclave/control-plane/market/period';
import { requiredStake, type Tier } from '@easyenclave/control-plane/market/policy';
import { MARKET_MIGRATIONS } from '@easyenclave/control-plane/market/store/migrations';
import type { Db as MarketDb } from '@easyenclave/control-plane/store/database';
import { openStore, runMigrations } from '@easyenclave/control-plane/store/index';
import { loadLedgerState } from '../helpers/ledger-state.js';
import { insertNode, mintTransfers } from '../helpers/market-rows.js';

const HOUR = 3_600_000;
const timing = { period_ms: HOUR, grace_ms: 6 * HOUR };
const USERS = ['user:00000000000000000001', 'user:00000000000000000002'];
const PROVIDERS = ['provider:0000000000000000000a', 'provider:0000000000000000000b', 'provider:0000000000000000000c'];
const NODES = PROVIDERS.map((p, i) => ({
  id: `node_000000000000000${i}`,
  provider: p,
  price: 1000 * (i + 1),
  vcpus: 4,
  tier: (['standard', 'economy', 'premium'] as Tier[])[i]!,
}));
const required = (n: (typeof NODES)[number]) => requiredStake(BigInt(n.price), n.vcpus, n.tier);

type Cmd =
  | { t: 'stake'; node: number; frac: number }
  | { t: 'lease'; user: number; vcpus: number; periods: number | null }
  | { t: 'live'; node: number; up: boolean }
  | { t: 'time'; ms: number }
  | { t: 'finalize'; post: boolean; pick: number }
  | { t: 'slash'; node: number; amount: number }
  | { t: 'fraud'; node: number };

const cmd: fc.Arbitrary<Cmd> = fc.oneof(
  {
    weight: 2,
    arbitrary: fc.record({ t: fc.constant('stake' as const), node: fc.nat(2), frac: fc.integer({ min: 1, max: 150 }) }),
  },
  { weight: 3, arbitrary: fc.record({ t: fc.constant('stake' as const), node: fc.nat(2), frac: fc.constant(100) }) },
  {
    weight: 5,
    arbitrary: fc.record({
      t: fc.constant('lease' as const),
      user: fc.nat(1),
      vcpus: fc.integer({ min: 1, max: 3 }),
      periods: fc.option(fc.integer({ min: 1, max: 4 }), { nil: null }),
    }),
  },
  { weight: 2, arbitrary: fc.record({ t: fc.constant('live' as const), node: fc.nat(2), up: fc.boolean() }) },
  { weight: 5, arbitrary: fc.record({ t: fc.constant('time' as const), ms: fc.integer({ min: 1, max: 4 * HOUR }) }) },
  { weight: 4, arbitrary: fc.record({ t: fc.constant('finalize' as const), post: fc.boolean(), pick: fc.nat(50) }) },
  {
    weight: 1,
    arbitrary: fc.record({
      t: fc.constant('slash' as const),
      node: fc.nat(2),
      amount: fc.integer({ min: 1, max: 200_000_000 }),
    }),
  },
  { weight: 1, arbitrary: fc.record({ t: fc.constant('fraud' as const), node: fc.nat(2) }) },
);

const seen = { leases: 0, renewals: 0, posted: 0, voided: 0, expired: 0, banned: 0, slashed: 0 };

test('market model: money moves only as locks, settlements, refunds, stake and slashes, with every invariant after every step', async () => {
  await fc.assert(
    fc.asyncProperty(fc.array(cmd, { minLength: 1, maxLength: 60, size: 'large' }), async (cmds) => {
      let now = Date.UTC(2026, 0, 1) + 17 * 60_000;
      const store = await openStore({ db_path: ':memory:' });
      const ledger = await LedgerStore.open(store.db, store.dialect, () => now);
      await runMigrations(store.db, store.dialect, MARKET_MIGRATIONS);
      const db = store.db as unknown as MarketDb;
      try {
        for (const id of [...USERS, ...PROVIDERS]) await ledger.createAccounts(identityAccountInputs(id));
        await ledger.createTransfers(
          mintTransfers(
            [...USERS, ...PROVIDERS],
            (i) => `mint:${i}`,
            () => 100_000_000n,
          ),
        );
        for (const n of NODES) {
          await insertNode(db, n, now);
        }
        const live = new Set<string>(NODES.map((n) => n.id));
        let slashed = 0n;
        let seq = 0;
        /** Eligibility as the model sees it, re-derived from the committed ledger and rows. */
        const eligibleNow = async (node_id: string) => {
          const n = NODES.find((x) => x.id === node_id)!;
          const row = await db
            .selectFrom('market_nodes')
            .select('status')
            .where('id', '=', node_id)
            .executeTakeFirstOrThrow();
          const a = await ledger.account(`${n.provider}:stake`);
          const held = a ? a.credits_posted - a.debits_posted - a.debits_pending : 0n;
          return row.status === 'active' && live.has(node_id) && held >= required(n);
        };

        // Every run starts with the three nodes staked (so leases happen); the random steps do the rest.
        const steps: Cmd[] = [...NODES.map((_, node): Cmd => ({ t: 'stake', node, frac: 100 })), ...cmds];
        for (const c of steps) {
          seq++;
          if (c.t === 'stake') {
            const n = NODES[c.node]!;
            await ledger.submit(
              stakeOp(n.id, n.provider, (required(n) * BigInt(c.frac)) / 100n, `stake:${seq}`, (r) => r),
            );
          } else if (c.t === 'live') {
            if (c.up) live.add(NODES[c.node]!.id);
            else live.delete(NODES[c.node]!.id);
          } else if (c.t === 'lease') {
            const eligibleBefore = new Map<string, boolean>();
            for (const n of NODES) eligibleBefore.set(n.id, await eligibleNow(n.id));
            const r = await ledger.submit(
              createLeaseOp(
                {
                  lease_id: `lease_${String(seq).padStart(16, '0')}`,
                  user_id: USERS[c.user]!,
                  app_name: 'app',
                  vcpus: c.vcpus,
                  periods: c.periods,
                  candidates: [...NODES].sort((a, b) => a.price - b.price),
                },
                timing,
                (id) => live.has(id),
                (x) => x,
              ),
            );
            if (r.ok) {
              seen.leases++;
              assert.ok(eligibleBefore.get(r.lease.node_id), `lock toward ineligible node ${r.lease.node_id}`);
              const cheaper = NODES.filter(
                (n) => n.price < NODES.find((x) => x.id === r.lease.node_id)!.price && eligibleBefore.get(n.id),
              );
              // A cheaper eligible node is skipped only when it is full.
              for (const n of cheaper) {
                const used = await db
                  .selectFrom('market_leases')
                  .select((eb) => eb.fn.sum<number>('vcpus').as('v'))
                  .where('node_id', '=', n.id)
                  .where('status', '=', 'active')
                  .where('id', '!=', r.lease.id)
                  .executeTakeFirst();
                assert.ok(
                  Number(used?.v ?? 0) + c.vcpus > n.vcpus,
                  'routing skipped a cheaper eligible node with room',
                );
              }
            }
          } else if (c.t === 'time') {
            now += c.ms;
            const index = periodIndex(now, HOUR);
            const due = await db
              .selectFrom('market_leases')
              .innerJoin('market_nodes', 'market_nodes.id', 'market_leases.node_id')
              .select(['market_leases.id', 'market_leases.user_id', 'market_leases.node_id', 'market_nodes.provider'])
              .where('market_leases.status', '=', 'active')
              .where('market_leases.last_period', '<', index)
              .execute();
            for (const l of due) {
              const wasEligible = await eligibleNow(l.node_id);
              const r = await ledger.submit(renewOp(l.id, l.user_id, l.provider, index, timing, (id) => live.has(id)));
              if (r.outcome === 'renewed') seen.renewals++;
              if (r.outcome === 'renewed') assert.ok(wasEligible, `renewal locked toward ineligible node ${l.node_id}`);
            }
          } else if (c.t === 'finalize') {
            const open = await db
              .selectFrom('market_lease_periods')
              .selectAll()
              .where('status', '=', 'locked')
              .orderBy('lease_id')
              .orderBy('period')
              .execute();
            const p = open[c.pick % Math.max(1, open.length)];
            if (p) {
              await ledger.submit(
                finalizeOp(p.lease_id, p.period, p.user_id, p.provider, {
                  outcome: c.post ? 'post' : 'void',
                  reasons: c.post ? [] : ['model'],
                }),
              );
              await ledger.submit(
                finalizeOp(p.lease_id, p.period, p.user_id, p.provider, {
                  outcome: c.post ? 'void' : 'post',
                  reasons: ['second run'],
                }),
              );
            }
          } else if (c.t === 'slash') {
            const n = NODES[c.node]!;
            const r = await ledger.submit(
              slashOp(n.id, n.provider, `slash:model:${seq}`, BigInt(c.amount), 'outage', 'model'),
            );
            if (r.outcome === 'slashed') {
              slashed += r.amount;
              seen.slashed++;
            }
          } else {
            const n = NODES[c.node]!;
            const r = await ledger.submit(fraudOp(n.id, 'model'));
            if (r.outcome === 'banned') {
              slashed += r.slashed;
              seen.banned++;
            }
          }

          // ---- invariants after every step ----
          const state = await loadLedgerState(db);
          assert.deepEqual(checkInvariants(state), []);
          const pool = state.accounts.get(PLATFORM_SLASH_POOL)!;
          assert.equal(pool.credits_posted - pool.debits_posted, slashed, 'slash pool = what was slashed');
          for (const p of await db.selectFrom('market_lease_periods').selectAll().execute()) {
            const lock = state.transfers.get(lockId(p.lease_id, p.period));
            assert.ok(
              lock && lock.flags.pending && lock.amount === BigInt(p.amount) && lock.debit_account === p.user_id,
              'every period has its lock',
            );
            const st = state.pending.get(lock.id);
            const settle = state.transfers.get(settleId(p.lease_id, p.period));
            const refund = state.transfers.get(refundId(p.lease_id, p.period));
            if (p.status !== 'locked') seen[p.status]++;
            if (p.status === 'posted')
              assert.ok(st === 'posted' && settle?.amount === lock.amount && !refund, 'posted pays exactly the lock');
            else if (p.status === 'voided')
              assert.ok(
                st === 'voided' && refund?.amount === lock.amount && !settle,
                'voided refunds exactly the lock',
              );
            else if (p.status === 'expired') assert.equal(st, 'expired');
            else assert.ok(st === 'pending' || st === 'expired', `locked period has ledger status ${st}`);
          }
          for (const n of await db.selectFrom('market_nodes').selectAll().where('status', '=', 'banned').execute()) {
            assert.equal(
              (
                await db
                  .selectFrom('market_lease_periods')
                  .select('lease_id')
                  .where('node_id', '=', n.id)
                  .where('status', '=', 'locked')
                  .execute()
              ).length,
              0,
              'a banned node has no open lock',
            );
            const a = state.accounts.get(`${n.provider}:stake`)!;
            assert.equal(a.credits_posted - a.debits_posted, 0n, 'a banned node holds no stake');
          }
        }
      } finally {
        await ledger.close();
        await store.close();
      }
    }),
    { numRuns: Number(process.env.EE_MODEL_RUNS ?? 60) },
  );
  // The generator must reach every kind of step, or the invariants above were checked on nothing.
  for (const [k, v] of Object.entries(seen)) assert.ok(v > 0, `no ${k} in any run: ${JSON.stringify(seen)}`);
});
