// The jobs API part of `node bench/jobs.mjs`: an in-process control plane (SQLite file) and an in-process node
// launcher (`LauncherNode`: tunnel, sandbox attestation, podman), then
//   - POST /v1/jobs → the container's first instruction (busybox `adjtimex` prints the kernel clock), sequential;
//   - N short jobs submitted by N concurrent clients (a client whose job finds no free capacity retries after a
//     short pause: jobs are placed only where a launcher has room), each until its lock is settled or refunded.
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { pino } from 'pino';
import { loadControlPlaneConfig } from '@easyenclave/control-plane/config';
import { startControlPlane } from '@easyenclave/control-plane/server';
import { LauncherNode } from '@easyenclave/launcher';
import { jobResultAad } from '@easyenclave/protocol/launcher';
import { generateRecipientKey, open, toHex } from '@easyenclave/protocol/seal/index';

const ADMIN = randomBytes(16).toString('hex');
const PRICE = 3_600_000;
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
/** Warnings go to stderr: stdout carries the benchmark's result. */
const logger = () => pino({ level: 'warn' }, pino.destination(2));

async function call(base, method, path, token, body) {
  const res = await fetch(`${base}${path}`, {
    method,
    headers: { authorization: `Bearer ${token}`, ...(body ? { 'content-type': 'application/json' } : {}) },
    ...(body ? { body: JSON.stringify(body) } : {}),
  });
  return { status: res.status, body: await res.json().catch(() => null) };
}
const must = (r, what) => {
  if (r.status >= 300) throw new Error(`${what}: ${r.status} ${JSON.stringify(r.body)}`);
  return r.body;
};

export async function benchJobsApi({ dir, env, image, runs, concurrent, nowMs, adjtimexMs }) {
  const cp = await startControlPlane(
    loadControlPlaneConfig({
      EE_CONTROL_BIND: '127.0.0.1',
      EE_CONTROL_PORT: '0',
      EE_PROXY_BIND: '127.0.0.1',
      EE_PROXY_PORT: '0',
      EE_DB_PATH: join(dir, 'cp.db'),
      EE_ADMIN_TOKEN: ADMIN,
      EE_LOG_LEVEL: 'warn',
    }),
    { logger: logger() },
  );
  let launcher = null;
  try {
    const base = cp.api_url;
    const provider = must(await call(base, 'POST', '/v1/accounts', ADMIN, { kind: 'provider', name: 'p' }), 'provider');
    const user = must(await call(base, 'POST', '/v1/accounts', ADMIN, { kind: 'user', name: 'u' }), 'user');
    for (const a of [provider.account_id, user.account_id])
      must(
        await call(base, 'POST', '/v1/credits/purchase', ADMIN, { account: a, amount: '$1000', payment_ref: `b-${a}` }),
        'credits',
      );
    const node = must(
      await call(base, 'POST', '/v1/nodes/register', provider.api_key, {
        region: 'local',
        tier: 'standard',
        vcpus: 2,
        price_per_vcpu_hour_micro_usd: PRICE,
      }),
      'node',
    );
    must(
      await call(base, 'POST', `/v1/nodes/${node.node_id}/stake`, provider.api_key, {
        amount_micro_usd: PRICE * 2 * 24,
      }),
      'stake',
    );
    launcher = await LauncherNode.start(
      {
        ...env,
        EE_CONTROL_WS: `${base.replace('http', 'ws')}/v1/tunnel`,
        EE_NODE_TOKEN: node.node_token,
        EE_NETWORK: 'sandbox-1',
        EE_LAUNCHER_ID: `bench-${randomBytes(5).toString('hex')}`,
        EE_LAUNCHER_STATE_DIR: join(dir, 'launcher'),
        EE_AGENT_STATE_DIR: join(dir, 'launcher'),
        EE_HEALTH_INTERVAL_SEC: '1',
        EE_LOG_LEVEL: 'warn',
      },
      { logger: logger() },
    );
    for (let i = 0; i < 600; i++) {
      if ((await call(base, 'GET', '/v1/jobs/placement', user.api_key)).status === 200) break;
      await sleep(100);
    }
    const key = await generateRecipientKey();
    const result_key = toHex(key.publicKey);

    /** One job: POST, then wait for its end; returns the job and when POST was sent. */
    const runJob = async (command, poll_ms) => {
      for (;;) {
        const t0 = nowMs();
        const r = await call(base, 'POST', '/v1/jobs', user.api_key, {
          image,
          command,
          result_key,
          vcpus: 1,
          memory_mib: 64,
          max_runtime_s: 60,
        });
        if (r.status === 409 && r.body?.error?.code === 'no_node_with_capacity') {
          await sleep(50 + Math.random() * 100);
          continue;
        }
        const job = must(r, 'job');
        for (;;) {
          const j = must(await call(base, 'GET', `/v1/jobs/${job.job_id}`, user.api_key), 'job state');
          if (['succeeded', 'failed', 'timed_out', 'cancelled'].includes(j.state)) return { t0, job: j };
          await sleep(poll_ms);
        }
      }
    };

    const first = [];
    await runJob(['/usr/bin/adjtimex'], 20); // warm-up
    for (let i = 0; i < runs; i++) {
      const { t0, job } = await runJob(['/usr/bin/adjtimex'], 20);
      if (job.state !== 'succeeded') throw new Error(`job ${job.state}: ${job.reason}`);
      const plain = JSON.parse(
        new TextDecoder().decode(await open(key, Buffer.from(job.result_sealed, 'base64'), jobResultAad(job.job_id))),
      );
      first.push({ first_ms: adjtimexMs(Buffer.from(plain.stdout_tail, 'base64').toString()) - t0 });
    }

    const t0 = nowMs();
    const many = await Promise.all(Array.from({ length: concurrent }, () => runJob(['true'], 200)));
    const wall_ms = nowMs() - t0;
    const ended = many.map((m) => m.job);
    const settled = ended.filter((j) => j.settled_micro_usd !== null && j.refunded_micro_usd !== null);
    const balanced = settled.every((j) => j.settled_micro_usd + j.refunded_micro_usd === j.locked_micro_usd);
    return {
      first,
      many: {
        jobs: concurrent,
        succeeded: ended.filter((j) => j.state === 'succeeded').length,
        not_succeeded: ended.filter((j) => j.state !== 'succeeded').map((j) => `${j.state}: ${j.reason}`),
        locks_resolved: settled.length,
        locked_equals_settled_plus_refunded: balanced,
        wall_ms,
      },
    };
  } finally {
    await launcher?.stop();
    await cp.shutdown(0);
  }
}
