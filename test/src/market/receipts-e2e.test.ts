// Signed usage receipts end to end, on the real clock: a sealed chat request under a reservation goes through
// the control plane to an agent with unit prices; the client gets the agent's signed receipt in the EE-Receipt
// trailer (over the exact sealed bytes it sent and received, with the backend's `usage` tokens); the agent
// sends it to the control plane over the tunnel, which claims exactly its amount from escrow.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { request } from 'undici';
import { checkReceipt, type SignedReceipt } from '@easyenclave/protocol/receipt';
import { SealedHttpRequest } from '@easyenclave/protocol/seal/index';
import type { ControlPlane } from '@easyenclave/control-plane/server';
import type { Agent } from '@easyenclave/agent';
import { closeAll, onCleanup, startAgent, startCp, waitFor, wsUrl } from '../helpers/network.js';
import { call } from '../ledger-http/client.js';
import { funded, registerNode, stake, type Party } from './util.js';
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
  async function chat(hpke: string, reservation: string, stream: boolean) {
    const plain = new TextEncoder().encode(JSON.stringify({ model: 'm', stream, messages: [] }));
    const sealed = await SealedHttpRequest.create(hpke, {
      method: 'POST',
      path: '/v1/chat/completions',
      headers: [['content-type', 'application/json']],
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
      const c = await chat(r.body.keyset.hpke_public_key, id, stream);
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
    // Ending it refunds the rest: the user paid exactly the receipts' sum.
    await call(base, 'DELETE', `/v1/reservations/${id}`, { token: user.key });
    assert.deepEqual(await balances(base, user.id), { available: u0.available - sum, total: u0.total - sum });
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
  });
});
