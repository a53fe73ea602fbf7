// Agent failures seen from the client: an agent killed mid-response must surface as a broken response (never a
// silently truncated one, never a hang); an agent stopped with SIGTERM drains its in-flight requests (GOAWAY)
// and the control plane then answers 503 no_agent.

import assert from 'node:assert/strict';
import http from 'node:http';
import { afterEach, describe, test } from 'node:test';
import { closeAll, spawnAgent, startBackend, startCp, waitFor, waitRoutable, wsUrl } from '../helpers/network.js';
import { proxyGet, resolveApp, within } from './util.js';

afterEach(() => closeAll());

type Outcome =
  | { kind: 'end'; status: number | undefined; bytes: number }
  | { kind: 'error'; status: number | undefined; bytes: number; error: string };

describe('agent failure', () => {
  test('agent SIGKILLed mid-response during /drip/1000/5: the client sees an error, never a hang', async () => {
    const backend = await startBackend();
    const cp = await startCp({ EE_QUEUE_TIMEOUT_MS: '300' });
    const agent = spawnAgent({ control_ws: wsUrl(cp), backend_url: backend.url });
    await waitRoutable(cp, 'demo', 10_000);

    let killed_at = 0;
    const outcome = await within(
      new Promise<Outcome>((resolve) => {
        let bytes = 0;
        let status: number | undefined;
        const req = http.get(`${cp.api_url}/v1/proxy/demo/drip/1000/5`, (res) => {
          status = res.statusCode;
          res.on('data', (c: Buffer) => {
            bytes += c.length;
            if (killed_at === 0 && bytes >= 8 * 1024) {
              killed_at = Date.now();
              agent.kill('SIGKILL');
            }
          });
          res.on('end', () => resolve({ kind: 'end', status, bytes }));
          res.on('aborted', () => resolve({ kind: 'error', status, bytes, error: 'aborted' }));
          res.on('error', (err) => resolve({ kind: 'error', status, bytes, error: err.message }));
        });
        req.on('error', (err) => resolve({ kind: 'error', status, bytes, error: err.message }));
      }),
      10_000,
      'the client of a response whose agent was SIGKILLed (a hang)',
    );
    assert.ok(killed_at > 0, 'the agent was killed mid-response');
    assert.equal(outcome.status, 200);
    assert.equal(
      outcome.kind,
      'error',
      `the client must see a broken response, not a clean end: ${JSON.stringify(outcome)}`,
    );
    assert.ok(outcome.bytes < 1000 * 1024, `truncated: ${outcome.bytes} bytes`);
    assert.equal(await within(agent.exited, 5000, 'agent exit'), 'SIGKILL');

    // The control plane noticed: the app is offline and new requests get a clear 503.
    await waitFor(async () => (await resolveApp(cp)).status === 403, 5000, 'the app to stop resolving');
    const next = await proxyGet(cp, '/echo');
    assert.equal(next.status, 503, next.text);
    assert.equal(next.json.error.code, 'no_agent');
  });

  test('agent SIGTERM while a request is in flight: the request completes (GOAWAY drain), then 503 no_agent', async () => {
    const backend = await startBackend();
    const cp = await startCp({ EE_QUEUE_TIMEOUT_MS: '300' });
    const agent = spawnAgent({ control_ws: wsUrl(cp), backend_url: backend.url });
    await waitRoutable(cp, 'demo', 10_000);

    const inflight = proxyGet(cp, '/slow/2500');
    await waitFor(
      () => [...cp.hub.links].some((l) => l.session.activeStreams > 0),
      3000,
      'the request to be in flight',
    );
    agent.kill('SIGTERM');

    // During the drain the agent takes no new work: the control plane stops routing to it at once.
    await waitFor(async () => (await resolveApp(cp)).status === 403, 2000, 'the draining agent to stop resolving');
    const during = await resolveApp(cp);
    assert.equal(during.json?.error?.code, 'app_draining', during.text);

    const res = await within(inflight, 10_000, 'the in-flight request while the agent drains');
    assert.equal(res.status, 200, res.text);
    assert.deepEqual(res.json, { slow: 2500 });

    assert.equal(await within(agent.exited, 10_000, 'the agent to exit after draining'), 0, agent.output());
    await waitFor(() => cp.hub.links.size === 0, 3000, 'the control plane to drop the agent link');
    const after = await proxyGet(cp, '/echo');
    assert.equal(after.status, 503, after.text);
    assert.equal(after.json.error.code, 'no_agent');
    assert.ok(after.headers.get('retry-after'), 'a 503 says when to retry');
  });
});
