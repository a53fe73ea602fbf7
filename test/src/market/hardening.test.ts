// Hardening of the market API found in review: state checks run after the Idempotency-Key lookup (a retry
// always gets its first answer), late retries after the key record expired find what they created, fraud and
// finalize store their answers, bounds on periods, prices, nodes per provider and request nesting.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { ManualClock } from '@easyenclave/control-plane/clock';
import type { ControlPlane } from '@easyenclave/control-plane/server';
import { closeAll, startCp } from '../helpers/network.js';
import { call } from '../ledger-http/client.js';
import {
  freshHealth,
  funded,
  HOUR,
  LAUNCHER,
  MIN,
  nodeAgent,
  registerNode,
  stake,
  T0,
  UPTIME,
  type Party,
} from './util.js';

const PRICE = 50_000;

describe('market hardening', () => {
  const clock = new ManualClock(T0 + 5 * MIN);
  let cp: ControlPlane;
  let base: string;
  let provider: Party;
  let user: Party;
  let node: string;
  let agent: { stop(ms?: number): Promise<void> };

  before(async () => {
    cp = await startCp(
      {
        EE_HEALTH_TIMEOUT_SEC: '1800',
        EE_SETTLEMENT_DELAY: '30m',
        EE_LAUNCHER_TOKEN: LAUNCHER,
        EE_UPTIME_TOKEN: UPTIME,
      },
      { clock },
    );
    await cp.scheduler.stop();
    base = cp.api_url;
    provider = await funded(base, 'provider', 'P', '$500');
    user = await funded(base, 'user', 'U', '$50');
    const r = await registerNode(base, provider, { price_per_vcpu_hour_micro_usd: PRICE });
    node = r.node_id;
    agent = (await nodeAgent(cp, r.node_token, 'shop')).agent;
    await freshHealth(cp, clock, [node]);
    await stake(base, provider, node, PRICE * 4 * 24);
    await cp.market.refreshRanking();
  });
  after(closeAll);

  const forgetKeys = () => cp.ledger.db.deleteFrom('ee_idempotency').execute(); // as the 24 h prune would

  it('a lease retried with its key gets its first answer, even once the node is gone or the key record expired', async () => {
    const body = { app: 'shop', vcpus: 1 };
    const first = await call(base, 'POST', '/v1/leases', { token: user.key, body, key: 'lease-1' });
    assert.equal(first.status, 201, JSON.stringify(first.body));
    // After the record expired: the operation finds the lease its key created (no second lock, no 500).
    await forgetKeys();
    const late = await call(base, 'POST', '/v1/leases', { token: user.key, body, key: 'lease-1' });
    assert.equal(late.status, 201, JSON.stringify(late.body));
    assert.equal(late.body.lease_id, first.body.lease_id);
    const conflict = await call(base, 'POST', '/v1/leases', {
      token: user.key,
      body: { app: 'shop', vcpus: 2 },
      key: 'lease-1',
    });
    assert.equal(conflict.status, 400); // the stored record again: same key, different request
    await forgetKeys();
    const conflictLate = await call(base, 'POST', '/v1/leases', {
      token: user.key,
      body: { app: 'shop', vcpus: 2 },
      key: 'lease-1',
    });
    assert.equal(conflictLate.status, 409);
    assert.equal(conflictLate.body.error.code, 'lease_conflict');
    const leases = await cp.market.db.selectFrom('market_leases').select('id').where('user_id', '=', user.id).execute();
    assert.equal(leases.length, 1);
    const view = await call(base, 'GET', `/v1/leases/${first.body.lease_id}`, { token: user.key });
    assert.equal(view.body.lease_periods_total, 1);
    assert.equal(view.body.locked_micro_usd, first.body.lock.amount_micro_usd); // totals from SQL, not the listed page
    // With the node's agent gone, a retry still replays (before: 409 no_eligible_node, inviting a second lease).
    const again = await call(base, 'POST', '/v1/leases', { token: user.key, body, key: 'lease-2' });
    assert.equal(again.status, 201);
    await agent.stop(0);
    const replay = await call(base, 'POST', '/v1/leases', { token: user.key, body, key: 'lease-2' });
    assert.equal(replay.status, 201);
    assert.equal(replay.headers.get('idempotent-replayed'), 'true');
    assert.equal(replay.body.lease_id, again.body.lease_id);
  });

  it('finalize and fraud store their answers for retries with the same key', async () => {
    clock.set(T0 + 2 * HOUR);
    const period = new Date(T0).toISOString();
    const f1 = await call(base, 'POST', `/v1/settlements/${period}/finalize`, { key: 'fin-1' });
    assert.equal(f1.status, 200, JSON.stringify(f1.body));
    const f2 = await call(base, 'POST', `/v1/settlements/${period}/finalize`, { key: 'fin-1' });
    assert.equal(f2.headers.get('idempotent-replayed'), 'true');
    assert.deepEqual(f2.body, f1.body);
    const x1 = await call(base, 'POST', `/v1/nodes/${node}/fraud`, { key: 'fraud-1', body: { reason: 'test ruling' } });
    assert.equal(x1.status, 200, JSON.stringify(x1.body));
    const x2 = await call(base, 'POST', `/v1/nodes/${node}/fraud`, { key: 'fraud-1', body: { reason: 'test ruling' } });
    assert.equal(x2.status, 200);
    assert.equal(x2.headers.get('idempotent-replayed'), 'true');
    assert.deepEqual(x2.body, x1.body);
  });

  it('bounds: far periods, prices whose stake cannot be represented, deep request bodies', async () => {
    for (const [method, path, opts] of [
      ['GET', '/v1/settlements/999999999999', {}],
      ['POST', '/v1/settlements/999999999999/finalize', {}],
      ['POST', '/v1/usage/report', { token: UPTIME, body: { node, period: 999999999999, missed_checks: 0 } }],
      ['POST', '/v1/abuse/reports', { token: LAUNCHER, body: { node, period: '999999999999', reason: 'x' } }],
    ] as const) {
      const r = await call(base, method, path, opts);
      assert.equal(r.status, 400, `${method} ${path}: ${JSON.stringify(r.body)}`);
      assert.equal(r.body.error.code, 'invalid_period');
    }
    const pricey = await call(base, 'POST', '/v1/nodes/register', {
      token: provider.key,
      body: { region: 'eu', tier: 'premium', vcpus: 4096, price_per_vcpu_hour_micro_usd: 2 ** 52 },
    });
    assert.equal(pricey.status, 400);
    assert.equal(pricey.body.error.code, 'price_too_high');
    // Finalize takes no body, so a deep one reaches the idempotency hashing (before: a stack overflow, 500).
    const deep = `{"x":${'['.repeat(5000)}1${']'.repeat(5000)}}`;
    const r = await call(base, 'POST', `/v1/settlements/${new Date(T0).toISOString()}/finalize`, {
      key: 'deep-1',
      raw: deep,
    });
    assert.equal(r.status, 400, JSON.stringify(r.body));
    assert.match(r.body.error.message, /nests deeper than 16/);
  });

  it('a late unstake retry is checked against what its key did; a different unstake is a conflict', async () => {
    const p = await funded(base, 'provider', 'Unstaker', '$100');
    const n = await registerNode(base, p, { price_per_vcpu_hour_micro_usd: PRICE });
    await stake(base, p, n.node_id, 5_000_000);
    const u1 = await call(base, 'POST', `/v1/nodes/${n.node_id}/unstake`, {
      token: p.key,
      key: 'un-1',
      body: { amount_micro_usd: 1_000_000 },
    });
    assert.equal(u1.status, 200, JSON.stringify(u1.body));
    await forgetKeys();
    const same = await call(base, 'POST', `/v1/nodes/${n.node_id}/unstake`, {
      token: p.key,
      key: 'un-1',
      body: { amount_micro_usd: 1_000_000 },
    });
    assert.equal(same.status, 200, JSON.stringify(same.body));
    assert.equal(same.body.amount_micro_usd, 1_000_000);
    await forgetKeys();
    const other = await call(base, 'POST', `/v1/nodes/${n.node_id}/unstake`, {
      token: p.key,
      key: 'un-1',
      body: { amount_micro_usd: 2_000_000 },
    });
    assert.equal(other.status, 409, JSON.stringify(other.body));
    assert.equal(other.body.error.code, 'transfer_conflict');
    const held = await call(base, 'GET', `/v1/balances/${p.id}`, { token: p.key });
    assert.equal(held.body.stake_micro_usd, 4_000_000); // one unstake of $1, whatever the retries
  });

  it('a provider may register at most 256 active nodes', async () => {
    const p = await funded(base, 'provider', 'Many', '$1');
    let last = { status: 0, body: {} as { error?: { code: string } } };
    for (let i = 0; i < 257; i++) {
      last = await call(base, 'POST', '/v1/nodes/register', {
        token: p.key,
        body: { region: 'eu', tier: 'economy', vcpus: 1, price_per_vcpu_hour_micro_usd: 1 },
      });
      if (i < 256) assert.equal(last.status, 201, `node ${i}: ${JSON.stringify(last.body)}`);
    }
    assert.equal(last.status, 409);
    assert.equal(last.body.error?.code, 'too_many_nodes');
  });
});
