// Private jobs across restarts and their sealed log stream, with real parts: the control plane restarted on the
// same database and ports while a job runs (the launcher reconnects; the job ends and settles once), and
// `ee jobs logs` following a running job's output, opened with the job's key on the client.
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { ControlPlane } from '@easyenclave/control-plane/server';
import { EasyEnclave } from '@easyenclave/sdk';
import type { EvidenceVerifier } from '@easyenclave/attestation';
import { createVerifier } from '@easyenclave/control-plane/attestation/verifier';
import { loadControlPlaneConfig } from '@easyenclave/control-plane/config';
import { launcherPlaceable, stakedNode, TestLauncher } from '../helpers/launcher.js';
import {
  closeAll,
  cpEnv,
  freePort,
  quietLogger,
  spawnEe,
  startCp,
  waitFor,
  type ProcessHandle,
} from '../helpers/network.js';
import { PODMAN_SUITE_TIMEOUT_MS, podmanSkipReason, testImage } from '../helpers/podman.js';
import { tmpDir } from '../helpers/tmp.js';
import { call } from '../ledger-http/client.js';
import type { Party } from '../market/util.js';

const PRICE = 3_600_000;
const skip = podmanSkipReason();

describe('private jobs: logs and a control-plane restart', { skip, timeout: PODMAN_SUITE_TIMEOUT_MS }, () => {
  let cp: ControlPlane;
  let image: string;
  let user: Party;
  let launcher: ProcessHandle;
  const home = tmpDir('ee-home-');
  const dbPath = join(tmpDir(), 'cp.db');
  let ports: Record<string, string>;

  // The real verifier, which a test can make refuse every evidence (a node failing attestation).
  const real = createVerifier(loadControlPlaneConfig(cpEnv()), quietLogger());
  let refuse = false;
  const verifier: EvidenceVerifier = {
    verify: (input) =>
      refuse
        ? Promise.resolve({ ok: false, evidence_type: 'sandbox', reasons: ['refused by the test'] })
        : real.verify(input),
  } as EvidenceVerifier;
  // A long health timeout: only a failed attestation can end a job quickly.
  const start = () => startCp({ ...ports, EE_DB_PATH: dbPath, EE_HEALTH_TIMEOUT_SEC: '300' }, { verifier });
  const ee = (args: string[]) =>
    spawnEe(['jobs', ...args], {
      EE_CONTROL_URL: cp.api_url,
      EE_API_KEY: user.key,
      EE_NETWORK: 'sandbox-1',
      HOME: home,
    });
  const job = async (id: string) => (await call(cp.api_url, 'GET', `/v1/jobs/${id}`, { token: user.key })).body;
  const placeable = () => launcherPlaceable(cp, user);

  before(async () => {
    image = await testImage();
    ports = { EE_CONTROL_PORT: String(await freePort()), EE_PROXY_PORT: String(await freePort()) };
    cp = await start();
    const n = await stakedNode(cp, PRICE);
    user = n.user;
    launcher = new TestLauncher(`restart-${process.pid}`).start(cp, n.node_token);
    await placeable();
  });
  after(async () => {
    launcher?.kill('SIGTERM');
    await closeAll();
  });

  it('ee jobs logs follows a running job: its output, opened with the key kept by ee jobs run', async () => {
    const run = ee([
      'run',
      image,
      '--max-runtime',
      '60',
      '--',
      'sh',
      '-c',
      'echo first; sleep 2; echo second >&2; sleep 1',
    ]);
    assert.equal(await run.exited, 0, run.output());
    const id = run.output().trim().split('\n').pop()!;
    await waitFor(async () => (await job(id)).state === 'running', 30_000, 'the job to run');
    const logs = ee(['logs', id]);
    assert.equal(await logs.exited, 0, logs.output());
    assert.match(logs.output(), /first/);
    assert.match(logs.output(), /second/);
    // The control plane relayed only ciphertext: the raw stream does not contain the words.
    await waitFor(async () => (await job(id)).state === 'succeeded', 30_000, 'the job to end');
  });

  it('ee.runPrivateJob: the SDK verifies the launcher, seals the env and returns the decrypted result', async () => {
    const sdk = new EasyEnclave({ url: cp.api_url, apiKey: user.key, network: 'sandbox-1' });
    const seen: string[] = [];
    const out = await sdk.runPrivateJob({
      image,
      env: { WORD: 'sealed-word' },
      command: ['sh', '-c', 'echo "got $WORD"'],
      vcpus: 1,
      max_runtime: 30,
      onState: (j) => seen.push(j.state),
    });
    assert.equal(out.job.state, 'succeeded');
    assert.equal(Buffer.from(out.result!.stdout).toString(), 'got sealed-word\n');
    assert.equal(out.result!.exit_code, 0);
    assert.equal(out.usage_verified, true, 'the usage record was checked against the attested key');
    assert.equal(seen[seen.length - 1], 'succeeded');
  });

  it('a node whose launcher fails attestation while a job runs gets the job failed and refunded at once', async () => {
    const run = ee(['run', image, '--max-runtime', '200', '--', 'sleep', '150']);
    assert.equal(await run.exited, 0, run.output());
    const id = run.output().trim().split('\n').pop()!;
    await waitFor(async () => (await job(id)).state === 'running', 30_000, 'the job to run');
    refuse = true;
    cp.hub.reattestAll();
    await waitFor(async () => (await job(id)).state === 'failed', 60_000, 'the job to fail');
    const j = await job(id);
    assert.match(j.reason, /failed attestation/);
    assert.equal(j.settled_micro_usd, 0);
    assert.equal(j.refunded_micro_usd, j.locked_micro_usd);
    refuse = false;
    await placeable();
  });

  it('a control plane restarted while a job runs loses nothing: the job ends, settles once, its history is whole', async () => {
    const run = ee(['run', image, '--max-runtime', '60', '--', 'sleep', '4']);
    assert.equal(await run.exited, 0, run.output());
    const id = run.output().trim().split('\n').pop()!;
    await waitFor(async () => (await job(id)).state === 'running', 30_000, 'the job to run');
    await cp.shutdown(1000);
    cp = await start();
    await waitFor(async () => (await job(id)).state === 'succeeded', 60_000, 'the job to end after the restart');
    const j = await job(id);
    assert.deepEqual(
      j.history.map((h: { state: string }) => h.state),
      ['queued', 'starting', 'running', 'succeeded'],
    );
    assert.ok(j.usage, 'the signed usage record arrived after the restart');
    assert.equal(j.settled_micro_usd, Math.floor((PRICE * j.usage.record.vcpu_ms) / 3_600_000));
    assert.equal(j.settled_micro_usd + j.refunded_micro_usd, j.locked_micro_usd);
  });
});
