// Routing, slashing, fraud, payouts and unstake through HTTP with real agents (sandbox) and a manual clock:
// traffic and leases go to the cheapest eligible node and skip ineligible ones; an outage slash makes a node
// ineligible (and a slash clamps to the stake held); fraud takes the whole stake, bans the node and refunds
// every open lock in one step; payouts are pending until confirmed.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { ManualClock } from '@easyenclave/control-plane/clock';
import { slashOp } from '@easyenclave/control-plane/market/ops-penalty';
import type { ControlPlane } from '@easyenclave/control-plane/server';
import { closeAll, startCp, waitFor, type Backend } from '../helpers/network.js';
import { call } from '../ledger-http/client.js';
import {
  available,
  freshHealth,
  funded,
  MIN,
  nextPeriod,
  nodeAgent,
  registerNode,
  stake,
  T0,
  type Party,
} from './util.js';

const req = (price: number, vcpus: number, hours: number) => price * vcpus * hours;

describe('market: routing, slashing, fraud, payouts', () => {
  const clock = new ManualClock(T0 + 5 * MIN);
  let cp: ControlPlane;
  let base: string;
  const p: Record<string, Party> = {};
  const node: Record<string, string> = {};
  const backend: Record<string, Backend> = {};
  const hits: Record<string, number> = {};
  const agents: Record<string, { stop(ms?: number): Promise<void> }> = {};
  let u1: Party;
  let u2: Party;
  const live = () => ['A', 'B', 'C'].map((n) => node[n]!);

  before(async () => {
    cp = await startCp(
      { EE_HEALTH_TIMEOUT_SEC: '1800', EE_SETTLEMENT_DELAY: '30m', EE_OUTAGE_THRESHOLD_ECONOMY: '10m' },
      { clock },
    );
    base = cp.api_url;
    u1 = await funded(base, 'user', 'U1', '$50');
    u2 = await funded(base, 'user', 'U2', '$50');
    const spec: Record<string, { price: string; tier: string; app: string }> = {
      A: { price: '$0.05', tier: 'standard', app: 'shop' },
      B: { price: '$0.08', tier: 'standard', app: 'shop' },
      C: { price: '$0.03', tier: 'standard', app: 'shop' },
      D: { price: '$0.04', tier: 'economy', app: 'batch' },
    };
    for (const [k, s] of Object.entries(spec)) {
      p[k] = await funded(base, 'provider', `P${k}`, '$500');
      const r = await registerNode(base, p[k]!, { price_per_vcpu_hour: s.price, tier: s.tier });
      node[k] = r.node_id;
      const a = await nodeAgent(cp, r.node_token, s.app);
      backend[k] = a.backend;
      agents[k] = a.agent;
      hits[k] = 0;
      a.backend.server.on('request', () => {
        hits[k]! += 1;
      });
    }
    await freshHealth(cp, clock, [...live(), node.D!]);
    await stake(base, p.A!, node.A!, req(50_000, 4, 24));
    await stake(base, p.B!, node.B!, req(80_000, 4, 24));
    await stake(base, p.D!, node.D!, req(40_000, 4, 24));
    await cp.market.refreshRanking();
  });
  after(closeAll);

  const proxy = async (n: number) => {
    for (const k of Object.keys(hits)) hits[k] = 0;
    for (let i = 0; i < n; i++) {
      const r = await fetch(`${base}/v1/proxy/shop/echo`);
      assert.equal(r.status, 200, await r.text());
      await r.arrayBuffer().catch(() => undefined);
    }
    return { ...hits };
  };

  it('routes traffic and leases to the cheapest eligible node, skipping an ineligible cheaper one', async () => {
    const list = await call(base, 'GET', '/v1/nodes', {});
    assert.equal(list.status, 200);
    const byId = new Map(list.body.nodes.map((n: any) => [n.node_id, n]));
    assert.equal((byId.get(node.C) as any).eligible, false);
    assert.deepEqual((byId.get(node.C) as any).ineligible_reasons, ['stake_below_required']);
    assert.equal((byId.get(node.A) as any).effective_price_per_vcpu_hour_micro_usd, 50_000);
    const h = await proxy(8);
    assert.deepEqual([h.A, h.B, h.C], [8, 0, 0]);
    const l = await call(base, 'POST', '/v1/leases', { token: u1.key, body: { app: 'shop', vcpus: 2 } });
    assert.equal(l.status, 201, JSON.stringify(l.body));
    assert.equal(l.body.node_id, node.A);
    // Capacity: A has 4 vCPUs, 2 are leased; 3 more go to the next cheapest eligible node.
    const l2 = await call(base, 'POST', '/v1/leases', { token: u2.key, body: { app: 'shop', vcpus: 3 } });
    assert.equal(l2.body.node_id, node.B);
    assert.equal(
      (await call(base, 'DELETE', `/v1/leases/${l2.body.lease_id}`, { token: u2.key })).body.end_reason,
      'cancelled',
    );
    assert.equal((await call(base, 'GET', `/v1/leases/${l.body.lease_id}`, { token: u2.key })).status, 404);
  });

  it('an outage past the tier threshold slashes the tier penalty once and makes the node ineligible', async () => {
    const lease = await call(base, 'POST', '/v1/leases', { token: u1.key, body: { app: 'batch', vcpus: 1 } });
    assert.equal(lease.status, 201, JSON.stringify(lease.body));
    await agents.D!.stop(0);
    await waitFor(
      async () => (await cp.store.listAgents('batch')).every((a) => !a.connected),
      5000,
      'D to be disconnected',
    );
    clock.advance(11 * MIN);
    await freshHealth(cp, clock, live());
    await cp.scheduler.tick();
    await cp.scheduler.tick();
    const d = await call(base, 'GET', `/v1/nodes/${node.D}`, {});
    assert.equal(d.body.slashes.length, 1, JSON.stringify(d.body.slashes));
    assert.equal(d.body.slashes[0].amount_micro_usd, req(40_000, 4, 1)); // economy: 1 h of revenue
    assert.equal(d.body.stake.held_micro_usd, req(40_000, 4, 23));
    assert.equal(d.body.eligible, false);
    assert.ok(d.body.ineligible_reasons.includes('stake_below_required'));
    assert.equal(
      (await call(base, 'GET', '/v1/balances/platform:slash_pool', {})).body.available_micro_usd,
      req(40_000, 4, 1),
    );
    const none = await call(base, 'POST', '/v1/leases', { token: u1.key, body: { app: 'batch', vcpus: 1 } });
    assert.equal(none.status, 409);
    const open = await call(base, 'POST', `/v1/nodes/${node.D}/unstake`, { token: p.D!.key, body: {} });
    assert.equal(open.status, 409);
    assert.equal(open.body.error.code, 'open_periods');
  });

  it('a slash is clamped to the stake held', async () => {
    const r = await cp.ledger.submit(
      slashOp(node.D!, p.D!.id, 'slash:test:clamp', 10n ** 12n, 'outage', 'test: more than held'),
    );
    assert.deepEqual(r, { outcome: 'slashed', amount: BigInt(req(40_000, 4, 23)) });
    const d = await call(base, 'GET', `/v1/nodes/${node.D}`, {});
    assert.equal(d.body.stake.held_micro_usd, 0);
    const again = await cp.ledger.submit(slashOp(node.D!, p.D!.id, 'slash:test:clamp2', 1n, 'outage', 'nothing left'));
    assert.deepEqual(again, { outcome: 'nothing_held' });
  });

  it('fraud takes the whole stake, bans the node and refunds every open lock in one step; traffic fails over', async () => {
    const l2 = await call(base, 'POST', '/v1/leases', { token: u2.key, body: { app: 'shop', vcpus: 2 } });
    assert.equal(l2.body.node_id, node.A);
    await nextPeriod(cp, clock, live()); // period 2 locked; period 1 still awaits settlement (EE_SETTLEMENT_DELAY 30m)
    const before = {
      u1: await available(base, u1.id),
      u2: await available(base, u2.id),
      pool: (await call(base, 'GET', '/v1/balances/platform:slash_pool', {})).body.available_micro_usd,
    };
    const openLocks = await cp.market.db
      .selectFrom('market_lease_periods')
      .selectAll()
      .where('node_id', '=', node.A!)
      .where('status', '=', 'locked')
      .execute();
    assert.equal(openLocks.length, 4);
    const r = await call(base, 'POST', `/v1/nodes/${node.A}/fraud`, {
      body: { reason: 'quote contradicts registered PPID' },
    });
    assert.equal(r.status, 200, JSON.stringify(r.body));
    assert.equal(r.body.slashed_micro_usd, req(50_000, 4, 24));
    assert.equal(r.body.voided.length, 4);
    const refunded = (u: string) => openLocks.filter((x) => x.user_id === u).reduce((s, x) => s + Number(x.amount), 0);
    assert.equal(await available(base, u1.id), before.u1 + refunded(u1.id));
    assert.equal(await available(base, u2.id), before.u2 + refunded(u2.id));
    assert.equal(
      (await call(base, 'GET', '/v1/balances/platform:slash_pool', {})).body.available_micro_usd,
      before.pool + req(50_000, 4, 24),
    );
    const a = await call(base, 'GET', `/v1/nodes/${node.A}`, {});
    assert.equal(a.body.status, 'banned');
    assert.equal(a.body.stake.held_micro_usd, 0);
    assert.ok(a.body.ineligible_reasons.includes('banned'));
    const leases = await cp.market.db.selectFrom('market_leases').selectAll().where('node_id', '=', node.A!).execute();
    assert.ok(leases.every((l) => l.status === 'ended' && l.end_reason === 'node_banned'));
    assert.equal((await call(base, 'POST', `/v1/nodes/${node.A}/fraud`, { body: { reason: 'again' } })).status, 409);
    // Finalizing those periods later changes nothing: they are already voided.
    await call(base, 'POST', `/v1/settlements/${Math.floor(T0 / 3_600_000)}/finalize`, {});
    assert.equal(await available(base, u2.id), before.u2 + refunded(u2.id));
    // Traffic and leases now go to B (C is still unstaked); A's agent is gone and cannot come back.
    await freshHealth(cp, clock, [node.B!, node.C!]);
    const h = await proxy(5);
    assert.deepEqual([h.A, h.B, h.C], [0, 5, 0]);
    const l3 = await call(base, 'POST', '/v1/leases', { token: u1.key, body: { app: 'shop', vcpus: 1 } });
    assert.equal(l3.body.node_id, node.B);
    const stakeA = await call(base, 'POST', `/v1/nodes/${node.A}/stake`, { token: p.A!.key, body: { amount: '$1' } });
    assert.equal(stakeA.status, 409);
  });

  it('payouts are pending until confirmed, and cancelled ones return to earnings', async () => {
    const before = await available(base, p.B!.id);
    const r = await call(base, 'POST', '/v1/payouts', {
      body: { provider: p.B!.id, amount: '$10', reference: 'wire-1' },
      key: 'po-1',
    });
    assert.equal(r.status, 201, JSON.stringify(r.body));
    assert.equal(r.body.status, 'pending');
    assert.equal(await available(base, p.B!.id), before - 10_000_000);
    const c = await call(base, 'POST', `/v1/payouts/${r.body.payout_id}/confirm`, {});
    assert.equal(c.body.status, 'confirmed');
    assert.equal((await call(base, 'POST', `/v1/payouts/${r.body.payout_id}/cancel`, {})).status, 409);
    assert.equal((await call(base, 'GET', '/v1/balances/platform:payouts', {})).body.available_micro_usd, 10_000_000);
    const r2 = await call(base, 'POST', '/v1/payouts', { body: { provider: p.B!.id, amount: '$5' } });
    assert.equal((await call(base, 'POST', `/v1/payouts/${r2.body.payout_id}/cancel`, {})).body.status, 'cancelled');
    assert.equal(await available(base, p.B!.id), before - 10_000_000);
    assert.equal(
      (await call(base, 'POST', '/v1/payouts', { token: p.B!.key, body: { provider: p.B!.id, amount: '$5' } })).status,
      403,
    );
    const over = await call(base, 'POST', '/v1/payouts', { body: { provider: p.B!.id, amount: '$100000' } });
    assert.equal(over.status, 402);
  });

  it('authenticates every market endpoint', async () => {
    assert.equal((await call(base, 'POST', '/v1/nodes/register', { token: null, body: {} })).status, 401);
    assert.equal(
      (
        await call(base, 'POST', '/v1/nodes/register', {
          token: u1.key,
          body: { region: 'x', tier: 'standard', vcpus: 1, price_per_vcpu_hour: '$1' },
        })
      ).status,
      403,
    );
    assert.equal(
      (
        await call(base, 'POST', '/v1/nodes/register', {
          token: p.B!.key,
          body: { region: 'x', tier: 'gold', vcpus: 1 },
        })
      ).status,
      400,
    );
    assert.equal(
      (await call(base, 'POST', '/v1/leases', { token: p.B!.key, body: { app: 'shop', vcpus: 1 } })).status,
      403,
    );
    assert.equal((await call(base, 'POST', '/v1/abuse/reports', { body: { node: node.B, reason: 'x' } })).status, 403); // no EE_LAUNCHER_TOKEN here
    assert.equal(
      (await call(base, 'POST', '/v1/usage/report', { body: { node: node.B, period: 0, missed_checks: 0 } })).status,
      403,
    );
    assert.equal(
      (await call(base, 'POST', `/v1/nodes/${node.B}/stake`, { token: p.A!.key, body: { amount: '$1' } })).status,
      404,
    );
    assert.equal((await call(base, 'GET', `/v1/nodes/${node.B}`, { token: 'wrong' })).status, 401);
  });
});
