// Pinning: a request sealed to agent A's key is delivered only to A, never to agent B of the same app (even
// when routing would prefer B), is not retried elsewhere, and once A is gone the control plane answers
// 409 sealed_key_gone so the client verifies again and seals to the key of an agent that exists.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { SealedHttpRequest } from '@easyenclave/protocol/seal/index';
import type { ControlPlane } from '@easyenclave/control-plane/server';
import type { Agent } from '@easyenclave/agent';
import { EasyEnclave } from '@easyenclave/sdk';
import { closeAll, startAgent, startBackend, startCp, waitFor, waitRoutable, wsUrl } from '../helpers/network.js';

describe('pinning of sealed requests', () => {
  let cp: ControlPlane;
  const agents: Agent[] = [];
  const hits = [0, 0];

  before(async () => {
    cp = await startCp();
    for (const i of [0, 1]) {
      const b = await startBackend();
      b.server.on('request', () => hits[i]!++);
      agents.push(startAgent({ control_ws: wsUrl(cp), backend_url: b.url, app_name: 'pin' }));
    }
    await waitRoutable(cp, 'pin');
    await waitFor(() => [...cp.hub.links].filter((l) => l.attested && l.keyset).length === 2, 10_000, 'two agents');
  });
  after(closeAll);

  const send = async (hpke: string, body = 'x') => {
    const sealed = await SealedHttpRequest.create(hpke, {
      method: 'POST',
      path: '/echo',
      body: new TextEncoder().encode(body),
    });
    const res = await fetch(`${cp.api_url}/v1/proxy/pin/echo`, {
      method: 'POST',
      headers: sealed.headers,
      body: sealed.body as Uint8Array,
    });
    const opened = await sealed.openResponse(res);
    return { status: res.status, sealed: opened.sealed, text: await new Response(opened.body).text() };
  };

  it('every request sealed to A reaches A and only A; the same for B', async () => {
    for (const [i, a] of agents.entries()) {
      hits[0] = hits[1] = 0;
      for (let n = 0; n < 12; n++) {
        const r = await send(a.keys.toJSON().hpke_public_key);
        assert.equal(r.status, 200);
        assert.equal(r.sealed, true);
      }
      assert.deepEqual(hits, i === 0 ? [12, 0] : [0, 12]);
    }
  });

  it('when A is gone, a request sealed to A is answered 409 sealed_key_gone and B never sees it', async () => {
    const a = agents[0]!;
    const hpke = a.keys.toJSON().hpke_public_key;
    await a.stop(0);
    await waitFor(() => [...cp.hub.links].filter((l) => !l.closed).length === 1, 10_000, 'A gone');
    hits[0] = hits[1] = 0;
    const r = await send(hpke);
    assert.equal(r.status, 409);
    assert.equal(r.sealed, false);
    assert.equal(JSON.parse(r.text).error.code, 'sealed_key_gone');
    assert.deepEqual(hits, [0, 0]);
    // Sealed again to the agent that exists, it goes through.
    assert.equal((await send(agents[1]!.keys.toJSON().hpke_public_key)).status, 200);
    assert.deepEqual(hits, [0, 1]);
  });

  it('the SDK, confidential: when its agent is gone it verifies the app again and re-seals to another', async () => {
    const b = await startBackend();
    agents.push(startAgent({ control_ws: wsUrl(cp), backend_url: b.url, app_name: 'pin' }));
    await waitFor(() => [...cp.hub.links].filter((l) => !l.closed && l.attested).length === 2, 10_000, 'B and C');
    const ee = new EasyEnclave({ url: cp.api_url, network: 'sandbox-1' });
    const app = await ee.connect('pin', { confidential: true, verify: { allow_sandbox: true } });
    const first = app.verified!.agent_id;
    assert.equal((await app.post('/echo', 'one')).status, 200);
    await agents.find((a) => a.config.agent_id === first)!.stop(0);
    await waitFor(() => [...cp.hub.links].filter((l) => !l.closed).length === 1, 10_000, 'one agent left');
    const res = await app.post('/echo', 'two');
    assert.equal(res.status, 200);
    assert.equal(((await res.json()) as { body: string }).body, 'two');
    assert.notEqual(app.verified!.agent_id, first, 'verified again: another agent');
  });
});
