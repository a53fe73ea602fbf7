// The public attestation relay (GET /v1/apps/{app}/attestation) cannot be blocked for every app: slow agents
// of an attacker's own app plus a handful of unauthenticated requests hold only that app's and those callers'
// shares, and a relay that timed out stops counting against its agent. Real sockets; other loopback addresses
// (127.0.0.x) stand for other callers.
import assert from 'node:assert/strict';
import http from 'node:http';
import { afterEach, describe, test } from 'node:test';
import { newNonce } from '@easyenclave/attestation';
import type { ControlPlane } from '@easyenclave/control-plane/server';
import { closeAll, startAgent, startBackend, startCp, waitFor, waitRoutable, wsUrl } from '../helpers/network.js';
import { RawAgent } from '../lifecycle/raw-agent.js';

afterEach(() => closeAll());

interface Res {
  status: number;
  json: any;
}

/** A relay request for `app` from the caller address `from`. */
function relayFrom(cp: ControlPlane, app: string, from: string): Promise<Res> {
  const url = `${cp.api_url}/v1/apps/${app}/attestation?nonce=${newNonce().toString('hex')}`;
  return new Promise((resolve, reject) => {
    const req = http.get(url, { localAddress: from, agent: false, timeout: 30_000 }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (text += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, json: JSON.parse(text) }));
    });
    req.on('timeout', () => req.destroy(new Error('relay request timed out')));
    req.on('error', reject);
  });
}

/** Attested, healthy raw agents of `app` that never answer a relayed challenge. */
async function slowAgents(cp: ControlPlane, app: string, n: number): Promise<RawAgent[]> {
  const out: RawAgent[] = [];
  for (let i = 0; i < n; i++) {
    const raw = await RawAgent.connect(wsUrl(cp), { app_name: app, repo: `evil/${app}` });
    await raw.registerAndAttest();
    out.push(raw);
  }
  await waitRoutable(cp, app);
  return out;
}

describe('attestation relay caps', () => {
  test("slow agents of one app and one caller's requests do not block another app's relay", async () => {
    const cp = await startCp({ EE_ATTEST_DEADLINE_SEC: '10' });
    const backend = await startBackend();
    startAgent({ control_ws: wsUrl(cp), backend_url: backend.url });
    await waitRoutable(cp);
    const slow = await slowAgents(cp, 'evil', 4); // 4 agents × 2 pending relays each = 8 slots to hold

    // The attack: 8 relays to its own slow app from each of two addresses, held until the agents' deadline.
    const held: Promise<Res>[] = [];
    for (const from of ['127.0.0.2', '127.0.0.3']) for (let i = 0; i < 8; i++) held.push(relayFrom(cp, 'evil', from));
    const relayed = () => slow.reduce((n, a) => n + a.inbox.filter((m) => m.reason === 'client').length, 0);
    await waitFor(() => relayed() >= 8, 5000, 'relays to reach the slow agents');

    // Everyone else's relay still works, from fresh callers.
    for (const from of ['127.0.0.1', '127.0.0.5']) {
      const r = await relayFrom(cp, 'demo', from);
      assert.equal(r.status, 200, JSON.stringify(r.json));
      assert.equal(r.json.app, 'demo');
    }
    // The attacker's addresses are held to their share, and the slow app to its own.
    const own = await relayFrom(cp, 'demo', '127.0.0.2');
    assert.equal(own.status, 503);
    assert.equal(own.json.error.code, 'busy');
    assert.equal(relayed(), 8, 'no more than the per-app share reached the slow agents');
    for (const a of slow) a.terminate();
    const statuses = (await Promise.all(held)).map((r) => r.status).sort();
    assert.deepEqual(statuses, [...Array(8).fill(502), ...Array(8).fill(503)], 'only the shares were waiting');
  });

  test('a relay that timed out stops counting; its late answer is dropped without failing the agent', async () => {
    const cp = await startCp({ EE_ATTEST_DEADLINE_SEC: '1' });
    const raw = await RawAgent.connect(wsUrl(cp));
    raw.serve();
    await raw.registerAndAttest();
    await waitRoutable(cp);
    // Two relays the agent does not answer in time: 504, and both of its pending slots free again.
    const late = await Promise.all([relayFrom(cp, 'demo', '127.0.0.1'), relayFrom(cp, 'demo', '127.0.0.2')]);
    assert.deepEqual(
      late.map((r) => r.json.error.code),
      ['agent_timeout', 'agent_timeout'],
    );
    const stale = [await raw.next('attest_request'), await raw.next('attest_request')];
    // A third relay is taken at once and answered.
    const answered = relayFrom(cp, 'demo', '127.0.0.3');
    await raw.answer(await raw.next('attest_request'));
    const r = await answered;
    assert.equal(r.status, 200, JSON.stringify(r.json));
    // The late answers are dropped quietly: no attest_result, no failure, the agent stays. (A relay answered
    // after them shows the control plane has read them: one socket, in order.)
    for (const s of stale) await raw.answer(s);
    const after = relayFrom(cp, 'demo', '127.0.0.4');
    await raw.answer(await raw.next('attest_request'));
    assert.equal((await after).status, 200);
    assert.ok(raw.open, JSON.stringify(raw.close_info));
    assert.equal(raw.received.filter((m) => m.type === 'attest_result').length, 1);
    const rows = await cp.store.listAttestations({ agent_id: raw.reg.agent_id, limit: 10 });
    assert.ok(rows.every((x) => x.ok));
  });
});
