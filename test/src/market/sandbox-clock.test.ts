// The sandbox-only fast settlement clock (EE_SANDBOX_SETTLEMENT_PERIOD_MS): periods of minutes, so a newcomer
// sees a lease's period lock, end and settle to the provider within minutes; sealed networks are refused while
// it runs (registration 409 sandbox_clock), and the configuration refuses a period that is not whole minutes
// or that is given together with EE_SETTLEMENT_PERIOD.
import assert from 'node:assert/strict';
import { after, before, describe, it, test } from 'node:test';
import { ManualClock } from '@easyenclave/control-plane/clock';
import { ConfigError, loadControlPlaneConfig } from '@easyenclave/control-plane/config';
import type { ControlPlane } from '@easyenclave/control-plane/server';
import { ConflictError, EasyEnclave } from '@easyenclave/sdk';
import { ADMIN_TOKEN, closeAll, startCp } from '../helpers/network.js';
import { freshHealth, MIN, nodeAgent, pass, T0 } from './util.js';

const PERIOD_MS = 2 * MIN;

test('EE_SANDBOX_SETTLEMENT_PERIOD_MS: whole minutes under an hour; it replaces EE_SETTLEMENT_PERIOD', () => {
  assert.equal(loadControlPlaneConfig({ EE_SANDBOX_SETTLEMENT_PERIOD_MS: '120000' }).settlement_period_ms, PERIOD_MS);
  assert.equal(loadControlPlaneConfig({}).sandbox_settlement_period_ms, undefined);
  for (const bad of ['90000', '3600000', '59999', '2m'])
    assert.throws(
      () => loadControlPlaneConfig({ EE_SANDBOX_SETTLEMENT_PERIOD_MS: bad }),
      (e: unknown) => e instanceof ConfigError && e.variable === 'EE_SANDBOX_SETTLEMENT_PERIOD_MS',
      bad,
    );
  assert.throws(
    () => loadControlPlaneConfig({ EE_SANDBOX_SETTLEMENT_PERIOD_MS: '120000', EE_SETTLEMENT_PERIOD: '1h' }),
    /must not both be set/,
  );
});

describe('a lease on the sandbox clock settles within minutes', () => {
  const clock = new ManualClock(T0 + 30_000); // 30 s into a 2-minute period
  let cp: ControlPlane;
  let admin: EasyEnclave;
  before(async () => {
    cp = await startCp(
      {
        EE_SANDBOX_SETTLEMENT_PERIOD_MS: String(PERIOD_MS),
        EE_SETTLEMENT_DELAY: '1d', // the test finalizes, not the scheduler
        EE_HEALTH_TIMEOUT_SEC: '1800',
        EE_OUTAGE_THRESHOLD_STANDARD: '30d',
      },
      { clock },
    );
    admin = new EasyEnclave({ url: cp.api_url, adminToken: ADMIN_TOKEN });
  });
  after(closeAll);

  it('sealed networks are refused; a sandbox lease locks a 2-minute period that settles to the provider', async () => {
    const party = async (kind: 'user' | 'provider', name: string) => {
      const a = await admin.createAccount({ kind, name });
      await admin.purchaseCredits({ account: a.account_id, amount: '$100', payment_ref: `clock-${name}` });
      return { id: a.account_id, ee: new EasyEnclave({ url: cp.api_url, apiKey: a.api_key! }) };
    };
    const provider = await party('provider', 'fast-acme');
    const user = await party('user', 'fast-alice');
    const node = { region: 'eu-west', tier: 'standard', vcpus: 4, price_per_vcpu_hour: '$0.10' } as const;
    await assert.rejects(
      provider.ee.registerNode({ ...node, network: 'forge-1', ppid: '0123456789abcdef0123456789abcdef' }),
      (e: unknown) => e instanceof ConflictError && e.code === 'sandbox_clock',
    );
    const reg = await provider.ee.registerNode(node);
    await provider.ee.stake(reg.node_id, '$9.60');
    await nodeAgent(cp, reg.node_token!);
    await freshHealth(cp, clock, [reg.node_id]);

    const lease = await user.ee.createLease({ app: 'demo', vcpus: 2, periods: 1 });
    // 90 s left of the period: ceil($0.10 × 2 vCPUs × 90/3600 h) = $0.005.
    assert.deepEqual([lease.lock.period, lease.lock.amount_micro_usd], [new Date(T0).toISOString(), 5_000n]);
    const earnings = (await admin.balance(provider.id)).available_micro_usd;
    await pass(cp, clock, PERIOD_MS, [reg.node_id]); // past the end of the period, health passing
    const done = await admin.finalizeSettlement(T0 / PERIOD_MS);
    assert.deepEqual([done.posted, done.voided], [1, 0]);
    assert.equal((await admin.balance(provider.id)).available_micro_usd, earnings + 5_000n);
  });
});
