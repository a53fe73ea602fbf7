// The full node lifecycle end to end, through HTTP, with a real agent over the tunnel on the sandbox network
// and a ManualClock: register, stake, lease, periods pass and post to the provider; a missed heartbeat, a
// failed re-attestation and an authorised abuse report each fail exactly their period and refund exactly its
// lock; an unauthorised report changes nothing; finalize twice (and concurrently) changes nothing.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { EvidenceVerifier } from '@easyenclave/attestation';
import { ManualClock } from '@easyenclave/control-plane/clock';
import type { ControlPlane } from '@easyenclave/control-plane/server';
import { closeAll, startCp, waitFor } from '../helpers/network.js';
import { call } from '../ledger-http/client.js';
import {
  available,
  freshHealth,
  funded,
  HOUR,
  iso,
  LAUNCHER,
  MIN,
  nextPeriod,
  nodeAgent,
  nodeLinks,
  pass,
  registerNode,
  stake,
  T0,
  UPTIME,
  type Party,
} from './util.js';

const PRICE = 100_000; // $0.10 per vCPU-hour
const VCPUS = 4;
const REQUIRED = PRICE * VCPUS * 24; // standard tier: max(24 h, 24 h penalty)

describe('market lifecycle (sandbox, real agent, manual clock)', () => {
  const clock = new ManualClock(T0 + 10 * MIN);
  let cp: ControlPlane;
  let base: string;
  let provider: Party;
  let user: Party;
  let node_id: string;
  let lease_id: string;
  let failNextAttestation = false;
  const lockOf: number[] = [];

  before(async () => {
    cp = await startCp(
      {
        EE_HEALTH_TIMEOUT_SEC: '1800',
        EE_SETTLEMENT_DELAY: '0s',
        EE_LAUNCHER_TOKEN: LAUNCHER,
        EE_UPTIME_TOKEN: UPTIME,
        EE_OUTAGE_THRESHOLD_STANDARD: '30d',
      },
      { clock },
    );
    base = cp.api_url;
    const inner = cp.hub.deps.verifier;
    const verifier: EvidenceVerifier = {
      verify: async (req) => {
        if (!failNextAttestation) return inner.verify(req);
        failNextAttestation = false;
        return { ok: false, evidence_type: 'sandbox', reasons: ['test: evidence rejected'] };
      },
    };
    cp.hub.deps.verifier = verifier;
    provider = await funded(base, 'provider', 'Acme Nodes', '$1000');
    user = await funded(base, 'user', 'Alice', '$100');
  });
  after(closeAll);

  it('registers a node: a node token once, not eligible before stake and agents', async () => {
    const reg = await registerNode(base, provider, { price_per_vcpu_hour: '$0.10', name: 'acme-1' });
    node_id = reg.node_id;
    assert.match(node_id, /^node_[0-9a-f]{16}$/);
    assert.match(reg.node_token, /^ee_node_[0-9a-f]{16}_[A-Za-z0-9_-]{43}$/);
    const d = await call(base, 'GET', `/v1/nodes/${node_id}`);
    assert.equal(d.status, 200, JSON.stringify(d.body));
    assert.equal(d.body.price_per_vcpu_hour_micro_usd, PRICE);
    assert.equal(d.body.machine_months, 4);
    assert.equal(d.body.stake.required_micro_usd, REQUIRED);
    assert.equal(d.body.eligible, false);
    assert.deepEqual(d.body.ineligible_reasons, ['stake_below_required', 'no_attested_agent']);
    // Another user's key cannot read it; a lease now finds no node.
    assert.equal((await call(base, 'GET', `/v1/nodes/${node_id}`, { token: user.key })).status, 404);
    const none = await call(base, 'POST', '/v1/leases', { token: user.key, body: { app: 'demo', vcpus: 2 } });
    assert.equal(none.status, 409);
    assert.equal(none.body.error.code, 'no_eligible_node');

    await nodeAgent(cp, reg.node_token);
    await freshHealth(cp, clock, [node_id]);
    const below = await call(base, 'POST', `/v1/nodes/${node_id}/stake`, {
      token: provider.key,
      body: { amount_micro_usd: REQUIRED - 1 },
    });
    assert.equal(below.status, 200);
    assert.equal(below.body.eligible, false);
    const s = await stake(base, provider, node_id, 1);
    assert.equal(s.stake.held_micro_usd, REQUIRED);
    assert.equal(s.eligible, true, JSON.stringify(s));
    assert.equal(await available(base, provider.id), 1000_000_000 - REQUIRED);
  });

  it('a lease routes to the node and locks the prorated first period', async () => {
    const r = await call(base, 'POST', '/v1/leases', {
      token: user.key,
      body: { app: 'demo', vcpus: 2, periods: 5 },
      key: 'lease-1',
    });
    assert.equal(r.status, 201, JSON.stringify(r.body));
    lease_id = r.body.lease_id;
    assert.equal(r.body.node_id, node_id);
    // 50 minutes left of the 03:00 period: ceil(0.10 × 2 × 50/60 × 10^6) micro-USD.
    assert.equal(r.body.lock.amount_micro_usd, 166_667);
    assert.equal(r.body.lock.period, iso(T0));
    lockOf.push(166_667);
    const replay = await call(base, 'POST', '/v1/leases', {
      token: user.key,
      body: { app: 'demo', vcpus: 2, periods: 5 },
      key: 'lease-1',
    });
    assert.equal(replay.body.lease_id, lease_id);
    assert.equal(await available(base, user.id), 100_000_000 - 166_667);
    // An uptime report without misses is evidence too, and changes nothing.
    const u = await call(base, 'POST', '/v1/usage/report', {
      token: UPTIME,
      body: { node: node_id, period: iso(T0), units: 2, missed_checks: 0 },
    });
    assert.equal(u.status, 201, JSON.stringify(u.body));
  });

  it('a clean period posts to the provider; the next one is locked at period start', async () => {
    await nextPeriod(cp, clock, [node_id]);
    const l = await call(base, 'GET', `/v1/leases/${lease_id}`, { token: user.key });
    assert.equal(l.status, 200);
    assert.deepEqual(
      l.body.lease_periods.map((p: any) => [p.period, p.status, p.amount_micro_usd]),
      [
        [iso(T0), 'posted', 166_667],
        [iso(T0 + HOUR), 'locked', 200_000],
      ],
    );
    lockOf.push(200_000);
    assert.equal(await available(base, provider.id), 1000_000_000 - REQUIRED + 166_667);
    assert.equal(await available(base, user.id), 100_000_000 - 166_667 - 200_000);
  });

  it('a missed heartbeat fails exactly its period and refunds exactly its lock', async () => {
    await pass(cp, clock, 10 * MIN, [node_id]);
    clock.advance(31 * MIN); // past EE_HEALTH_TIMEOUT_SEC without a report...
    cp.hub.sweep(); // ...seen by the sweep before the agent's next heartbeat
    await waitFor(async () =>
      (await cp.store.listHealthEvents({ app_name: 'demo', limit: 5 })).some((e) => e.kind === 'missed'),
    );
    await freshHealth(cp, clock, [node_id]);
    await nextPeriod(cp, clock, [node_id]);
    const l = await call(base, 'GET', `/v1/leases/${lease_id}`, { token: user.key });
    const p1 = l.body.lease_periods[1];
    assert.equal(p1.status, 'voided');
    assert.deepEqual(p1.reasons, ['health_missed:1']);
    lockOf.push(200_000);
    assert.equal(
      await available(base, user.id),
      100_000_000 - 166_667 - 200_000,
      'refunded exactly the lock; the next one is locked',
    );
    assert.equal(await available(base, provider.id), 1000_000_000 - REQUIRED + 166_667);
  });

  it('a failed re-attestation fails exactly its period', async () => {
    await pass(cp, clock, 5 * MIN, [node_id]);
    const before = nodeLinks(cp, node_id)[0]!;
    failNextAttestation = true;
    cp.hub.reattestAll();
    await waitFor(() => before.closed, 5000, 'the agent to be dropped');
    await waitFor(
      () => nodeLinks(cp, node_id).some((l) => l !== before && l.attested),
      10_000,
      'the agent to come back',
    );
    await freshHealth(cp, clock, [node_id]);
    await nextPeriod(cp, clock, [node_id]);
    const l = await call(base, 'GET', `/v1/leases/${lease_id}`, { token: user.key });
    assert.equal(l.body.lease_periods[2].status, 'voided');
    assert.deepEqual(l.body.lease_periods[2].reasons, ['attestation_failed:1']);
    assert.equal(l.body.lease_periods[3].status, 'locked');
    lockOf.push(200_000);
    assert.equal(await available(base, user.id), 100_000_000 - 166_667 - 200_000);
  });

  it('an authorised abuse report fails its period; an unauthorised one changes nothing', async () => {
    const filed = await call(base, 'POST', '/v1/abuse/reports', {
      token: LAUNCHER,
      body: { node: node_id, lease: lease_id, period: iso(T0 + 3 * HOUR), reason: 'phishing page' },
    });
    assert.equal(filed.status, 201, JSON.stringify(filed.body));
    assert.equal(filed.body.status, 'filed');
    assert.equal(
      (await call(base, 'POST', `/v1/abuse/reports/${filed.body.report_id}/authorize`, { token: LAUNCHER })).status,
      401,
    );
    const auth = await call(base, 'POST', `/v1/abuse/reports/${filed.body.report_id}/authorize`, {});
    assert.equal(auth.status, 200);
    assert.equal(auth.body.status, 'authorized');
    await nextPeriod(cp, clock, [node_id]);
    // Period 4 gets a report that is never authorised.
    const unauth = await call(base, 'POST', '/v1/abuse/reports', {
      token: LAUNCHER,
      body: { node: node_id, reason: 'spam?' },
    });
    assert.equal(unauth.status, 201);
    assert.equal(unauth.body.period, iso(T0 + 4 * HOUR));
    await nextPeriod(cp, clock, [node_id]);
    const l = await call(base, 'GET', `/v1/leases/${lease_id}`, { token: user.key });
    assert.deepEqual(
      l.body.lease_periods.map((p: any) => p.status),
      ['posted', 'voided', 'voided', 'voided', 'posted'],
    );
    assert.deepEqual(l.body.lease_periods[3].reasons, [`abuse_report:${filed.body.report_id}`]);
    assert.deepEqual(l.body.lease_periods[4].reasons, []);
    assert.equal(l.body.status, 'ended');
    assert.equal(l.body.end_reason, 'completed');
    assert.equal(l.body.paid_micro_usd, 366_667);
    assert.equal(l.body.refunded_micro_usd, 600_000);
    assert.equal(await available(base, user.id), 100_000_000 - 366_667);
    assert.equal(await available(base, provider.id), 1000_000_000 - REQUIRED + 366_667);
  });

  it('finalizing a period again, or twice at once, changes nothing', async () => {
    const before = [await available(base, user.id), await available(base, provider.id)];
    const [a, b] = await Promise.all([
      call(base, 'POST', `/v1/settlements/${iso(T0 + HOUR)}/finalize`, {}),
      call(base, 'POST', `/v1/settlements/${T0 / HOUR + 1}/finalize`, {}),
    ]);
    for (const r of [a, b]) {
      assert.equal(r.status, 200, JSON.stringify(r.body));
      assert.equal(r.body.already_finalized, 1);
      assert.equal(r.body.voided, 1);
    }
    assert.deepEqual([await available(base, user.id), await available(base, provider.id)], before);
    const s = await call(base, 'GET', `/v1/settlements/${iso(T0 + HOUR)}`, {});
    assert.equal(s.body.lease_periods[0].status, 'voided');
    const future = await call(base, 'POST', `/v1/settlements/${iso(T0 + 10 * HOUR)}/finalize`, {});
    assert.equal(future.status, 409);
    assert.equal((await call(base, 'POST', '/v1/settlements/2026-11-22T03:30:00Z/finalize', {})).status, 400);
    assert.equal((await call(base, 'POST', `/v1/settlements/${iso(T0)}/finalize`, { token: user.key })).status, 403);
  });
});
