// Control-plane restarts: a kill -9 of the real `ee control-plane` process followed by a fresh process on the
// same ports and database must bring the agents back with no manual step, keep the registration (same expiry),
// and work the same on SQLite and PostgreSQL. SIGTERM drains in-flight requests and exits 0.

import assert from 'node:assert/strict';
import { afterEach, describe, test, type TestContext } from 'node:test';
import pg from 'pg';
import {
  closeAll,
  spawnAgent,
  spawnCp,
  startAgent,
  startBackend,
  waitFor,
  waitRoutable,
  type CpEnv,
} from '../helpers/network.js';
import { pgSkipReason, withTempPgDatabase } from '../helpers/pg.js';
import { adminApp, proxyGet, resolveApp, within } from './util.js';

afterEach(() => closeAll());

const pgSkip = await pgSkipReason();

/** Kill -9, restart with the same env, and check the agent is back, serving, with its registration intact. */
async function killAndRestart(t: TestContext, extra: CpEnv): Promise<{ expires_at: string; created_at: string }> {
  const backend = await startBackend();
  const cp = await spawnCp(extra);
  const agent = spawnAgent({ control_ws: cp.ws_url, backend_url: backend.url, agent_id: 'restart-agent-1' });
  await waitRoutable(cp, 'demo', 10_000);

  const before = await adminApp(cp);
  assert.equal(before.status, 200, before.text);
  assert.equal(before.json.registrations.length, 1);
  const reg0 = before.json.registrations[0];
  const res0 = await resolveApp(cp);
  assert.equal(res0.status, 200);
  assert.equal(res0.json.expires_at, reg0.expires_at);
  assert.equal((await proxyGet(cp, '/echo')).status, 200);

  cp.kill('SIGKILL');
  assert.equal(await within(cp.exited, 5000, 'control plane to die'), 'SIGKILL');
  await assert.rejects(fetch(`${cp.api_url}/health`), 'the old process must really be gone');

  const cp2 = await spawnCp(cp.env); // same env: same ports, same database
  const listening_at = Date.now();
  assert.equal(cp2.api_url, cp.api_url);

  // No manual step: the agent redials by itself and serves again within 5 s of the new process listening.
  await waitFor(
    async () => (await proxyGet(cp2, '/echo')).status === 200,
    5000,
    'the agent back and serving after the restart',
  );
  t.diagnostic(`agent serving again ${Date.now() - listening_at} ms after the new control plane listened`);
  assert.equal(agent.child.exitCode, null, 'the agent process must have survived the control-plane restart');

  // The registration survived: same row, same expiry (a reconnect must not re-create or extend it).
  const after = await adminApp(cp2);
  assert.equal(after.status, 200, after.text);
  assert.deepEqual(
    after.json.registrations.map((r: { release_tag: string; created_at: string; expires_at: string }) => [
      r.release_tag,
      r.created_at,
      r.expires_at,
    ]),
    [[reg0.release_tag, reg0.created_at, reg0.expires_at]],
  );
  const res1 = await resolveApp(cp2);
  assert.equal(res1.status, 200, res1.text);
  assert.equal(res1.json.expires_at, reg0.expires_at);
  // The agent row survived too, and the new process recorded that the old one went away.
  assert.deepEqual(
    after.json.agents.map((a: { agent_id: string; connected: boolean }) => [a.agent_id, a.connected]),
    [['restart-agent-1', true]],
  );
  assert.ok(
    after.json.recent_health_events.some(
      (e: { kind: string; detail: string | null }) =>
        e.kind === 'disconnected' && e.detail === 'control plane restarted',
    ),
    `expected a 'disconnected' event from the restart: ${JSON.stringify(after.json.recent_health_events)}`,
  );
  return { expires_at: reg0.expires_at, created_at: reg0.created_at };
}

describe('control plane restart', () => {
  test('kill -9 and restart on SQLite: the agent is back within 5 s and the registration (same expiry) survived', async (t) => {
    await killAndRestart(t, {});
  });

  describe('on PostgreSQL', { skip: pgSkip }, () => {
    test('kill -9 and restart on PostgreSQL: same guarantees, and the rows really live in PostgreSQL', async (t) => {
      await withTempPgDatabase(async (url) => {
        try {
          const reg = await killAndRestart(t, { EE_DATABASE_URL: url });
          const client = new pg.Client({ connectionString: url });
          await client.connect();
          try {
            const rows = (await client.query('SELECT app_name, release_tag, expires_at_ms FROM registrations')).rows;
            assert.deepEqual(
              rows.map((r) => [r.app_name, r.release_tag, new Date(Number(r.expires_at_ms)).toISOString()]),
              [['demo', 'v1.0.0', reg.expires_at]],
            );
          } finally {
            await client.end();
          }
        } finally {
          await closeAll(); // before the database is dropped
        }
      });
    });
  });

  test('SIGTERM while a slow request is in flight: the request completes with 200, then the process exits 0', async () => {
    const backend = await startBackend();
    const cp = await spawnCp(); // drain timeout: the default 30 s
    startAgent({ control_ws: cp.ws_url, backend_url: backend.url });
    await waitRoutable(cp, 'demo', 10_000);

    const started = Date.now();
    const inflight = proxyGet(cp, '/slow/1500');
    await waitFor(
      async () => (await adminApp(cp)).json.agents.some((a: { streams_active: number }) => a.streams_active > 0),
      3000,
      'the slow request to be in flight',
    );
    cp.kill('SIGTERM');

    const res = await within(inflight, 10_000, 'the in-flight request during graceful shutdown');
    assert.equal(res.status, 200, res.text);
    assert.deepEqual(res.json, { slow: 1500 });
    assert.ok(Date.now() - started >= 1500);

    // It exits once the request is done, not after sitting out the 30 s drain timeout.
    const code = await within(cp.exited, 15_000, 'the control plane to exit after draining');
    assert.equal(code, 0, `exit code; output:\n${cp.output()}`);
  });
});
