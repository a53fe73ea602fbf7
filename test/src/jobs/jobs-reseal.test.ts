// The re-seal deadline, through a real control plane (SQLite, HTTP, its own sweep) on a ManualClock: a job
// retried on another node after its node was lost waits for its client to seal the env to the new launcher; a
// client that never does leaves it failed once JOB_RESEAL_TIMEOUT_MS has passed, both attempts refunded in full.
// No launcher runs here: the job is placed and retried by the same ledger operations the service submits.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { ManualClock } from '@easyenclave/control-plane/clock';
import { createJobOp } from '@easyenclave/control-plane/jobs/ops';
import { jobLockId, jobRefundId } from '@easyenclave/control-plane/jobs/money';
import { retryJobOp } from '@easyenclave/control-plane/jobs/retry';
import { JOB_RESEAL_TIMEOUT_MS, JOB_SWEEP_MS } from '@easyenclave/control-plane/jobs/service';
import type { ControlPlane } from '@easyenclave/control-plane/server';
import { closeAll, startCp, waitFor } from '../helpers/network.js';
import { call } from '../ledger-http/client.js';
import { available, funded, registerNode, stake, T0, type Party } from '../market/util.js';

const PRICE = 3_600_000;
const KEYS = ['a'.repeat(64), 'b'.repeat(64)];
const JOB = 'job_00000000000000000001';

describe('a retried job whose env is never sealed again', () => {
  const clock = new ManualClock(T0);
  let cp: ControlPlane;
  let user: Party;
  const candidates: {
    id: string;
    provider: string;
    vcpus_total: number;
    memory_mib_total: number;
    hpke_public_key: string;
  }[] = [];

  before(async () => {
    // The launchers' health timeout far beyond the deadline: only the re-seal deadline can end the job.
    cp = await startCp({ EE_HEALTH_TIMEOUT_SEC: '86400' }, { clock });
    user = await funded(cp.api_url, 'user', 'U', '$50');
    for (const i of [0, 1]) {
      const p = await funded(cp.api_url, 'provider', `P${i}`, '$500');
      const n = await registerNode(cp.api_url, p, { price_per_vcpu_hour_micro_usd: PRICE, vcpus: 2 });
      await stake(cp.api_url, p, n.node_id, PRICE * 2 * 24);
      candidates.push({
        id: n.node_id,
        provider: p.id,
        vcpus_total: 2,
        memory_mib_total: 1024,
        hpke_public_key: KEYS[i]!,
      });
    }
  });
  after(closeAll);

  it(`fails once ${JOB_RESEAL_TIMEOUT_MS / 60_000} min pass, both attempts refunded in full`, async () => {
    const job = async () => (await call(cp.api_url, 'GET', `/v1/jobs/${JOB}`, { token: user.key })).body;
    const before = await available(cp.api_url, user.id);
    const created = await cp.ledger.submit(
      createJobOp(
        {
          id: JOB,
          user_id: user.id,
          image: 'img',
          command: null,
          vcpus: 1,
          memory_mib: 64,
          max_runtime_ms: 10 * 60_000,
          network: false,
          sealed_env: 'c2VhbGVk',
          env_key: KEYS[0]!,
          result_key: KEYS[0]!,
          retry_on_node_loss: true,
        },
        [candidates[0]!],
        () => true,
        (r) => r,
      ),
    );
    assert.ok(created.ok, JSON.stringify(created));
    const retried = await cp.ledger.submit(retryJobOp(JOB, 'the node was lost', candidates, () => true));
    assert.ok(retried.ok && retried.job.state === 'queued' && retried.job.env_pending === 1, JSON.stringify(retried));
    assert.equal(retried.job.node_id, candidates[1]!.id);
    assert.ok((await available(cp.api_url, user.id)) < before, "the retry's lock is held");

    // While it waits, only its owner may supply the env: another user's key and no key are refused.
    const other = await funded(cp.api_url, 'user', 'O', '$1');
    const body = { sealed_env: 'c2VhbGVk', env_key: KEYS[1] };
    const foreign = await call(cp.api_url, 'PUT', `/v1/jobs/${JOB}/env`, { token: other.key, body });
    assert.equal(foreign.status, 404, JSON.stringify(foreign.body));
    assert.equal((await call(cp.api_url, 'PUT', `/v1/jobs/${JOB}/env`, { token: null, body })).status, 401);
    assert.ok((await job()).env_required, 'still waiting for its owner');

    // Just before the deadline, sweeps leave it waiting.
    clock.advance(JOB_RESEAL_TIMEOUT_MS - 1_000);
    await sleep(2 * JOB_SWEEP_MS + 200);
    assert.equal((await job()).state, 'queued');

    clock.advance(2_000);
    await waitFor(async () => (await job()).state === 'failed', 10_000, 'the sweep to fail the job');
    const j = await job();
    assert.match(j.reason, /env was not sealed to the new launcher in 5 min/);
    assert.equal(await available(cp.api_url, user.id), before, 'refunded in full');
    for (const attempt of [1, 2]) {
      const lock = await cp.ledger.transfer(jobLockId(JOB, attempt));
      const refund = await cp.ledger.transfer(jobRefundId(JOB, attempt));
      assert.ok(lock?.kind === 'transfer' && refund?.kind === 'transfer', `attempt ${attempt}: a lock and its refund`);
      assert.equal(refund.transfer.pending_id, lock.transfer.id);
      assert.ok(refund.transfer.flags.void_pending, `attempt ${attempt}: the whole lock voided`);
    }
    // A re-seal after the deadline is refused.
    const late = await call(cp.api_url, 'PUT', `/v1/jobs/${JOB}/env`, {
      token: user.key,
      body: { sealed_env: 'c2VhbGVk', env_key: KEYS[1] },
    });
    assert.equal(late.status, 409, JSON.stringify(late.body));
  });
});
