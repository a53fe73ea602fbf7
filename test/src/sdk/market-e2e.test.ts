// The SDK's market calls against a real in-process control plane with a ManualClock and a real agent bound to
// the node by its token: a provider registers and stakes, a user leases (the lock exact in the balance), the
// period ends and the admin finalizes twice with one outcome (the provider earns exactly the lock), a lease is
// cancelled, a retried createLease makes one lease, abuse reports and payouts, and typed errors from real refusals.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { ManualClock } from '@easyenclave/control-plane/clock';
import type { ControlPlane } from '@easyenclave/control-plane/server';
import {
  ConflictError,
  EasyEnclave,
  ForbiddenError,
  NotFoundError,
  PaymentRequiredError,
  UnauthorizedError,
  type EasyEnclaveError,
} from '@easyenclave/sdk';
import { ADMIN_TOKEN, closeAll, startCp } from '../helpers/network.js';
import { freshHealth, HOUR, iso, LAUNCHER, MIN, nodeAgent, pass, T0 } from '../market/util.js';

const REQUIRED = 100_000n * 4n * 24n; // $0.10 × 4 vCPUs × 24 h (standard tier)
const LOCK = 166_667n; // 50 minutes left of the 03:00 period: ceil(0.10 × 2 vCPUs × 50/60 × 10^6)

/** assert.rejects with the SDK's typed error: its class, kind, status and server code. */
async function rejectsWith(
  p: Promise<unknown>,
  cls: new (...a: never[]) => EasyEnclaveError,
  kind: string,
  status: number,
  code: string,
): Promise<void> {
  await assert.rejects(p, (e: unknown) => {
    assert.ok(e instanceof cls, `expected ${cls.name}, got ${String(e)}`);
    assert.deepEqual([e.kind, e.status, e.code], [kind, status, code]);
    return true;
  });
}

describe('SDK market calls against the control plane (real agent, manual clock)', () => {
  const clock = new ManualClock(T0 + 10 * MIN);
  let cp: ControlPlane;
  let url: string;
  let admin: EasyEnclave;
  let provider: { id: string; ee: EasyEnclave };
  let user: { id: string; ee: EasyEnclave };
  let node_id: string;
  let lease_id: string;

  const party = async (kind: 'user' | 'provider', name: string, amount: string) => {
    const a = await admin.createAccount({ kind, name });
    await admin.purchaseCredits({ account: a.account_id, amount, payment_ref: `pay-${name}` });
    return { id: a.account_id, ee: new EasyEnclave({ url, apiKey: a.api_key! }) };
  };
  const available = async (account: string) => (await admin.balance(account)).available_micro_usd;

  before(async () => {
    // Settlement delay of a day: the scheduler never finalizes in this test; the SDK's admin call does.
    cp = await startCp(
      {
        EE_HEALTH_TIMEOUT_SEC: '1800',
        EE_SETTLEMENT_DELAY: '1d',
        EE_LAUNCHER_TOKEN: LAUNCHER,
        EE_OUTAGE_THRESHOLD_STANDARD: '30d',
      },
      { clock },
    );
    url = cp.api_url;
    admin = new EasyEnclave({ url, adminToken: ADMIN_TOKEN });
    provider = await party('provider', 'acme', '$1000');
    user = await party('user', 'alice', '$100');
  });
  after(closeAll);

  it('a provider registers a node (its token once) and stakes; the node becomes eligible', async () => {
    await rejectsWith(
      user.ee.registerNode({ region: 'eu-west', tier: 'standard', vcpus: 4, price_per_vcpu_hour: '$0.10' }),
      ForbiddenError,
      'forbidden',
      403,
      'not_a_provider',
    );
    const params = {
      region: 'eu-west',
      tier: 'standard',
      vcpus: 4,
      price_per_vcpu_hour: '$0.10',
      name: 'acme-1',
    } as const;
    const reg = await provider.ee.registerNode(params, { idempotency_key: 'sdk-node-1' });
    node_id = reg.node_id;
    assert.equal(reg.replayed, false);
    assert.match(reg.node_token ?? '', /^ee_node_[0-9a-f]{16}_[A-Za-z0-9_-]{43}$/);
    assert.equal(reg.price_per_vcpu_hour_micro_usd, 100_000n);
    const again = await provider.ee.registerNode(params, { idempotency_key: 'sdk-node-1' });
    assert.deepEqual(
      [again.replayed, again.node_id, again.node_token],
      [true, node_id, null],
      'the token is shown once',
    );

    const d = await provider.ee.node(node_id);
    assert.equal(d.stake.required_micro_usd, REQUIRED);
    assert.deepEqual([d.eligible, d.ineligible_reasons], [false, ['stake_below_required', 'no_attested_agent']]);
    await rejectsWith(user.ee.node(node_id), NotFoundError, 'not_found', 404, 'unknown_node');

    await nodeAgent(cp, reg.node_token!);
    await freshHealth(cp, clock, [node_id]);
    await rejectsWith(
      provider.ee.stake(node_id, '$2000'),
      PaymentRequiredError,
      'payment_required',
      402,
      'insufficient_funds',
    );
    const s1 = await provider.ee.stake(node_id, '$9.59');
    assert.equal(s1.eligible, false);
    const s2 = await provider.ee.stake(node_id, 10_000n, { idempotency_key: 'sdk-stake-2' });
    assert.deepEqual([s2.amount_micro_usd, s2.stake.held_micro_usd, s2.eligible], [10_000n, REQUIRED, true]);
    const s2again = await provider.ee.stake(node_id, 10_000n, { idempotency_key: 'sdk-stake-2' });
    assert.deepEqual(
      [s2again.replayed, s2again.transfer_id, s2again.stake.held_micro_usd],
      [true, s2.transfer_id, REQUIRED],
    );
    assert.equal(await available(provider.id), 1_000_000_000n - REQUIRED, 'staked once');
    const held = (await provider.ee.balance()).stake_micro_usd;
    assert.equal(typeof held, 'bigint', "a provider's balance carries its stake as a bigint");
    assert.equal(held, REQUIRED);
    const all = [];
    for await (const n of admin.nodes({ limit: 1 })) all.push(n);
    const listed = all.find((n) => n.node_id === node_id);
    assert.equal(listed?.eligible, true);
    assert.throws(() => provider.ee.nodes(), /adminToken is required/);
  });

  it('a user creates a lease: the lock is exact in the balance; a retry with the same key makes one lease', async () => {
    const poor = await admin.createAccount({ kind: 'user', name: 'bob' });
    await rejectsWith(
      new EasyEnclave({ url, apiKey: poor.api_key! }).createLease({ app: 'demo', vcpus: 2 }),
      PaymentRequiredError,
      'payment_required',
      402,
      'insufficient_funds',
    );
    await rejectsWith(
      provider.ee.createLease({ app: 'demo', vcpus: 2 }),
      ForbiddenError,
      'forbidden',
      403,
      'not_a_user',
    );

    const l = await user.ee.createLease({ app: 'demo', vcpus: 2, periods: 3 }, { idempotency_key: 'sdk-lease-1' });
    lease_id = l.lease_id;
    assert.deepEqual(
      [l.node_id, l.lock.amount_micro_usd, l.lock.period, l.lock.status, l.replayed],
      [node_id, LOCK, iso(T0), 'locked', false],
    );
    const b = await user.ee.balance(user.id);
    assert.deepEqual([b.locked_micro_usd, b.available_micro_usd], [LOCK, 100_000_000n - LOCK]);

    const retry = await user.ee.createLease({ app: 'demo', vcpus: 2, periods: 3 }, { idempotency_key: 'sdk-lease-1' });
    assert.deepEqual([retry.replayed, retry.lease_id], [true, lease_id]);
    assert.equal((await user.ee.balance(user.id)).locked_micro_usd, LOCK, 'locked once');
    assert.deepEqual(
      (await admin.settlement(iso(T0))).lease_periods.map((p) => p.lease_id),
      [lease_id],
      'one lease',
    );

    await rejectsWith(user.ee.lease('lease_0000000000000000'), NotFoundError, 'not_found', 404, 'unknown_lease');
    await rejectsWith(admin.finalizeSettlement(iso(T0)), ConflictError, 'conflict', 409, 'period_not_ended');
    await rejectsWith(provider.ee.unstake(node_id), ConflictError, 'conflict', 409, 'open_periods');
  });

  it('the period ends; the admin finalizes twice with one outcome and the provider earns exactly the lock', async () => {
    const earnings = await available(provider.id);
    await pass(cp, clock, HOUR - 10 * MIN, [node_id]);
    const first = await admin.finalizeSettlement(new Date(T0));
    assert.deepEqual([first.period, first.posted, first.voided, first.already_finalized], [iso(T0), 1, 0, 0]);
    assert.deepEqual(first.results, [{ lease_id, status: 'posted', reasons: [], already: false }]);
    assert.equal(await available(provider.id), earnings + LOCK);

    const second = await admin.finalizeSettlement(T0 / HOUR); // the same period by its index
    assert.deepEqual([second.period, second.posted, second.voided], [iso(T0), 1, 0]);
    assert.deepEqual(second.results, [{ lease_id, status: 'posted', reasons: [], already: true }]);
    assert.equal(await available(provider.id), earnings + LOCK, 'nothing moved the second time');

    const l = await user.ee.lease(lease_id);
    assert.deepEqual([l.lease_periods[0]?.status, l.paid_micro_usd, l.refunded_micro_usd], ['posted', LOCK, 0n]);
    assert.equal((await admin.settlement(T0 / HOUR)).lease_periods[0]?.status, 'posted');
  });

  it("cancelLease ends the lease (again: the same answer); not another user's", async () => {
    const stranger = await party('user', 'carol', '$1');
    await rejectsWith(stranger.ee.cancelLease(lease_id), NotFoundError, 'not_found', 404, 'unknown_lease');
    const c = await user.ee.cancelLease(lease_id);
    assert.deepEqual([c.status, c.end_reason], ['ended', 'cancelled']);
    const again = await user.ee.cancelLease(lease_id);
    assert.deepEqual([again.status, again.end_reason, again.ended_at], ['ended', 'cancelled', c.ended_at]);
  });

  it('abuse reports: filed with the launcher token, authorised by the admin', async () => {
    assert.throws(() => user.ee.reportAbuse({ node: node_id, reason: 'x' }), /launcherToken is required/);
    await rejectsWith(
      new EasyEnclave({ url, launcherToken: 'not-the-launcher-token' }).reportAbuse({ node: node_id, reason: 'x' }),
      UnauthorizedError,
      'unauthorized',
      401,
      'unauthorized',
    );
    const launcher = new EasyEnclave({ url, launcherToken: LAUNCHER });
    await rejectsWith(
      launcher.reportAbuse({ node: 'node_0000000000000000', reason: 'x' }),
      NotFoundError,
      'not_found',
      404,
      'unknown_node',
    );
    const filed = await launcher.reportAbuse({ node: node_id, lease: lease_id, reason: 'phishing page' });
    assert.deepEqual([filed.status, filed.lease_id, filed.period], ['filed', lease_id, iso(T0 + HOUR)]);
    const ok = await admin.authorizeAbuseReport(filed.report_id);
    assert.equal(ok.status, 'authorized');
    assert.equal((await admin.abuseReport(filed.report_id)).status, 'authorized');
  });

  it('payouts: earnings held pending, confirmed once; cancelling after is a conflict', async () => {
    const before = await available(provider.id);
    const p = await admin.createPayout({ provider: provider.id, amount: LOCK, reference: 'wire-1' });
    assert.deepEqual([p.status, p.amount_micro_usd], ['pending', LOCK]);
    assert.equal(await available(provider.id), before - LOCK);
    assert.equal((await admin.confirmPayout(p.payout_id)).status, 'confirmed');
    assert.equal((await admin.payout(p.payout_id)).status, 'confirmed');
    await rejectsWith(admin.cancelPayout(p.payout_id), ConflictError, 'conflict', 409, 'payout_resolved');
    await rejectsWith(
      admin.createPayout({ provider: provider.id, amount: '$1000000' }),
      PaymentRequiredError,
      'payment_required',
      402,
      'insufficient_funds',
    );
  });
});
