// Sealed HTTP end to end (real control plane, agent, backend, sockets): a client seals requests to the key
// the agent's evidence vouches for; the agent opens them, the backend gets plaintext, the client opens the
// sealed response. What crosses the control plane, either side, is captured and searched for the plaintext.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import {
  MessageSealer,
  SealedHttpRequest,
  concatBytes,
  encodeHttpMeta,
  formatSealedHeader,
  generateRecipientKey,
  requestAad,
  SEALED_MEDIA_TYPE,
  toHex,
} from '@easyenclave/protocol/seal/index';
import { EasyEnclave } from '@easyenclave/sdk';
import { sealedFetch as sdkSealedFetch } from '@easyenclave/sdk/seal-client';
import { closeAll, waitFor } from '../helpers/network.js';
import { within } from '../lifecycle/util.js';
import { readAll, sealedFetch, startSealedNet, type SealedNet } from './harness.js';
import { flipBit, pattern } from './util.js';

let net: SealedNet;
before(async () => {
  net = await startSealedNet();
});
after(() => closeAll());

const header = (h: Array<[string, string]>, name: string) => h.find(([k]) => k.toLowerCase() === name)?.[1];
const CANARY = 'CANARY-7f3a9c2e-plaintext-never-at-the-control-plane';
const CANARY_AUTH = 'Bearer CANARY-AUTH-d41d8cd98f00';

describe('sealed HTTP through the tunnel', () => {
  test('the capture sees plaintext: a plain request carries the canary across the control plane', async () => {
    net.tunnel.clear();
    const res = await fetch(`${net.app_url}/chat`, { method: 'POST', body: `{"plain":"${CANARY}"}` });
    assert.equal(res.status, 200);
    await res.arrayBuffer();
    assert.ok(net.tunnel.bytes().includes(CANARY), 'the tunnel capture must see an unsealed payload');
  });

  test('a sealed POST: the backend gets plaintext and the sealed headers, the client opens the answer, the canary never crosses the control plane', async () => {
    net.client.clear();
    net.tunnel.clear();
    const before_n = net.backend.seen.length;
    const body = new TextEncoder().encode(JSON.stringify({ messages: [{ role: 'user', content: CANARY }] }));
    const r = await sealedFetch(net.app_url, net.hpke_public_key, {
      method: 'POST',
      path: '/chat',
      headers: [
        ['content-type', 'application/json'],
        ['authorization', CANARY_AUTH],
      ],
      body,
    });
    assert.equal(r.sealed, true);
    assert.equal(r.status, 200);
    assert.equal(header(r.headers, 'content-type'), 'application/json');
    const answer = JSON.parse((await readAll(r.body)).toString('utf8'));
    assert.equal(answer.authorization, CANARY_AUTH);
    assert.ok(answer.echo.includes(CANARY));
    const seen = net.backend.seen[before_n]!;
    assert.equal(seen.method, 'POST');
    assert.equal(seen.url, '/chat');
    assert.equal(seen.headers['content-type'], 'application/json');
    assert.equal(seen.headers.authorization, CANARY_AUTH);
    assert.equal(seen.headers['ee-sealed'], undefined);
    assert.ok(seen.body.toString('utf8').includes(CANARY));
    // It came whole in one piece: the agent forwards it as one buffer with its length, not chunked.
    assert.equal(seen.headers['content-length'], String(body.length));
    assert.equal(seen.headers['transfer-encoding'], undefined);
    for (const [name, cap] of [
      ['client ↔ control plane', net.client],
      ['control plane ↔ agent', net.tunnel],
    ] as const) {
      const bytes = cap.bytes();
      assert.ok(bytes.length > body.length, `${name}: captured the exchange`);
      assert.ok(bytes.includes('ee-sealed'), `${name}: the sealed exchange went through this capture`);
      for (const secret of [CANARY, 'CANARY-AUTH', 'application/json']) {
        assert.ok(!bytes.includes(secret), `${name}: "${secret}" crossed in clear`);
      }
    }
  });

  test('SSE: each event is sealed and arrives as the backend sends it, not at the end', async () => {
    const r = await sealedFetch(net.app_url, net.hpke_public_key, {
      method: 'POST',
      path: '/chat',
      headers: [['content-type', 'application/json']],
      body: new TextEncoder().encode('{"stream":true}'),
    });
    assert.equal(header(r.headers, 'content-type'), 'text/event-stream');
    const reader = r.body!.getReader();
    const first = await within(reader.read(), 10_000, 'the first event while the backend holds the rest');
    assert.match(Buffer.from(first.value!).toString('utf8'), /^data: first/);
    net.backend.releaseSse();
    let rest = '';
    for (;;) {
      const x = await within(reader.read(), 10_000, 'the rest of the stream');
      if (x.done) break;
      rest += Buffer.from(x.value).toString('utf8');
    }
    assert.equal(rest, 'data: second\n\ndata: [DONE]\n\n');
  });

  test('a bodyless GET and a HEAD are sealed through the EE-Sealed header; the response is sealed too', async () => {
    net.tunnel.clear();
    const before_n = net.backend.seen.length;
    const r = await sealedFetch(net.app_url, net.hpke_public_key, {
      method: 'GET',
      path: '/whoami',
      headers: [
        ['authorization', CANARY_AUTH],
        ['x-canary', 'cookie-CANARY'],
      ],
    });
    assert.equal(r.sealed, true);
    assert.equal(r.status, 200);
    assert.equal(header(r.headers, 'set-cookie'), 'session=cookie-CANARY');
    assert.deepEqual(JSON.parse((await readAll(r.body)).toString('utf8')), {
      method: 'GET',
      url: '/whoami',
      authorization: CANARY_AUTH,
    });
    assert.equal(net.backend.seen[before_n]!.headers.authorization, CANARY_AUTH);
    const h = await sealedFetch(net.app_url, net.hpke_public_key, { method: 'HEAD', path: '/whoami' });
    assert.equal(h.sealed, true);
    assert.equal(h.status, 200);
    assert.equal(h.body, null);
    assert.equal(header(h.headers, 'content-type'), 'application/json');
    const bytes = net.tunnel.bytes();
    for (const secret of ['CANARY-AUTH', 'cookie-CANARY']) assert.ok(!bytes.includes(secret), `${secret} in clear`);
  });

  test('a request sealed to another key is refused (409 by the control plane, 421 by the agent), before anything is opened or forwarded', async () => {
    const before_n = net.backend.seen.length;
    const stranger = await generateRecipientKey();
    // Pinning: no agent of the app holds the key the request names, so the control plane delivers it nowhere.
    const r = await sealedFetch(net.app_url, toHex(stranger.publicKey), {
      method: 'POST',
      path: '/chat',
      body: new TextEncoder().encode('for someone else'),
    });
    assert.equal(r.sealed, false);
    assert.equal(r.status, 409);
    const e = JSON.parse((await readAll(r.body)).toString('utf8'));
    assert.equal(e.error.code, 'sealed_key_gone');
    assert.ok(e.error.message.includes(stranger.keyIdHex));
    // A header naming the agent's key over a body sealed to another: refused by the body's key id.
    const liar = await SealedHttpRequest.create(toHex(stranger.publicKey), {
      method: 'POST',
      path: '/chat',
      body: new Uint8Array(3),
    });
    const agentKeyId = net.agent.sealed.keyIdHex;
    const res = await fetch(`${net.app_url}/chat`, {
      method: 'POST',
      headers: { 'ee-sealed': formatSealedHeader({ key: agentKeyId }), 'content-type': SEALED_MEDIA_TYPE },
      body: liar.body as Uint8Array,
    });
    assert.equal(res.status, 421);
    assert.equal(((await res.json()) as { error: { code: string } }).error.code, 'wrong_key');
    assert.equal(net.backend.seen.length, before_n, 'the backend saw nothing');
  });

  test('a tampered, truncated or overlong sealed body never reaches the backend whole; the client gets 400', async () => {
    const keyId = net.agent.sealed.keyIdHex;
    const send = (body: Uint8Array) =>
      fetch(`${net.app_url}/chat`, {
        method: 'POST',
        headers: { 'ee-sealed': formatSealedHeader({ key: keyId }), 'content-type': SEALED_MEDIA_TYPE },
        body,
      });
    const sealed = async (n: number) => {
      const s = await MessageSealer.request(net.hpke_public_key, {
        aad: requestAad('POST', '/chat'),
        meta: encodeHttpMeta({ headers: [] }),
      });
      return concatBytes(await s.end(pattern(n)));
    };
    const completed = () => net.backend.seen.filter((s) => s.url === '/chat' && s.completed).length;
    const done = completed();
    const aborted = net.backend.aborted;
    // Small (refused before the backend is called) and large (refused mid-body: the backend's request aborts).
    for (const n of [100, 3_000_000]) {
      const good = await sealed(n);
      const trailing = n === 100 ? [concatBytes([good, new Uint8Array([0])])] : [];
      for (const bad of [flipBit(good, good.length - 30), good.subarray(0, good.length - 40), ...trailing]) {
        const res = await send(bad);
        assert.equal(res.status, 400, `${n} bytes`);
        assert.equal(((await res.json()) as { error: { code: string } }).error.code, 'bad_sealed_request');
      }
    }
    await waitFor(() => net.backend.aborted >= aborted + 2, 10_000, 'the backend to see the large bodies aborted');
    assert.equal(completed(), done, 'no tampered request completed at the backend');
  });

  test('the method and path are bound: a sealed body sent to another path is refused', async () => {
    const before_n = net.backend.seen.length;
    const req = await SealedHttpRequest.create(net.hpke_public_key, {
      method: 'POST',
      path: '/chat',
      body: new Uint8Array(10),
    });
    const headers = new Headers(req.headers);
    const res = await fetch(`${net.app_url}/sink`, { method: 'POST', headers, body: req.body as Uint8Array });
    assert.equal(res.status, 400);
    assert.equal(net.backend.seen.length, before_n);
  });

  test('the SDK: sealedFetch through an AppClient, with the key from the verified evidence', async () => {
    // Sandbox evidence (this test network) is accepted only when the client says it expects a sandbox.
    const ee = new EasyEnclave({ url: net.cp.api_url, network: 'sandbox-1' });
    const app = await ee.connect('demo', { verify: { allow_sandbox: true } });
    const pk = app.verified!.keyset.hpke_public_key;
    assert.equal(pk, net.hpke_public_key);
    const { sealed, response } = await sdkSealedFetch(app, pk, '/chat', {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: CANARY_AUTH },
      body: JSON.stringify({ q: CANARY }),
    });
    assert.equal(sealed, true);
    assert.equal(response.status, 200);
    assert.equal(response.headers.get('content-type'), 'application/json');
    const j = (await response.json()) as { echo: string; authorization: string };
    assert.equal(j.authorization, CANARY_AUTH);
    assert.ok(j.echo.includes(CANARY));
    const stranger = await generateRecipientKey();
    const refused = await sdkSealedFetch(app, toHex(stranger.publicKey), '/whoami');
    assert.equal(refused.sealed, false);
    assert.equal(refused.response.status, 409);
  });

  test('32 MiB each way, streamed and sealed, intact', async () => {
    const MiB = 1024 * 1024;
    const up = new ReadableStream<Uint8Array>({
      start(c) {
        for (let i = 0; i < 32; i++) c.enqueue(pattern(MiB, i + 1));
        c.close();
      },
    });
    const r = await sealedFetch(net.app_url, net.hpke_public_key, { method: 'POST', path: '/sink', body: up });
    assert.deepEqual(JSON.parse((await readAll(r.body)).toString('utf8')), { body_bytes: 32 * MiB });
    const d = await sealedFetch(net.app_url, net.hpke_public_key, { method: 'GET', path: `/bytes/${32 * MiB}` });
    const got = await readAll(d.body);
    assert.equal(got.length, 32 * MiB);
    assert.equal(got[65_536 * 3], (65_536 * 3) & 0xff);
  });
});
