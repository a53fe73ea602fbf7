// Private jobs end to end, with real parts: a control plane (SQLite file, real ledger), a node launcher run as
// `ee node run` (a subprocess that dials the tunnel, attests with sandbox evidence and runs podman), and the
// client as `ee jobs run` (verifies the launcher's evidence, seals the env, opens the result). The secret goes
// only sealed through the control plane: it is looked for in its database, WAL and logs.
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import { pino } from 'pino';
import { EasyEnclave } from '@easyenclave/sdk';
import { jobEnvAad } from '@easyenclave/protocol/launcher';
import { seal, generateRecipientKey, toHex } from '@easyenclave/protocol/seal/index';
import type { ControlPlane } from '@easyenclave/control-plane/server';
import { launcherPlaceable, stakedNode, TestLauncher } from '../helpers/launcher.js';
import { closeAll, spawnEe, startCp, waitFor, type ProcessHandle } from '../helpers/network.js';
import { PODMAN_SUITE_TIMEOUT_MS, podmanSkipReason, testCli, testImage } from '../helpers/podman.js';
import { tmpDir } from '../helpers/tmp.js';
import { call } from '../ledger-http/client.js';
import type { Party } from '../market/util.js';

/** 1 micro-USD per vCPU-ms: what settles equals the signed vCPU-ms exactly. */
const PRICE = 3_600_000;
const HEALTH_TIMEOUT_SEC = 4;

const skip = podmanSkipReason();

describe('private jobs end to end', { skip, timeout: PODMAN_SUITE_TIMEOUT_MS }, () => {
  let cp: ControlPlane;
  let image: string;
  let user: Party;
  let provider: Party;
  let node_token: string;
  let launcher: ProcessHandle;
  const node = new TestLauncher();
  const home = tmpDir('ee-home-');
  const logLines: string[] = [];
  let dbPath: string;

  const startLauncher = () => node.start(cp, node_token);

  const launcherReady = () => launcherPlaceable(cp, user);

  const ee = (args: string[], extra: Record<string, string> = {}) =>
    spawnEe(['jobs', ...args], {
      EE_CONTROL_URL: cp.api_url,
      EE_API_KEY: user.key,
      EE_NETWORK: 'sandbox-1',
      HOME: home,
      ...extra,
    });

  const job = async (id: string) => (await call(cp.api_url, 'GET', `/v1/jobs/${id}`, { token: user.key })).body;
  const waitState = (id: string, states: string[], timeout_ms = 60_000) =>
    waitFor(async () => states.includes((await job(id)).state), timeout_ms, `job ${id} to reach ${states.join('|')}`);
  const available = async (account: string) =>
    (await call(cp.api_url, 'GET', `/v1/balances/${account}`)).body.available_micro_usd as number;
  const containersOf = async (id: string) =>
    (await testCli().ok(['ps', '--all', '--format={{.Names}} {{.State}}', `--filter=name=^ee-${id}$`]))
      .toString()
      .trim();

  before(async () => {
    image = await testImage();
    const sink = new Writable({
      write(chunk: Buffer, _e, cb) {
        logLines.push(chunk.toString());
        cb();
      },
    });
    dbPath = join(tmpDir(), 'cp.db');
    cp = await startCp(
      { EE_HEALTH_TIMEOUT_SEC: String(HEALTH_TIMEOUT_SEC), EE_DB_PATH: dbPath },
      { logger: pino({ level: 'debug' }, sink) },
    );
    ({ provider, user, node_token } = await stakedNode(cp, PRICE));
    launcher = startLauncher();
    await launcherReady();
  });
  after(async () => {
    launcher?.kill('SIGTERM');
    await closeAll();
  });

  it('ee jobs run: the client gets the digest of the secret; the secret is nowhere in the control plane; the balance moves by exactly the signed vCPU-ms × price', async () => {
    const secret = `s3cret-${randomBytes(12).toString('hex')}`;
    const userBefore = await available(user.id);
    const providerBefore = await available(`${provider.id}:earnings`);
    const run = ee(
      [
        'run',
        image,
        '--env',
        'SECRET',
        '--max-runtime',
        '30',
        '--wait',
        '--',
        'sh',
        '-c',
        'printf %s "$SECRET" | sha256sum',
      ],
      { SECRET: secret },
    );
    const code = await run.exited;
    const out = run.output();
    assert.equal(code, 0, out);
    const digest = createHash('sha256').update(secret).digest('hex');
    assert.match(out, new RegExp(digest), out);
    const id = /Job\s+(job_[0-9a-f]{20})/.exec(out)?.[1];
    assert.ok(id, out);
    const j = await job(id);
    assert.equal(j.state, 'succeeded');
    assert.equal(j.exit_code, 0);
    assert.match(j.image_id, /^sha256:/);
    assert.ok(j.usage && j.usage.record.job_id === id, 'the signed usage record is kept');
    const billed = j.usage.record.vcpu_ms as number;
    assert.equal(j.billed_vcpu_ms, billed);
    assert.equal(j.settled_micro_usd, Math.floor((PRICE * billed) / 3_600_000));
    assert.equal(j.settled_micro_usd + j.refunded_micro_usd, j.locked_micro_usd);
    assert.equal(userBefore - (await available(user.id)), j.settled_micro_usd, 'the user paid exactly the settlement');
    assert.equal((await available(`${provider.id}:earnings`)) - providerBefore, j.settled_micro_usd);
    // Nowhere in the control plane: its database and WAL (bytes, as UTF-8 and base64) and its logs.
    const needles = [secret, Buffer.from(secret).toString('base64').slice(0, 24)];
    for (const f of [dbPath, `${dbPath}-wal`]) {
      if (!existsSync(f)) continue;
      const bytes = readFileSync(f);
      for (const n of needles) assert.equal(bytes.includes(n), false, `the secret is in ${f}`);
    }
    assert.ok(logLines.length > 0, 'the control plane logged something');
    for (const n of needles) assert.equal(logLines.join('').includes(n), false, 'the secret is in the logs');
    assert.equal(await containersOf(id), '', 'the container is removed once its end is stored');
  });

  it('a job over its max runtime is stopped and billed at most its max runtime', async () => {
    const run = ee(['run', image, '--max-runtime', '2', '--wait', '--', 'sleep', '30']);
    await run.exited;
    const id = /Job\s+(job_[0-9a-f]{20})/.exec(run.output())?.[1];
    assert.ok(id, run.output());
    const j = await job(id);
    assert.equal(j.state, 'timed_out', JSON.stringify(j));
    assert.ok(j.billed_vcpu_ms <= 2000 * j.vcpus, `billed ${j.billed_vcpu_ms}`);
    assert.ok(j.settled_micro_usd <= Math.floor((PRICE * 2000 * j.vcpus) / 3_600_000));
    assert.equal(j.settled_micro_usd + j.refunded_micro_usd, j.locked_micro_usd);
  });

  it('cancel stops the container; the job is billed what it ran', async () => {
    const run = ee(['run', image, '--max-runtime', '120', '--', 'sleep', '100']);
    assert.equal(await run.exited, 0, run.output());
    const id = run.output().trim().split('\n').pop()!;
    await waitState(id, ['running']);
    const c = ee(['cancel', id]);
    assert.equal(await c.exited, 0, c.output());
    await waitState(id, ['cancelled']);
    const j = await job(id);
    assert.ok(j.settled_micro_usd + j.refunded_micro_usd === j.locked_micro_usd);
    assert.ok(j.billed_vcpu_ms < 100_000);
    await waitFor(async () => !(await containersOf(id)).includes('running'), 30_000, 'the container to stop');
  });

  it('a tampered sealed env is refused by the launcher without starting anything, and refunded', async () => {
    const sdk = new EasyEnclave({ url: cp.api_url, apiKey: user.key, network: 'sandbox-1' });
    const place = await sdk.jobPlacement();
    const id = `job_${randomBytes(10).toString('hex')}`;
    const sealed = await seal(place.hpke_public_key, new TextEncoder().encode('{"SECRET":"x"}'), jobEnvAad(id));
    sealed[sealed.length - 5]! ^= 0x01;
    const key = await generateRecipientKey();
    const r = await call(cp.api_url, 'POST', '/v1/jobs', {
      token: user.key,
      body: {
        image,
        job_id: id,
        sealed_env: Buffer.from(sealed).toString('base64'),
        env_key: place.hpke_public_key,
        result_key: toHex(key.publicKey),
        max_runtime_s: 30,
      },
    });
    assert.equal(r.status, 201, JSON.stringify(r.body));
    await waitState(id, ['failed']);
    const j = await job(id);
    assert.match(j.reason, /env_refused/);
    assert.equal(j.settled_micro_usd, 0);
    assert.equal(j.refunded_micro_usd, j.locked_micro_usd);
    assert.equal(await containersOf(id), '', 'no container was created');
  });

  /** `ee jobs run --wait` of a shell script that writes the output file `name`, written back to `file`. */
  const runWithOutput = (name: string, file: string, script: string) =>
    ee(['run', image, '--output-file', name, '--output', file, '--wait', '--', 'sh', '-c', script]);

  it('an output file: returned sealed with the result; ee jobs run --output and ee jobs show --output write it', async () => {
    const file = join(home, 'out.bin');
    const run = runWithOutput('out.bin', file, 'seq 1 20000 > /ee/output/out.bin');
    assert.equal(await run.exited, 0, run.output());
    const expected = Array.from({ length: 20000 }, (_, i) => `${i + 1}\n`).join('');
    assert.equal(readFileSync(file, 'utf8'), expected);
    const id = /Job\s+(job_[0-9a-f]{20})/.exec(run.output())![1]!;
    const j = await job(id);
    assert.equal(j.output_file, 'out.bin');
    // The control plane holds it only sealed: the plaintext is not in its view.
    assert.ok(!JSON.stringify(j).includes('19999\n20000'));
    const again = join(home, 'again.bin');
    const show = ee(['show', id, '--output', again]);
    assert.equal(await show.exited, 0, show.output());
    assert.equal(readFileSync(again, 'utf8'), expected);
    // The SDK returns the decrypted bytes.
    const sdk = new EasyEnclave({ url: cp.api_url, apiKey: user.key, network: 'sandbox-1' });
    const out = await sdk.runPrivateJob({
      image,
      command: ['sh', '-c', 'printf sdk-bytes > /ee/output/o'],
      output_file: 'o',
      max_runtime: 30,
    });
    assert.equal(out.result?.output?.status, 'ok');
    assert.equal(Buffer.from((out.result!.output as { bytes: Uint8Array }).bytes).toString(), 'sdk-bytes');
  });

  it('an output file over 1 MiB fails the job with a clear reason; the CLI says so and exits 1', async () => {
    const file = join(home, 'big.bin');
    const run = runWithOutput('big', file, 'dd if=/dev/zero of=/ee/output/big bs=1024 count=1100');
    assert.equal(await run.exited, 1, run.output());
    assert.match(run.output(), /output file too large: 1126400 bytes, the limit is 1 MiB/);
    assert.ok(!existsSync(file));
    const id = /Job\s+(job_[0-9a-f]{20})/.exec(run.output())![1]!;
    const j = await job(id);
    assert.equal(j.state, 'failed');
    assert.equal(j.exit_code, 0);
    assert.match(j.reason, /output file too large/);
    assert.equal(j.settled_micro_usd + j.refunded_micro_usd, j.locked_micro_usd, 'it paid what it ran');
    const show = ee(['show', id, '--output', file]);
    assert.equal(await show.exited, 1);
    assert.match(show.output(), /over the 1048576-byte limit/);
  });

  it('a job asking for more than any node has is refused with a clear 4xx', async () => {
    const r = await call(cp.api_url, 'GET', '/v1/jobs/placement?vcpus=64', { token: user.key });
    assert.equal(r.status, 400);
    assert.equal(r.body.error.code, 'job_too_large');
    const run = ee(['run', image, '--vcpus', '64', '--wait', '--', 'true']);
    assert.equal(await run.exited, 1);
    assert.match(run.output(), /no eligible node offers 64 vCPUs/);
  });

  it('isolation: no host network, no capabilities, the memory limit applies', async () => {
    const run = ee([
      'run',
      image,
      '--memory-mib',
      '64',
      '--max-runtime',
      '30',
      '--wait',
      '--',
      'sh',
      '-c',
      'cat /proc/net/dev | tail -n +3 | cut -d: -f1; grep CapEff /proc/self/status; head -c 200000000 /dev/zero | tail > /dev/null && echo survived || echo killed-at-the-limit',
    ]);
    await run.exited;
    const out = run.output();
    assert.match(out, /^\s*lo\s*$/m, out);
    assert.doesNotMatch(out, /eth0|ens|wlan/, out);
    assert.match(out, /CapEff:\s+0000000000000000/, out);
    // The kernel's OOM killer picks its victim: `tail` alone (the shell goes on and says so), or the whole
    // container (the job then fails with the launcher's out-of-memory reason). Either proves the limit applies.
    assert.match(
      out,
      /killed-at-the-limit|out of memory \(limit 64 MiB\)/,
      'a process over the memory limit is killed',
    );
    assert.doesNotMatch(out, /survived/, 'the job exceeded its memory limit');
  });

  it('a launcher killed mid-job gets the job failed and refunded; restarted, it stops the orphaned container', async () => {
    const run = ee(['run', image, '--max-runtime', '300', '--', 'sleep', '250']);
    assert.equal(await run.exited, 0, run.output());
    const id = run.output().trim().split('\n').pop()!;
    await waitState(id, ['running']);
    const userBefore = await available(user.id);
    launcher.kill('SIGKILL');
    await launcher.exited;
    await waitState(id, ['failed'], (HEALTH_TIMEOUT_SEC + 30) * 1000);
    const j = await job(id);
    assert.equal(j.settled_micro_usd, 0);
    assert.equal(j.refunded_micro_usd, j.locked_micro_usd);
    assert.equal((await available(user.id)) - userBefore, j.locked_micro_usd, 'the whole lock came back');
    launcher = startLauncher();
    await launcherReady();
    await waitFor(async () => !(await containersOf(id)).includes('running'), 60_000, 'the orphan to be stopped');
    const after = await job(id);
    assert.equal(after.state, 'failed', 'a late end changes nothing');
    assert.equal(after.settled_micro_usd, 0);
  });
});
