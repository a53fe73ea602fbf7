// A job retried on another node, with real parts: two node launchers (`ee node run`, podman) on two nodes, one
// killed while the job runs on it (its container removed with it: the machine is gone). The job asked for a
// retry: its first attempt is refunded in full, it is placed on the other node with a fresh lock, and the SDK
// verifies the new launcher, seals the env to it again and gets the result. The control plane never sees the env.
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { EasyEnclave } from '@easyenclave/sdk';
import type { ControlPlane } from '@easyenclave/control-plane/server';
import { closeAll, spawnEe, startCp, waitFor, wsUrl, type ProcessHandle } from '../helpers/network.js';
import { PODMAN_SUITE_TIMEOUT_MS, podmanSkipReason, testCli, testImage, testLauncherEnv } from '../helpers/podman.js';
import { tmpDir } from '../helpers/tmp.js';
import { call } from '../ledger-http/client.js';
import { funded, registerNode, stake, type Party } from '../market/util.js';

/** 1 micro-USD per vCPU-ms on the cheap node (placed first), twice that on the other. */
const PRICE = 3_600_000;
const skip = podmanSkipReason();

describe('a job retried on another node when its node is lost', { skip, timeout: PODMAN_SUITE_TIMEOUT_MS }, () => {
  let cp: ControlPlane;
  let image: string;
  let user: Party;
  const providers: Party[] = [];
  const nodes: string[] = [];
  const launchers: ProcessHandle[] = [];
  const tokens: string[] = [];
  const home = tmpDir('ee-home-');

  const launch = (i: number, node_token: string) =>
    spawnEe(
      ['node', 'run'],
      testLauncherEnv(wsUrl(cp), node_token, `retry${i}-${randomBytes(4).toString('hex')}`, tmpDir('ee-launcher-')),
    );
  const job = async (id: string) => (await call(cp.api_url, 'GET', `/v1/jobs/${id}`, { token: user.key })).body;
  const available = async (account: string) =>
    (await call(cp.api_url, 'GET', `/v1/balances/${account}`)).body.available_micro_usd as number;

  const bothPlaceable = () =>
    waitFor(
      async () => {
        const r = await call(cp.api_url, 'GET', '/v1/jobs/placement', { token: user.key });
        return r.status === 200 && r.body.node_id === nodes[0] && cp.hub.byApp.get('ee-launcher')?.length === 2;
      },
      60_000,
      'both launchers to be attested, the cheap one placed first',
    );
  /** The first node dies while a job runs there: its launcher and its container (the machine is gone). */
  const loseFirstNode = async (job_id: string) => {
    launchers[0]!.kill('SIGKILL');
    await launchers[0]!.exited;
    await testCli().ok(['rm', '--force', `ee-${job_id}`]);
  };

  before(async () => {
    image = await testImage();
    cp = await startCp({ EE_HEALTH_TIMEOUT_SEC: '4' });
    user = await funded(cp.api_url, 'user', 'U', '$50');
    for (const i of [0, 1]) {
      const p = await funded(cp.api_url, 'provider', `P${i}`, '$500');
      const price = PRICE * (i + 1);
      const n = await registerNode(cp.api_url, p, { price_per_vcpu_hour_micro_usd: price, vcpus: 2 });
      await stake(cp.api_url, p, n.node_id, price * 2 * 24);
      providers.push(p);
      nodes.push(n.node_id);
      tokens.push(n.node_token);
      launchers.push(launch(i, n.node_token));
    }
    await bothPlaceable();
  });
  after(async () => {
    for (const l of launchers) l.kill('SIGTERM');
    await closeAll();
  });

  it('runPrivateJob with retry_on_node_loss: attempt 1 refunded in full, attempt 2 on the other node with the env sealed again', async () => {
    const secret = `s3cret-${randomBytes(8).toString('hex')}`;
    const sdk = new EasyEnclave({ url: cp.api_url, apiKey: user.key, network: 'sandbox-1' });
    const userBefore = await available(user.id);
    const earnings = async () => Promise.all(providers.map((p) => available(`${p.id}:earnings`)));
    const earningsBefore = await earnings();
    let killed = false;
    const states: string[] = [];
    const out = await sdk.runPrivateJob({
      image,
      env: { SECRET: secret },
      command: ['sh', '-c', 'sleep 3; printf %s "$SECRET" | sha256sum'],
      vcpus: 1,
      max_runtime: 60,
      retry_on_node_loss: true,
      onState: (j) => {
        states.push(`${j.state}@${j.node_id}`);
        // The first node dies while the job runs there: its launcher and its container.
        if (j.state === 'running' && j.node_id === nodes[0] && !killed) {
          killed = true;
          void loseFirstNode(j.job_id);
        }
      },
    });
    assert.ok(killed, `the job ran on the first node: ${states.join(' ')}`);
    const j = await job(out.job.job_id);
    assert.equal(j.state, 'succeeded', j.reason);
    assert.equal(j.node_id, nodes[1], 'attempt 2 ran on the other node');
    assert.equal(j.attempt, 2);
    assert.equal(
      Buffer.from(out.result!.stdout).toString(),
      `${createHash('sha256').update(secret).digest('hex')}  -\n`,
      'the env reached the second launcher',
    );
    assert.equal(out.usage_verified, true, "the usage record was checked against the new launcher's attested key");
    // History: both attempts.
    const steps = j.history.map((h: { state: string }) => h.state);
    assert.deepEqual(steps, ['queued', 'starting', 'running', 'queued', 'starting', 'running', 'succeeded']);
    assert.match(j.history[3].reason, /attempt 1 lost on node .*refunded in full; attempt 2 placed on node/);
    // Money: attempt 1 refunded in full, attempt 2 settled its signed vCPU-ms at the second node's price.
    assert.equal(j.attempts.length, 1);
    const a1 = j.attempts[0];
    assert.equal(a1.node_id, nodes[0]);
    assert.equal(a1.settled_micro_usd, 0);
    assert.equal(a1.refunded_micro_usd, a1.locked_micro_usd);
    assert.equal(j.settled_micro_usd + j.refunded_micro_usd, j.locked_micro_usd);
    assert.equal(j.settled_micro_usd, Math.floor((2 * PRICE * j.usage.record.vcpu_ms) / 3_600_000));
    assert.equal(userBefore - (await available(user.id)), j.settled_micro_usd, 'the user paid attempt 2 only');
    const earningsAfter = await earnings();
    assert.equal(earningsAfter[0], earningsBefore[0], 'the lost node earned nothing');
    assert.equal(earningsAfter[1]! - earningsBefore[1]!, j.settled_micro_usd);
    // The control plane held only ciphertext: the plaintext is in no response it gave.
    assert.ok(!JSON.stringify(j).includes(secret));
  });

  it('ee jobs run --retry --wait: the CLI seals the env to the new launcher; PUT /v1/jobs/{id}/env refuses once it runs', async () => {
    launchers[0] = launch(0, tokens[0]!);
    await bothPlaceable();
    const secret = `cli-${randomBytes(8).toString('hex')}`;
    const run = spawnEe(
      [
        'jobs',
        'run',
        image,
        '--env',
        'SECRET',
        '--retry',
        '--max-runtime',
        '60',
        '--wait',
        '--',
        'sh',
        '-c',
        'sleep 3; printf %s "$SECRET" | sha256sum',
      ],
      { EE_CONTROL_URL: cp.api_url, EE_API_KEY: user.key, EE_NETWORK: 'sandbox-1', HOME: home, SECRET: secret },
    );
    // The CLI prints the job id at the end: find the job in the control plane's table.
    const id = await waitFor(
      async () => {
        const last = await cp.jobs.db
          .selectFrom('jobs')
          .select(['id', 'state', 'node_id'])
          .where('user_id', '=', user.id)
          .orderBy('created_ms', 'desc')
          .executeTakeFirst();
        return last && last.state === 'running' && last.node_id === nodes[0] ? last.id : null;
      },
      60_000,
      'the job to run on the first node',
    );
    await loseFirstNode(id);
    assert.equal(await run.exited, 0, run.output());
    assert.match(run.output(), new RegExp(createHash('sha256').update(secret).digest('hex')));
    assert.match(run.output(), /Attempt\s+2 \(earlier ones refunded in full\)/);
    const j = await job(id);
    assert.equal(j.node_id, nodes[1]);
    assert.equal(j.attempts[0].refunded_micro_usd, j.attempts[0].locked_micro_usd);
    const late = await call(cp.api_url, 'PUT', `/v1/jobs/${id}/env`, {
      token: user.key,
      body: { sealed_env: 'AAAA', env_key: 'ab'.repeat(32) },
    });
    assert.equal(late.status, 409);
    assert.equal(late.body.error.code, 'env_not_pending');
  });
});
