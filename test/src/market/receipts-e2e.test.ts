// Signed usage receipts end to end, on the real clock: a sealed chat request under a reservation goes through
// the control plane to an agent with unit prices; the client gets the agent's signed receipt in the EE-Receipt
// trailer (over the exact sealed bytes it sent and received, with the backend's `usage` tokens); the agent
// sends it to the control plane over the tunnel, which claims exactly its amount from escrow.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import http from 'node:http';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { request } from 'undici';
import { checkReceipt, type SignedReceipt } from '@easyenclave/protocol/receipt';
import { SealedHttpRequest } from '@easyenclave/protocol/seal/index';
import type { ControlPlane } from '@easyenclave/control-plane/server';
import type { Agent } from '@easyenclave/agent';
import { EasyEnclave } from '@easyenclave/sdk';
import { ADMIN_TOKEN, closeAll, onCleanup, startAgent, startCp, waitFor, wsUrl } from '../helpers/network.js';
import { call } from '../ledger-http/client.js';
import { funded, registerNode, stake, type Party } from './util.js';
import { ee, show } from '../cli/util.js';
import { balances, PRICES, postPrices } from './reservation-util.js';

const USAGE = { prompt_tokens: 12, completion_tokens: 34, total_tokens: 46 };

/** A tiny OpenAI-style backend: JSON or SSE, always with `usage`. */
async function chatBackend(): Promise<string> {
  const server = http.createServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString('utf8')));
    req.on('end', () => {
      const stream = (JSON.parse(body || '{}') as { stream?: boolean }).stream === true;
      if (!stream) {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ choices: [{ message: { role: 'assistant', content: 'hi' } }], usage: USAGE }));
        return;
      }
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.write(`data: ${JSON.stringify({ choices: [{ delta: { content: 'h' } }] })}\n\n`);
      res.write(`data: ${JSON.stringify({ choices: [{ delta: { content: 'i' } }] })}\n\n`);
      res.write(`data: ${JSON.stringify({ choices: [], usage: USAGE })}\n\n`);
      res.end('data: [DONE]\n\n');
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  onCleanup(() => new Promise<void>((r) => server.close(() => r())));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

describe('usage receipts end to end', () => {
  let cp: ControlPlane;
  let base: string;
  let user: Party;
  let provider: Party;
  let agent: Agent;

  before(async () => {
    cp = await startCp({ EE_HEALTH_TIMEOUT_SEC: '1800' });
    base = cp.api_url;
    user = await funded(base, 'user', 'U', '$10');
    provider = await funded(base, 'provider', 'P', '$100');
    const n = await registerNode(base, provider, { price_per_vcpu_hour: '$0.05' });
    await stake(base, provider, n.node_id, 10_000_000);
    await postPrices(base, provider, n.node_id);
    agent = startAgent({
      control_ws: wsUrl(cp),
      backend_url: await chatBackend(),
      app_name: 'chat',
      extra: { EE_NODE_TOKEN: n.node_token, EE_UNIT_PRICES: 'tokens_in=150,tokens_out=600,requests=1000,bytes=1' },
    });
    await waitFor(
      async () => (await cp.reservations.db.selectFrom('market_agent_keys').selectAll().execute()).length === 1,
      10_000,
      'the receipt key recorded',
    );
    await cp.market.refreshRanking();
  });
  after(closeAll);

  /** One sealed chat request; returns the opened text, the raw sealed bytes each way and the trailer's receipt. */
  async function chat(hpke: string, reservation: string, token: string, stream: boolean) {
    const plain = new TextEncoder().encode(JSON.stringify({ model: 'm', stream, messages: [] }));
    const sealed = await SealedHttpRequest.create(hpke, {
      method: 'POST',
      path: '/v1/chat/completions',
      headers: [
        ['content-type', 'application/json'],
        ['ee-reservation-token', token],
      ],
      body: plain,
    });
    const sent = sealed.body as Uint8Array;
    const res = await request(`${base}/v1/proxy/chat/v1/chat/completions`, {
      method: 'POST',
      headers: [...sealed.headers, ['ee-reservation', reservation]].flat(),
      body: sent,
    });
    const raw = Buffer.from(await res.body.arrayBuffer());
    const headers = new Headers();
    for (const [k, v] of Object.entries(res.headers)) if (typeof v === 'string') headers.set(k, v);
    const opened = await sealed.openResponse({
      status: res.statusCode,
      headers,
      body: new Blob([raw]).stream(),
    });
    const text = await new Response(opened.body).text();
    const trailer = res.trailers['ee-receipt'];
    assert.equal(typeof trailer, 'string', `an EE-Receipt trailer (got ${JSON.stringify(res.trailers)})`);
    const receipt = JSON.parse(Buffer.from(trailer as string, 'base64url').toString('utf8')) as SignedReceipt;
    return { text, sent, raw, receipt };
  }

  it('the client gets a signed receipt over its sealed bytes; the control plane claims exactly its amount', async () => {
    const u0 = await balances(base, user.id);
    const p0 = await balances(base, provider.id);
    const r = await call(base, 'POST', '/v1/reservations', {
      token: user.key,
      body: { app: 'chat', quota: '$1', lifetime_s: 600 },
    });
    assert.equal(r.status, 201, JSON.stringify(r.body));
    const id = r.body.reservation_id as string;
    assert.deepEqual(r.body.keyset, agent.keys.toJSON());

    const receipts: SignedReceipt[] = [];
    for (const stream of [false, true]) {
      const c = await chat(r.body.keyset.hpke_public_key, id, r.body.token, stream);
      assert.match(c.text, stream ? /data: .*"usage"/ : /"content":"hi"/);
      const check = await checkReceipt(c.receipt);
      assert.ok(check.ok, JSON.stringify(check));
      const rc = c.receipt.receipt;
      assert.equal(rc.reservation_id, id);
      assert.equal(rc.key, r.body.keyset.receipt_public_key, 'signed by the key the reservation named');
      assert.equal(rc.request_sha256, createHash('sha256').update(c.sent).digest('hex'));
      assert.equal(rc.response_sha256, createHash('sha256').update(c.raw).digest('hex'));
      assert.equal(rc.kind, 'tokens');
      assert.deepEqual(rc.units, { tokens_in: 12, tokens_out: 34, requests: 0, bytes: 0 });
      assert.deepEqual(rc.unit_prices, PRICES);
      assert.equal(rc.amount_micro_usd, Math.ceil((12 * 150 + 34 * 600) / 1000));
      receipts.push(c.receipt);
    }
    assert.deepEqual(
      receipts.map((x) => x.receipt.seq),
      [1, 2],
    );
    const sum = receipts.reduce((a, x) => a + x.receipt.amount_micro_usd, 0);
    await waitFor(
      async () =>
        (await call(base, 'GET', `/v1/reservations/${id}`, { token: user.key })).body.claimed_micro_usd === sum &&
        agent.receipts!.pending === 0,
      10_000,
      'both receipts claimed and answered',
    );
    const v = (await call(base, 'GET', `/v1/reservations/${id}`, { token: user.key })).body;
    assert.equal(v.receipts_total, 2);
    assert.deepEqual(
      v.receipts
        .map((x: { signed: SignedReceipt }) => x.signed)
        .sort((a: any, b: any) => a.receipt.seq - b.receipt.seq),
      receipts,
    );
    assert.equal((await balances(base, user.id)).total, u0.total - sum);
    assert.equal((await balances(base, provider.id)).total, p0.total + sum);
    // Offline: `ee receipts verify` checks the saved receipts against the keyset of the evidence kept.
    const dir = mkdtempSync(join(tmpdir(), 'ee-receipts-'));
    writeFileSync(join(dir, 'r.json'), JSON.stringify(receipts));
    writeFileSync(join(dir, 'view.json'), JSON.stringify(v));
    writeFileSync(join(dir, 'evidence.json'), JSON.stringify({ keyset: r.body.keyset }));
    writeFileSync(join(dir, 'other.json'), JSON.stringify({ keyset: { receipt_public_key: '00'.repeat(32) } }));
    const tampered = structuredClone(receipts[0]!);
    tampered.receipt.units.tokens_out += 1;
    tampered.receipt.amount_micro_usd = Math.ceil((12 * 150 + 35 * 600) / 1000);
    writeFileSync(join(dir, 'bad.json'), JSON.stringify(tampered));
    const okRun = await ee([
      'receipts',
      'verify',
      join(dir, 'r.json'),
      '--evidence',
      join(dir, 'evidence.json'),
      '--json',
    ]);
    assert.equal(okRun.code, 0, show(okRun));
    assert.equal(JSON.parse(okRun.stdout).total_micro_usd, sum);
    assert.equal((await ee(['receipts', 'verify', join(dir, 'view.json')])).code, 0);
    const other = await ee(['receipts', 'verify', join(dir, 'r.json'), '--evidence', join(dir, 'other.json')]);
    assert.equal(other.code, 1, show(other));
    const bad = await ee(['receipts', 'verify', join(dir, 'bad.json')]);
    assert.equal(bad.code, 1, show(bad));
    assert.match(bad.stdout, /bad_signature/);
    assert.equal((await ee(['receipts', 'verify', join(dir, 'nope.json')])).code, 2);

    // Ending it refunds the rest: the user paid exactly the receipts' sum.
    await call(base, 'DELETE', `/v1/reservations/${id}`, { token: user.key });
    assert.deepEqual(await balances(base, user.id), { available: u0.available - sum, total: u0.total - sum });
  });

  it('the SDK: connect(app, { confidential, reservation }) seals every request; receipts() checks them', async () => {
    const ee = new EasyEnclave({ url: base, apiKey: user.key, network: 'sandbox-1' });
    const r = await ee.createReservation({ app: 'chat', quota: '$1', lifetime_s: 600 });
    const app = await ee.connect('chat', {
      confidential: true,
      reservation: r,
      verify: { allow_sandbox: true },
    });
    assert.deepEqual(app.verified!.keyset, agent.keys.toJSON());
    const res = await app.post('/v1/chat/completions', { model: 'm', messages: [{ role: 'user', content: 'CANARY' }] });
    assert.equal(res.headers.get('content-type'), 'application/json', 'the backend’s own headers, opened');
    const j = (await res.json()) as { choices: { message: { content: string } }[]; usage: unknown };
    assert.equal(j.choices[0]!.message.content, 'hi');
    const streamed = await app.post('/v1/chat/completions', { model: 'm', stream: true, messages: [] });
    assert.match(await streamed.text(), /data: \[DONE\]/);
    const per = Math.ceil((12 * 150 + 34 * 600) / 1000);
    await waitFor(
      async () => (await ee.reservation(r.reservation_id)).claimed_micro_usd === BigInt(2 * per),
      10_000,
      'two receipts claimed',
    );
    const got = await app.receipts();
    assert.equal(got.receipts.length, 2);
    assert.ok(got.receipts.every((x) => x.key === app.verified!.keyset.receipt_public_key));
    assert.equal(got.claimed_micro_usd, BigInt(2 * per));
    await ee.cancelReservation(r.reservation_id);
    // A confidential connection needs verification, and a reservation needs a confidential connection.
    await assert.rejects(ee.connect('chat', { confidential: true, verify: false }), TypeError);
    await assert.rejects(ee.connect('chat', { reservation: r.reservation_id }), TypeError);
  });

  it('the CLI: ee apps call --confidential --reservation prints the opened answer', async () => {
    const r = await call(base, 'POST', '/v1/reservations', {
      token: user.key,
      body: { app: 'chat', quota: '$1', lifetime_s: 600 },
    });
    const dir = mkdtempSync(join(tmpdir(), 'ee-call-'));
    writeFileSync(join(dir, 'req.json'), JSON.stringify({ model: 'm', messages: [] }));
    const args = (...extra: string[]) => [
      'apps',
      'call',
      'chat',
      '/v1/chat/completions',
      '--url',
      base,
      '--data',
      `@${join(dir, 'req.json')}`,
      '-H',
      'content-type: application/json',
      ...extra,
    ];
    const run = await ee(
      args('--confidential', '--reservation', r.body.reservation_id, '--network', 'sandbox-1', '--allow-sandbox'),
      { EE_API_KEY: user.key, EE_RESERVATION_TOKEN: r.body.token },
    );
    assert.equal(run.code, 0, show(run));
    assert.equal(JSON.parse(run.stdout).choices[0].message.content, 'hi');
    await waitFor(
      async () =>
        (await call(base, 'GET', `/v1/reservations/${r.body.reservation_id}`, { token: user.key })).body
          .receipts_total === 1,
      10_000,
      'the CLI call’s receipt',
    );
    const usage = await ee(args('--reservation', r.body.reservation_id), { EE_API_KEY: user.key });
    assert.equal(usage.code, 2, show(usage));
  });

  it('a sealed request without a reservation gets no receipt and moves nothing', async () => {
    const u0 = await balances(base, user.id);
    const hpke = agent.keys.toJSON().hpke_public_key;
    const sealed = await SealedHttpRequest.create(hpke, {
      method: 'POST',
      path: '/v1/chat/completions',
      body: new TextEncoder().encode('{}'),
    });
    const res = await request(`${base}/v1/proxy/chat/v1/chat/completions`, {
      method: 'POST',
      headers: sealed.headers.flat(),
      body: sealed.body as Uint8Array,
    });
    await res.body.arrayBuffer();
    assert.equal(res.statusCode, 200);
    assert.equal(res.trailers['ee-receipt'], undefined);
    assert.deepEqual(await balances(base, user.id), u0);
    // Someone who knows a reservation's id (it travels in clear) but not its token cannot bill it.
    const victim = await call(base, 'POST', '/v1/reservations', {
      token: user.key,
      body: { app: 'chat', quota: '$1', lifetime_s: 600 },
    });
    const u1 = await balances(base, user.id);
    const thief = await SealedHttpRequest.create(hpke, {
      method: 'POST',
      path: '/v1/chat/completions',
      headers: [['ee-reservation-token', 'rsvtok_guessed']],
      body: new TextEncoder().encode('{}'),
    });
    const t = await request(`${base}/v1/proxy/chat/v1/chat/completions`, {
      method: 'POST',
      headers: [...thief.headers.flat(), 'ee-reservation', victim.body.reservation_id],
      body: thief.body as Uint8Array,
    });
    await t.body.arrayBuffer();
    assert.equal(t.statusCode, 200, 'the agent served it');
    // Its receipt (naming the wrong token) went to the control plane and was answered.
    await waitFor(() => agent.receipts!.pending === 0, 10_000, 'the receipt answered');
    const v = (await call(base, 'GET', `/v1/reservations/${victim.body.reservation_id}`, { token: user.key })).body;
    assert.equal(v.claimed_micro_usd, 0, 'a wrong token moves nothing');
    const metrics = await (
      await fetch(`${base}/metrics`, { headers: { authorization: `Bearer ${ADMIN_TOKEN}` } })
    ).text();
    assert.match(metrics, /ee_receipts_total\{outcome="wrong_token"\} 1/);
    assert.match(metrics, /ee_receipts_total\{outcome="accepted"\} [1-9]/);
    assert.deepEqual(await balances(base, user.id), u1);
  });
});
