// GET /v1/apps/:app/attestation: the control plane relays a client's nonce to one of the app's agents
// (attest_request, reason 'client') and returns the agent's answer as produced. Against a real control plane
// with a real agent (sandbox) and hand-driven protocol clients (RawAgent) where the test must control the
// agent's answer. A relay must never count as, or disturb, the agent's own attestation.
import assert from 'node:assert/strict';
import { afterEach, describe, test } from 'node:test';
import { computeReportData, newNonce, REPORT_DATA_DOMAINS, SandboxVerifier } from '@easyenclave/attestation';
import { closeAll, startAgent, startBackend, startCp, waitFor, waitRoutable, wsUrl } from '../helpers/network.js';
import { newAgentId, RawAgent } from '../lifecycle/raw-agent.js';
import { httpGet, resolveApp } from '../lifecycle/util.js';

afterEach(() => closeAll());

const relayUrl = (cp: { api_url: string }, app: string, nonce: string, agent?: string) =>
  `${cp.api_url}/v1/apps/${app}/attestation?nonce=${nonce}${agent !== undefined ? `&agent=${agent}` : ''}`;

/** A raw agent that is registered, attested and healthy (routable). */
async function routableRaw(
  cp: { api_url: string },
  fields: { app_name?: string; agent_id?: string } = {},
): Promise<RawAgent> {
  const raw = await RawAgent.connect(wsUrl(cp), fields);
  raw.serve();
  await raw.registerAndAttest();
  await waitRoutable(cp, fields.app_name ?? 'demo');
  return raw;
}

describe('GET /v1/apps/:app/attestation (relay)', () => {
  test('a real agent answers; the evidence verifies over the caller nonce and keyset', async () => {
    const cp = await startCp();
    const backend = await startBackend();
    const agent = startAgent({ control_ws: wsUrl(cp), backend_url: backend.url, agent_id: 'agent-relay-1' });
    await waitRoutable(cp);
    const nonce = newNonce();
    const res = await httpGet(relayUrl(cp, 'demo', nonce.toString('hex').toUpperCase()));
    assert.equal(res.status, 200, res.text);
    assert.equal(res.headers.get('cache-control'), 'no-store');
    const b = res.json;
    assert.deepEqual(
      {
        app: b.app,
        agent_id: b.agent_id,
        network: b.network,
        sealed: b.sealed,
        repo: b.repo,
        release_tag: b.release_tag,
        evidence_type: b.evidence_type,
        sandbox: b.sandbox,
        nonce: b.nonce,
      },
      {
        app: 'demo',
        agent_id: 'agent-relay-1',
        network: 'sandbox-1',
        sealed: false,
        repo: 'acme/demo',
        release_tag: 'v1.0.0',
        evidence_type: 'sandbox',
        sandbox: true,
        nonce: nonce.toString('hex'),
      },
    );
    assert.deepEqual(b.keyset, agent.keys.toJSON());
    assert.equal(b.report_data, computeReportData(REPORT_DATA_DOMAINS.relay, nonce, b.keyset).toString('hex'));
    const subject = {
      agent_id: b.agent_id,
      app_name: 'demo',
      repo: b.repo,
      release_tag: b.release_tag,
      network: b.network,
    };
    const verdict = await new SandboxVerifier().verify({
      subject,
      domain: REPORT_DATA_DOMAINS.relay,
      nonce,
      keyset: b.keyset,
      quote: Buffer.from(b.quote, 'base64'),
      now_ms: Date.now(),
      sealed_required: false,
    });
    assert.ok(verdict.ok, JSON.stringify(verdict));
    // Bound to this nonce: the same evidence does not verify for another one.
    const other = await new SandboxVerifier().verify({
      subject,
      domain: REPORT_DATA_DOMAINS.relay,
      nonce: newNonce(),
      keyset: b.keyset,
      quote: Buffer.from(b.quote, 'base64'),
      now_ms: Date.now(),
      sealed_required: false,
    });
    assert.equal(other.ok, false);
    // A chosen agent.
    const pinned = await httpGet(relayUrl(cp, 'demo', newNonce().toString('hex'), 'agent-relay-1'));
    assert.equal(pinned.status, 200, pinned.text);
  });

  test('validation: 400 bad nonce or agent, 404 unknown app or agent, 503/403 when no agent can answer', async () => {
    const cp = await startCp({ EE_QUEUE_TIMEOUT_MS: '100' });
    const good = newNonce().toString('hex');
    for (const q of [
      '',
      '?nonce=',
      '?nonce=zz',
      `?nonce=${'a'.repeat(63)}`,
      `?nonce=${'a'.repeat(65)}`,
      `?nonce=${'g'.repeat(64)}`,
    ]) {
      const res = await httpGet(`${cp.api_url}/v1/apps/demo/attestation${q}`);
      assert.equal(res.status, 400, `${q}: ${res.text}`);
      assert.equal(res.json.error.code, 'invalid_nonce', q);
    }
    const badAgent = await httpGet(relayUrl(cp, 'demo', good, 'x'));
    assert.equal(badAgent.status, 400);
    assert.equal(badAgent.json.error.code, 'invalid_agent');
    for (const app of ['nope', 'Not_A_Label']) {
      const res = await httpGet(relayUrl(cp, app, good));
      assert.equal(res.status, 404, res.text);
      assert.equal(res.json.error.code, 'unknown_app');
    }

    // Registered but not attested: 403; then gone: 503 app_offline.
    const raw = await RawAgent.connect(wsUrl(cp));
    raw.register();
    await raw.next('registered');
    await raw.next('attest_request');
    const unattested = await httpGet(relayUrl(cp, 'demo', good));
    assert.equal(unattested.status, 403, unattested.text);
    assert.equal(unattested.json.error.code, 'app_unattested');
    raw.terminate();
    await waitFor(async () => (await resolveApp(cp)).json?.error?.code === 'app_offline', 3000, 'app offline');
    const offline = await httpGet(relayUrl(cp, 'demo', good));
    assert.equal(offline.status, 503, offline.text);
    assert.equal(offline.json.error.code, 'app_offline');
    assert.equal(offline.headers.get('retry-after'), '5');

    await routableRaw(cp);
    const unknownAgent = await httpGet(relayUrl(cp, 'demo', good, newAgentId()));
    assert.equal(unknownAgent.status, 404);
    assert.equal(unknownAgent.json.error.code, 'unknown_agent');
  });

  test("a relay is not the agent's attestation: no record, no attest_result, and a pending challenge is untouched", async () => {
    const cp = await startCp();
    const agent_id = newAgentId();
    const raw = await routableRaw(cp, { agent_id });
    const link = cp.hub.byAgentId.get(agent_id)!;
    const before = {
      rows: (await cp.store.listAttestations({ agent_id, limit: 50 })).length,
      last: link.last_attest_ms,
      next: link.next_attest_at_ms,
    };
    assert.equal(before.rows, 1);

    // The control plane's own challenge is pending (a policy re-attestation) while a client's is relayed.
    assert.equal(cp.hub.reattestAll(), 1);
    const own = await raw.next('attest_request');
    assert.equal(own.reason, 'policy');
    for (let i = 0; i < 3; i++) {
      const nonce = newNonce().toString('hex');
      const pending = httpGet(relayUrl(cp, 'demo', nonce));
      const relayed = await raw.next('attest_request');
      assert.equal(relayed.reason, 'client');
      assert.equal(relayed.nonce, nonce);
      const sent = await raw.answer(relayed);
      const res = await pending;
      assert.equal(res.status, 200, res.text);
      assert.equal(res.json.quote, sent.quote, 'returned exactly as the agent produced it');
      assert.equal(res.json.report_data, sent.report_data);
      assert.deepEqual(res.json.measurements, sent.measurements);
    }
    assert.equal(link.challenge?.nonce_hex, own.nonce, 'the own challenge is still pending');
    assert.equal(
      (await cp.store.listAttestations({ agent_id, limit: 50 })).length,
      before.rows,
      'relays are not recorded',
    );
    assert.equal(link.last_attest_ms, before.last);
    assert.equal(raw.received.filter((m) => m.type === 'attest_result').length, 1, 'no attest_result for relays');

    // The own challenge still passes normally afterwards.
    await raw.answer(own);
    const result = await raw.next('attest_result');
    assert.equal(result.ok, true);
    assert.equal(result.nonce, own.nonce);
    assert.equal((await cp.store.listAttestations({ agent_id, limit: 50 })).length, before.rows + 1);
    assert.equal((await resolveApp(cp)).status, 200);
  });

  test('no answer: 504 agent_timeout; a late answer is dropped without failing the agent', async () => {
    const cp = await startCp({ EE_ATTEST_DEADLINE_SEC: '1' });
    const raw = await routableRaw(cp);
    const t0 = Date.now();
    const pending = httpGet(relayUrl(cp, 'demo', newNonce().toString('hex')));
    const relayed = await raw.next('attest_request');
    const res = await pending;
    assert.equal(res.status, 504, res.text);
    assert.equal(res.json.error.code, 'agent_timeout');
    assert.ok(Date.now() - t0 >= 900, 'waited for the deadline');
    await raw.answer(relayed); // too late
    await new Promise((r) => setTimeout(r, 200));
    assert.equal(raw.close_info, null, 'the agent stays connected');
    assert.equal(raw.received.filter((m) => m.type === 'attest_result').length, 1);
    assert.equal((await resolveApp(cp)).status, 200);
  });

  test('bounded: a third concurrent relay to one agent is 503 busy; a disconnect answers 502', async () => {
    const cp = await startCp();
    const raw = await routableRaw(cp);
    const a = httpGet(relayUrl(cp, 'demo', newNonce().toString('hex')));
    const b = httpGet(relayUrl(cp, 'demo', newNonce().toString('hex')));
    await raw.next('attest_request');
    await raw.next('attest_request');
    const busy = await httpGet(relayUrl(cp, 'demo', newNonce().toString('hex')));
    assert.equal(busy.status, 503, busy.text);
    assert.equal(busy.json.error.code, 'busy');
    assert.equal(busy.headers.get('retry-after'), '1');
    raw.terminate();
    for (const r of await Promise.all([a, b])) {
      assert.equal(r.status, 502, r.text);
      assert.equal(r.json.error.code, 'agent_disconnected');
    }
  });
});
