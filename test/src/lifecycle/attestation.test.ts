// The attestation challenge flow, driven message by message with a raw client: the challenge's shape, what a
// correct answer buys (routing), what every kind of wrong, late or replayed answer costs (attest_result ok:false,
// close 4002, no routing, a record in the store), periodic re-attestation, and sealed networks refusing
// sandbox evidence from a real agent.

import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { once } from 'node:events';
import { afterEach, describe, test } from 'node:test';
import {
  generateKeyset,
  publicKeyset,
  SANDBOX_REASONS,
  SandboxQuoteProvider,
  type Keyset,
} from '@easyenclave/attestation';
import type { AttestResponseMessage } from '@easyenclave/protocol';
import {
  closeAll,
  sleep,
  startAgent,
  startBackend,
  startCp,
  waitFor,
  waitRoutable,
  wsUrl,
} from '../helpers/network.js';
import { newAgentId, RawAgent, type AnswerOptions } from './raw-agent.js';
import { adminApp, proxyGet, resolveApp, within } from './util.js';

afterEach(() => closeAll());

const NONCE_RE = /^[0-9a-f]{64}$/;
const otherKeyset = (): Keyset => publicKeyset(generateKeyset());
// Without TDX an agent refuses to start on a sealed network (see attestation-e2e); these tests force sandbox
// evidence onto forge-1 to check that the control plane refuses it.
const forcedSandbox = () => new SandboxQuoteProvider({ repo: 'acme/demo', release_tag: 'v1.0.0' });

describe('attestation', () => {
  test('challenge on register: 64-hex nonce, deadline_s and reason; only a correct answer makes the app routable', async () => {
    const cp = await startCp({ EE_ATTEST_DEADLINE_SEC: '7' });
    const agent_id = newAgentId();
    const raw = await RawAgent.connect(wsUrl(cp), { agent_id });
    raw.serve();
    raw.register();
    const registered = await raw.next('registered');
    assert.equal(registered.app_name, 'demo');
    assert.equal(registered.agent_id, agent_id);
    const req = await raw.next('attest_request');
    assert.match(req.nonce, NONCE_RE);
    assert.equal(req.deadline_s, 7);
    assert.equal(req.reason, 'register');

    // Healthy but not attested yet: no traffic.
    raw.health('pass');
    await sleep(50);
    const before = await resolveApp(cp);
    assert.equal(before.status, 403, before.text);
    assert.equal(before.json.error.code, 'app_unattested');

    const answer = await raw.answer(req);
    const result = await raw.next('attest_result');
    assert.deepEqual(result, { type: 'attest_result', nonce: req.nonce, ok: true, reasons: [] });
    await waitRoutable(cp);
    const served = await proxyGet(cp, '/hello');
    assert.equal(served.status, 200);
    assert.equal(served.text, 'raw-agent');

    const [row] = await cp.store.listAttestations({ agent_id, limit: 5 });
    assert.equal(row?.ok, true);
    assert.equal(row?.missed, false);
    assert.equal(row?.reason, 'register');
    assert.equal(row?.evidence_type, 'sandbox');
    assert.equal(row?.evidence_hash, createHash('sha256').update(Buffer.from(answer.quote, 'base64')).digest('hex'));
  });

  const wrong: Array<{ name: string; options: () => AnswerOptions; reason: RegExp }> = [
    {
      name: 'report_data bound to another nonce',
      options: () => ({ nonce_for_report_data: Buffer.alloc(32, 7) }),
      reason: new RegExp(SANDBOX_REASONS.reportDataMismatch),
    },
    {
      name: 'report_data field that differs from the quote',
      options: () => ({ report_data_hex: 'cd'.repeat(64) }),
      reason: /report_data in the message differs from the quote/,
    },
    {
      name: 'quote bound to another keyset than the one sent',
      options: () => ({ keyset_for_report_data: otherKeyset() }),
      reason: new RegExp(SANDBOX_REASONS.reportDataMismatch),
    },
    {
      name: 'another keyset sent beside a quote bound to ours',
      options: () => ({ keyset: otherKeyset() }),
      reason: new RegExp(SANDBOX_REASONS.reportDataMismatch),
    },
    {
      name: 'tampered quote (one measurement byte flipped)',
      options: () => ({ tamper: (q) => void (q[100] = q[100]! ^ 0xff) }),
      reason: new RegExp(SANDBOX_REASONS.badSignature),
    },
    {
      name: 'tampered quote (report_data byte flipped)',
      options: () => ({ tamper: (q) => void (q[20] = q[20]! ^ 0x01) }),
      reason: new RegExp(SANDBOX_REASONS.badSignature),
    },
  ];

  test('wrong answers: attest_result ok:false with reasons, close 4002, never routable, failure recorded', async () => {
    const cp = await startCp({ EE_QUEUE_TIMEOUT_MS: '200' });
    for (const w of wrong) {
      const agent_id = newAgentId();
      const raw = await RawAgent.connect(wsUrl(cp), { agent_id });
      raw.serve();
      raw.register();
      const req = await raw.next('attest_request');
      raw.health('pass');
      await raw.answer(req, w.options());
      const result = await raw.next('attest_result');
      assert.equal(result.ok, false, w.name);
      assert.equal(result.nonce, req.nonce, w.name);
      assert.ok(result.reasons.length > 0, `${w.name}: reasons given`);
      assert.ok(
        result.reasons.some((r: string) => w.reason.test(r)),
        `${w.name}: ${JSON.stringify(result.reasons)}`,
      );
      const close = await raw.waitClose();
      assert.equal(close.code, 4002, w.name);
      assert.match(close.reason, /attestation failed/, w.name);

      const res = await resolveApp(cp);
      assert.equal(res.status, 403, `${w.name}: ${res.text}`);
      assert.equal(raw.streams_opened, 0, `${w.name}: no traffic`);
      const rows = await cp.store.listAttestations({ agent_id, limit: 5 });
      assert.equal(rows.length, 1, w.name);
      assert.equal(rows[0]!.ok, false);
      assert.equal(rows[0]!.missed, false);
      assert.equal(rows[0]!.reason, 'register');
      assert.match(rows[0]!.failure ?? '', w.reason, w.name);
      assert.equal((await cp.store.getAgent(agent_id))?.attest_ok, false);
    }
    assert.equal((await proxyGet(cp, '/x')).status, 503);
  });

  test('no answer within EE_ATTEST_DEADLINE_SEC=1: recorded as missed and the connection closes', async () => {
    const cp = await startCp({ EE_ATTEST_DEADLINE_SEC: '1' });
    const agent_id = newAgentId();
    const raw = await RawAgent.connect(wsUrl(cp), { agent_id });
    raw.register();
    const req = await raw.next('attest_request');
    const asked = Date.now();
    assert.equal(req.deadline_s, 1);
    raw.health('pass'); // health alone is not an answer
    const result = await raw.next('attest_result', 6000);
    const waited = Date.now() - asked;
    assert.equal(result.ok, false);
    assert.equal(result.nonce, req.nonce);
    assert.match(result.reasons.join(' '), /no attest_response within 1 s/);
    assert.ok(waited >= 900 && waited < 5000, `deadline enforced after ${waited} ms`);
    const close = await raw.waitClose();
    assert.equal(close.code, 4002);
    const rows = await cp.store.listAttestations({ agent_id, limit: 5 });
    assert.equal(rows.length, 1);
    assert.equal(rows[0]!.missed, true);
    assert.equal(rows[0]!.ok, false);
    assert.equal((await resolveApp(cp)).status, 403);
  });

  test('replaying an earlier attest_response (same nonce) fails', async () => {
    const cp = await startCp();

    // On the same connection, after the nonce was spent.
    const id1 = newAgentId();
    const a = await RawAgent.connect(wsUrl(cp), { agent_id: id1 });
    const { response } = await a.registerAndAttest();
    await waitRoutable(cp);
    a.sendJson(response);
    const r1 = await a.next('attest_result');
    assert.equal(r1.ok, false);
    assert.match(r1.reasons.join(' '), /replayed/);
    assert.equal((await a.waitClose()).code, 4002);
    assert.equal((await resolveApp(cp)).status, 403, 'a failed replay stops routing');
    const rows1 = await cp.store.listAttestations({ agent_id: id1, limit: 5 });
    assert.deepEqual(
      rows1.map((r) => r.ok),
      [false, true],
    );

    // On a new connection whose challenge has another nonce: verbatim, then with the nonce field rewritten.
    for (const rewrite of [false, true]) {
      const b = await RawAgent.connect(wsUrl(cp));
      b.register();
      const req = await b.next('attest_request');
      assert.notEqual(req.nonce, response.nonce, 'nonces are never reused');
      const replay: AttestResponseMessage = rewrite ? { ...response, nonce: req.nonce } : response;
      b.sendJson(replay);
      const r = await b.next('attest_result');
      assert.equal(r.ok, false, `rewrite=${rewrite}`);
      assert.match(r.reasons.join(' '), rewrite ? new RegExp(SANDBOX_REASONS.reportDataMismatch) : /replayed/);
      assert.equal((await b.waitClose()).code, 4002);
    }
    assert.equal((await resolveApp(cp)).status, 403);
  });

  test('re-attestation every EE_ATTEST_INTERVAL_SEC=2: new nonce with reason interval; a failed one stops routing at once', async () => {
    const cp = await startCp({ EE_ATTEST_INTERVAL_SEC: '2', EE_ATTEST_DEADLINE_SEC: '1' });
    const agent_id = newAgentId();
    const raw = await RawAgent.connect(wsUrl(cp), { agent_id });
    raw.serve();
    const first = await raw.registerAndAttest();
    const attested_at = Date.now();
    await waitRoutable(cp);

    const second = await raw.next('attest_request', 5000);
    const gap = Date.now() - attested_at;
    assert.equal(second.reason, 'interval');
    assert.equal(second.deadline_s, 1);
    assert.match(second.nonce, NONCE_RE);
    assert.notEqual(second.nonce, first.request.nonce);
    assert.ok(gap >= 1500 && gap < 4500, `interval challenge after ${gap} ms`);
    assert.equal((await resolveApp(cp)).status, 200, 'still routable while the re-attestation is pending');
    await raw.answer(second);
    const ok2 = await raw.next('attest_result');
    assert.equal(ok2.ok, true);
    assert.equal((await proxyGet(cp, '/x')).status, 200);

    const third = await raw.next('attest_request', 5000);
    assert.equal(third.reason, 'interval');
    assert.ok(![first.request.nonce, second.nonce].includes(third.nonce));
    await raw.answer(third, { tamper: (q) => void (q[100] = q[100]! ^ 0xff) });
    const bad = await raw.next('attest_result');
    assert.equal(bad.ok, false);
    // At once: by the time the agent hears the verdict, nothing routes to it any more.
    const res = await resolveApp(cp);
    assert.equal(res.status, 403, res.text);
    assert.equal([...cp.hub.links].filter((l) => l.routable(Date.now(), 120_000)).length, 0);
    assert.equal((await raw.waitClose()).code, 4002);
    const rows = await cp.store.listAttestations({ agent_id, limit: 10 });
    assert.deepEqual(
      rows.map((r) => [r.reason, r.ok]),
      [
        ['interval', false],
        ['interval', true],
        ['register', true],
      ],
    );
  });

  test('sealed network forge-1: a real agent with sandbox evidence is refused and never routable', async () => {
    const backend = await startBackend();
    const cp = await startCp({ EE_QUEUE_TIMEOUT_MS: '200' });
    const agent = startAgent(
      { control_ws: wsUrl(cp), backend_url: backend.url, network: 'forge-1' },
      { quote_provider: forcedSandbox() },
    );
    let attested = false;
    agent.on('attested', () => (attested = true));
    const [reasons] = (await within(once(agent, 'attest_failed'), 5000, 'the sealed network to refuse the agent')) as [
      string[],
    ];
    assert.ok(
      reasons.some((r) => /sealed/.test(r)),
      JSON.stringify(reasons),
    );

    // Watch it for a while (it keeps reconnecting): never routable.
    const until = Date.now() + 1500;
    while (Date.now() < until) {
      const r = await resolveApp(cp);
      assert.notEqual(r.status, 200, `a sandbox agent must never be routable on a sealed network: ${r.text}`);
      await sleep(50);
    }
    assert.equal(attested, false);
    assert.notEqual((await proxyGet(cp, '/echo')).status, 200);
    const rows = await cp.store.listAttestations({ app_name: 'demo', limit: 100 });
    assert.ok(rows.length >= 1);
    for (const r of rows) {
      assert.equal(r.ok, false);
      assert.match(r.failure ?? '', /sealed/);
    }
    const detail = await adminApp(cp);
    assert.equal(detail.json.sealed, true);
  });

  test('an agent refused at attestation reconnects with growing backoff, not in a tight loop', async () => {
    // Full-jitter backoff (250 ms base, doubling, 2 s cap, reset after 30 s connected: protocol/limits.ts) allows
    // about 4-5 attempts in 3 s; 10 or more is (p < 1e-3) a retry loop that never backs off.
    const backend = await startBackend();
    const cp = await startCp();
    const agent = startAgent(
      { control_ws: wsUrl(cp), backend_url: backend.url, network: 'forge-1' },
      { quote_provider: forcedSandbox() },
    );
    let refusals = 0;
    agent.on('attest_failed', () => refusals++);
    await waitFor(() => refusals >= 1, 5000, 'the first refusal');
    await sleep(3000);
    const rows = await cp.store.listAttestations({ app_name: 'demo', limit: 1000 });
    assert.ok(
      refusals < 10,
      `${refusals} attestation refusals (${rows.length} recorded) in ~3 s: the agent resets its backoff on every ` +
        'registration, so a permanently refused agent redials every ~125 ms',
    );
  });
});
