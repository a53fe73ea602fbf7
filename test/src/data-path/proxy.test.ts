// The HTTP data path end to end on loopback: client → control plane (both entry points) → tunnel → agent →
// backend and back. Request fidelity (method, path, query, headers, bodies), response fidelity (status,
// headers, bodies), concurrency, several agents per app, retries, error mapping, resolve and the admin API.

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { randomBytes } from 'node:crypto';
import {
  ADMIN_TOKEN,
  closeAll,
  patternChunk,
  spawnAgent,
  startAgent,
  startBackend,
  startCp,
  waitFor,
  waitRoutable,
  wsUrl,
  type Backend,
} from '../helpers/network.js';
import type { ControlPlane } from '@easyenclave/control-plane/server';
import {
  assertApiError,
  call,
  deadline,
  entries,
  extendBackend,
  sha256,
  statusRoutes,
  via,
  type Entry,
} from './util.js';

after(closeAll);

type Echo = {
  method: string;
  url: string;
  headers: Record<string, string | undefined>;
  body: string;
  body_bytes: number;
};

describe('proxy: one agent, both entry points', () => {
  let backend: Backend;
  let cp: ControlPlane;
  let gate: { target: number; pending: Array<() => void> };

  before(async () => {
    backend = await startBackend();
    statusRoutes(backend);
    // /gate: holds every request until `gate.target` of them are pending at once, then answers them all, so a
    // test can prove that many requests were in flight through the tunnel at the same time.
    gate = { target: Infinity, pending: [] };
    extendBackend(backend, {
      request: (req, res) => {
        if (!req.url?.startsWith('/gate')) return false;
        const chunks: Buffer[] = [];
        req.on('data', (c: Buffer) => chunks.push(c));
        req.on('end', () => {
          gate.pending.push(() => {
            const body = JSON.stringify({
              url: req.url,
              x_i: req.headers['x-i'],
              body: Buffer.concat(chunks).toString('utf8'),
            });
            res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
            res.end(body);
          });
          if (gate.pending.length >= gate.target) for (const release of gate.pending.splice(0)) release();
        });
        return true;
      },
    });
    extendBackend(backend, {
      request: (req, res) => {
        if (req.url === '/early-hints') {
          req.resume();
          res.writeEarlyHints({ link: '</style.css>; rel=preload; as=style' });
          setTimeout(() => {
            res.writeHead(200, { 'content-type': 'text/plain', 'content-length': 5, 'x-final': 'yes' });
            res.end('final');
          }, 10);
          return true;
        }
        if (req.url !== '/obs-text') return false;
        req.resume();
        const got = Buffer.from(String(req.headers['x-bytes'] ?? ''), 'latin1').toString('hex');
        const body = JSON.stringify({ got });
        res.writeHead(200, {
          'content-type': 'application/json',
          'content-length': Buffer.byteLength(body),
          'x-bytes': String(req.headers['x-bytes'] ?? ''),
        });
        // A Buffer body: with a string body Node writes head and body as one UTF-8 string, which would
        // re-encode the header's latin1 chars and hide the bug this test is for.
        res.end(Buffer.from(body));
        return true;
      },
    });
    cp = await startCp();
    startAgent({ control_ws: wsUrl(cp), backend_url: backend.url });
    await waitRoutable(cp);
  });

  for (const name of ['api-path', 'host'] as const) {
    const entry = (): Entry => entries(cp).find((e) => e.name === name)!;

    describe(`via ${name}`, () => {
      it('GET carries method, path, query and end-to-end headers; drops hop-by-hop; adds X-Forwarded-*', async () => {
        const e = entry();
        const r = await via(e, '/echo/a/b%20c?x=1&y=two%20words&z=&x=2', {
          headers: {
            'X-Custom': 'hello world',
            'X-Multi': ['one', 'two'],
            Connection: 'x-foo, x-bar',
            'X-Foo': 'must not arrive',
            'X-Bar': 'must not arrive either',
            'Keep-Alive': 'timeout=5',
            'Proxy-Authorization': 'Basic c2VjcmV0',
            'X-Forwarded-For': '203.0.113.7',
          },
        });
        assert.equal(r.status, 200, r.body.toString());
        const echo = r.json<Echo>();
        assert.equal(echo.method, 'GET');
        assert.equal(echo.url, '/echo/a/b%20c?x=1&y=two%20words&z=&x=2');
        assert.equal(echo.headers['x-custom'], 'hello world');
        assert.equal(echo.headers['x-multi'], 'one, two');
        assert.equal(echo.headers['x-foo'], undefined, 'a header named by Connection is hop-by-hop');
        assert.equal(echo.headers['x-bar'], undefined, 'a header named by Connection is hop-by-hop');
        assert.equal(echo.headers['keep-alive'], undefined, 'Keep-Alive is hop-by-hop');
        assert.equal(echo.headers['proxy-authorization'], undefined, 'Proxy-Authorization is hop-by-hop');
        assert.notEqual(
          echo.headers['connection'],
          'x-foo, x-bar',
          'the client Connection header must not be forwarded',
        );
        assert.equal(echo.headers['x-forwarded-for'], '203.0.113.7, 127.0.0.1');
        assert.equal(echo.headers['x-forwarded-proto'], 'http');
        assert.equal(echo.headers['x-forwarded-host'], e.forwarded_host);
        assert.equal(echo.body_bytes, 0);
      });

      it('GET without client X-Forwarded-* headers gets the peer address, scheme and host', async () => {
        const e = entry();
        const r = await via(e, '/echo');
        assert.equal(r.status, 200);
        const h = r.json<Echo>().headers;
        assert.equal(h['x-forwarded-for'], '127.0.0.1');
        assert.equal(h['x-forwarded-proto'], 'http');
        assert.equal(h['x-forwarded-host'], e.forwarded_host);
      });

      it('client-sent X-Forwarded-Proto/Host are replaced by what the control plane saw, not passed along', async () => {
        const e = entry();
        const r = await via(e, '/echo', {
          headers: { 'X-Forwarded-Proto': 'https', 'X-Forwarded-Host': 'evil.example' },
        });
        assert.equal(r.status, 200);
        const h = r.json<Echo>().headers;
        assert.equal(h['x-forwarded-proto'], 'http', 'the request arrived over plain http');
        assert.equal(h['x-forwarded-host'], e.forwarded_host);
      });

      it('POST with a small body arrives byte-exact (echo)', async () => {
        const text = 'héllo wörld ✓ — {"json": [1, 2, 3]}\r\n\u0000tail';
        const r = await via(entry(), '/echo/post?q=1', {
          method: 'POST',
          body: text,
          headers: { 'content-type': 'text/plain; charset=utf-8' },
        });
        assert.equal(r.status, 200);
        const echo = r.json<Echo>();
        assert.equal(echo.method, 'POST');
        assert.equal(echo.url, '/echo/post?q=1');
        assert.equal(echo.body, text);
        assert.equal(echo.body_bytes, Buffer.byteLength(text));
        assert.equal(echo.headers['content-type'], 'text/plain; charset=utf-8');
      });

      it('POST with a ~1 MiB binary body arrives byte-exact (sink sha256)', async () => {
        const body = randomBytes((1 << 20) + 12_345);
        const r = await via(entry(), '/sink', {
          method: 'POST',
          body,
          headers: { 'content-type': 'application/octet-stream' },
        });
        assert.equal(r.status, 200, r.body.toString());
        assert.deepEqual(r.json(), { body_bytes: body.length, sha256: sha256(body) });
      });

      it('GET of a ~1 MiB response body comes back byte-exact', async () => {
        const n = (1 << 20) + 4321;
        const r = await via(entry(), `/bytes/${n}`);
        assert.equal(r.status, 200);
        assert.equal(r.headers['content-length'], String(n));
        assert.equal(r.headers['content-type'], 'application/octet-stream');
        assert.equal(r.body.length, n);
        assert.ok(r.body.equals(patternChunk(0, n)), 'response body differs from what the backend sent');
      });

      it('status codes and response headers are passed back as the backend sent them', async () => {
        for (const status of [200, 201, 202, 204, 301, 304, 400, 404, 418, 429, 500, 502, 503]) {
          const r = await via(entry(), `/status/${status}`);
          assert.equal(r.status, status, `backend status ${status} came back as ${r.status}: ${r.body.toString()}`);
          assert.equal(r.headers['x-backend'], 'yes', `x-backend on ${status}`);
          // The path entry shares the API's origin: no app sets cookies there (docs/security.md).
          const cookies = name === 'host' ? ['a=1; Path=/', 'b=2; Path=/'] : undefined;
          assert.deepEqual(r.headers['set-cookie'], cookies, `set-cookie on ${status}`);
          assert.equal(r.headers['cache-control'], 'max-age=7', `cache-control on ${status}`);
          if (status === 204 || status === 304) {
            assert.equal(r.body.length, 0);
          } else {
            assert.equal(r.body.toString(), `status ${status} body`, `body of ${status}`);
            assert.equal(r.headers['content-type'], 'text/plain; charset=utf-8');
          }
        }
      });

      it('header values with bytes above 0x7f (obs-text, e.g. raw UTF-8) pass through byte-exact, both ways', async () => {
        // Node hands header bytes to JS as latin1 (one char per byte) and writes them back the same way, so the
        // latin1 view of raw UTF-8 must survive every hop unchanged: a UTF-8 decode anywhere would corrupt it.
        const raw = Buffer.from('€ café – ✓', 'utf8').toString('latin1');
        const r = await via(entry(), '/obs-text', { headers: { 'x-bytes': raw } });
        assert.equal(r.status, 200, r.body.toString());
        assert.equal(
          r.json<{ got: string }>().got,
          Buffer.from(raw, 'latin1').toString('hex'),
          'request header bytes changed on the way in',
        );
        const i = r.rawHeaders.findIndex((h, j) => j % 2 === 0 && h.toLowerCase() === 'x-bytes');
        assert.ok(i >= 0, 'response header missing');
        assert.equal(
          Buffer.from(r.rawHeaders[i + 1]!, 'latin1').toString('hex'),
          Buffer.from(raw, 'latin1').toString('hex'),
          'response header bytes changed on the way out',
        );
      });

      it('an informational head (103 Early Hints) before the response is dropped; the final response arrives intact', async () => {
        const r = await via(entry(), '/early-hints');
        assert.equal(r.status, 200, r.body.toString());
        assert.equal(r.headers['x-final'], 'yes');
        assert.equal(r.body.toString(), 'final');
      });

      it('PUT, PATCH and DELETE carry method and body; HEAD gets headers only and keeps the connection usable', async () => {
        for (const method of ['PUT', 'PATCH']) {
          const body = `${method} body ${'x'.repeat(1000)}`;
          const r = await via(entry(), `/echo/${method.toLowerCase()}?m=${method}`, { method, body });
          assert.equal(r.status, 200);
          const echo = r.json<Echo>();
          assert.equal(echo.method, method);
          assert.equal(echo.url, `/echo/${method.toLowerCase()}?m=${method}`);
          assert.equal(echo.body, body);
        }
        const del = await via(entry(), '/echo/item/42', { method: 'DELETE' });
        assert.equal(del.status, 200);
        assert.equal(del.json<Echo>().method, 'DELETE');
        assert.equal(del.json<Echo>().url, '/echo/item/42');

        // HEAD then GET on one keep-alive connection: HEAD must not leave body bytes behind.
        const ka = new http.Agent({ keepAlive: true, maxSockets: 1 });
        try {
          const head = await via(entry(), '/echo/head', { method: 'HEAD', agent: ka });
          assert.equal(head.status, 200);
          assert.equal(head.body.length, 0);
          assert.equal(head.headers['content-type'], 'application/json');
          assert.ok(
            Number(head.headers['content-length']) > 0,
            `HEAD content-length: ${head.headers['content-length']}`,
          );
          const again = await via(entry(), '/echo/after-head', { agent: ka });
          assert.equal(again.status, 200);
          assert.equal(again.json<Echo>().url, '/echo/after-head');
        } finally {
          ka.destroy();
        }
      });

      it('a chunked request body without Content-Length arrives byte-exact', async () => {
        const chunks = [1, 100, 65_536, 7, 200_000, 3, 70_000].map((n) => randomBytes(n));
        const all = Buffer.concat(chunks);
        const r = await via(entry(), '/sink', { method: 'POST', body: chunks });
        assert.equal(r.status, 200, r.body.toString());
        assert.deepEqual(r.json(), { body_bytes: all.length, sha256: sha256(all) });

        const text = ['first,', 'second,', 'third — ✓'];
        const e = await via(entry(), '/echo/chunked', { method: 'POST', body: text.map((t) => Buffer.from(t)) });
        assert.equal(e.status, 200);
        assert.equal(e.json<Echo>().body, text.join(''));
      });
    });
  }

  it('200 concurrent requests over one agent all succeed with their own bodies', async () => {
    const N = 200;
    gate.target = N;
    const es = entries(cp);
    try {
      const results = await deadline(
        Promise.all(
          Array.from({ length: N }, (_, i) => {
            const e = es[i % 2]!;
            const body = i % 2 === 0 ? undefined : `body-${i}-`.repeat(1 + (i % 17));
            return via(e, `/gate?i=${i}`, {
              method: body ? 'POST' : 'GET',
              headers: { 'x-i': String(i) },
              ...(body ? { body } : {}),
            }).then((r) => ({ i, body, r }));
          }),
        ),
        30_000,
        `${N} concurrent requests (all must be in flight at once)`,
      );
      for (const { i, body, r } of results) {
        assert.equal(r.status, 200, `request ${i}: ${r.body.toString()}`);
        const got = r.json<{ url: string; x_i: string; body: string }>();
        assert.equal(got.url, `/gate?i=${i}`, `request ${i} got the answer of another`);
        assert.equal(got.x_i, String(i));
        assert.equal(got.body, body ?? '');
      }
    } finally {
      gate.target = Infinity;
      for (const release of gate.pending.splice(0)) release();
    }
  });
});

describe('proxy: two agents for one app', () => {
  let a: Backend;
  let b: Backend;
  let cp: ControlPlane;
  const hits = { a: 0, b: 0, b_die: 0 };
  let a_routes: { died: () => number };

  before(async () => {
    a = await startBackend();
    b = await startBackend();
    a_routes = statusRoutes(a); // a's /die drops the connection; b answers /die with its echo route
    a.server.on('request', () => hits.a++);
    b.server.on('request', (req: http.IncomingMessage) => {
      hits.b++;
      if (req.url?.startsWith('/die')) hits.b_die++;
    });
    cp = await startCp();
    // Health every hour: the agents stay routable after a's backend goes away, so requests do reach it.
    const extra = { EE_HEALTH_INTERVAL_SEC: '3600' };
    startAgent({ control_ws: wsUrl(cp), backend_url: a.url, agent_id: 'agent-aaaa', extra });
    await waitRoutable(cp);
    startAgent({ control_ws: wsUrl(cp), backend_url: b.url, agent_id: 'agent-bbbb', extra });
    await waitFor(
      async () => ((await (await fetch(`${cp.api_url}/v1/resolve/demo`)).json()) as { agents?: number }).agents === 2,
      5000,
      'both agents routable',
    );
  });

  it('concurrent requests are spread over both agents', async () => {
    const before_a = hits.a;
    const before_b = hits.b;
    const es = entries(cp);
    const N = 40;
    const rs = await Promise.all(Array.from({ length: N }, (_, i) => via(es[i % 2]!, '/slow/150')));
    for (const r of rs) assert.equal(r.status, 200, r.body.toString());
    const got_a = hits.a - before_a;
    const got_b = hits.b - before_b;
    assert.equal(got_a + got_b, N);
    assert.ok(got_a >= N / 4 && got_b >= N / 4, `load not spread: agent a served ${got_a}, agent b ${got_b} of ${N}`);
  });

  it('a request that reached a backend is not retried on the other agent', async () => {
    const died_before = a_routes.died();
    const b_before = hits.b_die;
    let failed = 0;
    const N = 16;
    for (let i = 0; i < N; i++) {
      const r = await via(entries(cp)[i % 2]!, `/die?i=${i}`);
      if (r.status === 200) continue; // b took it first
      assertApiError(r, 502, 'backend_error', `/die ${i}`);
      failed++;
    }
    const died = a_routes.died() - died_before;
    const b_served = hits.b_die - b_before;
    assert.ok(died > 0, 'agent a was never chosen: the test did not exercise the no-retry rule');
    assert.equal(failed, died, 'every request that reached backend a must fail (502), not be retried');
    assert.equal(
      died + b_served,
      N,
      `requests reached backends ${died + b_served} times for ${N} requests: a request was replayed`,
    );
  });

  it('with one backend down (connection refused), bodiless GETs still succeed via the other agent', async () => {
    await a.close();
    const b_before = hits.b;
    const es = entries(cp);
    for (let i = 0; i < 20; i++) {
      const r = await via(es[i % 2]!, `/echo/seq?i=${i}`);
      assert.equal(r.status, 200, `sequential GET ${i}: ${r.body.toString()}`);
      assert.equal(r.json<Echo>().url, `/echo/seq?i=${i}`);
    }
    const rs = await Promise.all(Array.from({ length: 20 }, (_, i) => via(es[i % 2]!, `/echo/par?i=${i}`)));
    rs.forEach((r, i) => {
      assert.equal(r.status, 200, `concurrent GET ${i}: ${r.body.toString()}`);
      assert.equal(r.json<Echo>().url, `/echo/par?i=${i}`);
    });
    const head = await via(es[0]!, '/echo/head', { method: 'HEAD' });
    assert.equal(head.status, 200);
    assert.equal(hits.b - b_before, 41, 'every request must have been served by backend b');
  });
});

describe('proxy: errors, resolve and the admin API', () => {
  let cp: ControlPlane;
  let demo_backend: Backend;

  before(async () => {
    demo_backend = await startBackend();
    const down = await startBackend();
    const gone = await startBackend();
    cp = await startCp({ EE_PROXY_TIMEOUT_SEC: '1', EE_QUEUE_TIMEOUT_MS: '200' });
    // A subprocess: its backend deadline must not share an event loop with the test's clients and backends.
    spawnAgent({ control_ws: wsUrl(cp), backend_url: demo_backend.url, agent_id: 'agent-demo-1' });
    // "down": its backend goes away after the agent is routable; hourly health keeps it routable.
    startAgent({
      control_ws: wsUrl(cp),
      backend_url: down.url,
      app_name: 'down',
      repo: 'acme/down',
      extra: { EE_HEALTH_INTERVAL_SEC: '3600' },
    });
    // "gone": known to the control plane, but its only agent stops.
    const gone_agent = startAgent({
      control_ws: wsUrl(cp),
      backend_url: gone.url,
      app_name: 'gone',
      repo: 'acme/gone',
    });
    await Promise.all([waitRoutable(cp, 'demo', 10_000), waitRoutable(cp, 'down'), waitRoutable(cp, 'gone')]);
    await down.close();
    await gone_agent.stop(0);
    await waitFor(
      async () => (await fetch(`${cp.api_url}/v1/resolve/gone`)).status === 403,
      5000,
      'app "gone" offline',
    );
  });

  it('backend down → 502 backend_unreachable on both entry points', async () => {
    for (const e of entries(cp, 'down')) {
      assertApiError(await via(e, '/echo'), 502, 'backend_unreachable', `GET via ${e.name}`);
      assertApiError(
        await via(e, '/sink', { method: 'POST', body: 'x'.repeat(1000) }),
        502,
        'backend_unreachable',
        `POST via ${e.name}`,
      );
    }
  });

  it('slow backend → 504 once the proxy timeout (1 s) passes, not when the backend answers (3 s)', async () => {
    await Promise.all(
      entries(cp).map(async (e) => {
        const t0 = Date.now();
        const r = await via(e, '/slow/3000');
        const ms = Date.now() - t0;
        assertApiError(r, 504, /^(backend_timeout|agent_timeout)$/, `via ${e.name}`);
        assert.ok(
          ms < 2900,
          `504 via ${e.name} after ${ms} ms: it must come from the 1 s deadline (+1 s grace), before the backend's 3 s answer`,
        );
      }),
    );
  });

  it('answers well inside the proxy timeout (400 ms of 1 s) are never cut off with a 504', async () => {
    // 20 requests started 25 ms apart, so their deadlines fall at every phase of any coarse timer wheel.
    const es = entries(cp);
    const rs = await Promise.all(
      Array.from({ length: 20 }, async (_, i) => {
        await new Promise((r) => setTimeout(r, i * 25));
        const t0 = Date.now();
        const r = await via(es[i % 2]!, '/slow/400');
        return { i, r, ms: Date.now() - t0 };
      }),
    );
    const cut = rs
      .filter((x) => x.r.status !== 200)
      .map((x) => `#${x.i} ${x.r.status} after ${x.ms} ms: ${x.r.body.toString()}`);
    assert.deepEqual(cut, [], `backend answers at 400 ms with EE_PROXY_TIMEOUT_SEC=1 were cut off:\n${cut.join('\n')}`);
  });

  it('known app with no agent connected → 503 with Retry-After, after waiting EE_QUEUE_TIMEOUT_MS', async () => {
    for (const e of entries(cp, 'gone')) {
      const t0 = Date.now();
      const r = await via(e, '/echo');
      const ms = Date.now() - t0;
      assertApiError(r, 503, 'no_agent', `via ${e.name}`);
      assert.match(String(r.headers['retry-after']), /^\d+$/, `Retry-After via ${e.name}: ${r.headers['retry-after']}`);
      assert.ok(
        ms >= 190,
        `answered after ${ms} ms: the control plane must wait EE_QUEUE_TIMEOUT_MS (200) for an agent first`,
      );
    }
  });

  it('unknown app → 404 unknown_app on both entry points; a host outside the app domain → 404', async () => {
    for (const e of entries(cp, 'nope')) assertApiError(await via(e, '/echo'), 404, 'unknown_app', `via ${e.name}`);
    assertApiError(
      await call(cp.proxy_url, '/echo', { headers: { host: 'demo.example.com' } }),
      404,
      undefined,
      'foreign host',
    );
    assertApiError(await call(cp.api_url, '/v1/proxy/Bad_Name!/x'), 404, undefined, 'invalid app name');
  });

  it('resolve: 200 with the details for a routable app, 403 JSON with no agent, 404 unknown', async () => {
    const r = await call(cp.api_url, '/v1/resolve/demo');
    assert.equal(r.status, 200, r.body.toString());
    const v = r.json();
    assert.equal(v.app_name, 'demo');
    assert.equal(v.status, 'active');
    assert.equal(typeof v.endpoint, 'string');
    assert.match(v.endpoint, /^http:\/\/.+\/v1\/proxy\/demo$/);
    assert.equal(v.sealed, false, 'sandbox-1 is not sealed');
    assert.equal(typeof v.last_attest, 'string');
    const attested = Date.parse(v.last_attest);
    assert.ok(
      Number.isFinite(attested) && attested <= Date.now() && attested > Date.now() - 60_000,
      `last_attest ${v.last_attest}`,
    );

    assertApiError(await call(cp.api_url, '/v1/resolve/gone'), 403, /^app_/, 'resolve gone');
    assertApiError(await call(cp.api_url, '/v1/resolve/nope'), 404, 'unknown_app', 'resolve unknown');
  });

  it('admin API: 401 without or with a wrong token, 200 with the admin token', async () => {
    for (const path of ['/v1/apps', '/v1/apps/demo']) {
      assertApiError(await call(cp.api_url, path), 401, 'unauthorized', `${path} without a token`);
      assertApiError(
        await call(cp.api_url, path, { headers: { authorization: 'Bearer wrong-token-0123456789abcdef' } }),
        401,
        'unauthorized',
        `${path} wrong token`,
      );
      assertApiError(
        await call(cp.api_url, path, { headers: { authorization: `Bearer ${ADMIN_TOKEN}x` } }),
        401,
        'unauthorized',
        `${path} token + 1 char`,
      );
      assertApiError(
        await call(cp.api_url, path, { headers: { authorization: `Basic ${ADMIN_TOKEN}` } }),
        401,
        'unauthorized',
        `${path} wrong scheme`,
      );
      const ok = await call(cp.api_url, path, { headers: { authorization: `Bearer ${ADMIN_TOKEN}` } });
      assert.equal(ok.status, 200, `${path}: ${ok.body.toString()}`);
    }
  });

  it('admin API: /v1/apps and /v1/apps/demo describe the app, its agents, release, health and attestation', async () => {
    const auth = { authorization: `Bearer ${ADMIN_TOKEN}` };
    const now = Date.now();
    const isRecent = (s: unknown) =>
      typeof s === 'string' && Date.parse(s) <= now + 1000 && Date.parse(s) > now - 120_000;

    const list = (await call(cp.api_url, '/v1/apps', { headers: auth })).json();
    const names = list.apps.map((a: { app_name: string }) => a.app_name).sort();
    assert.deepEqual(names, ['demo', 'down', 'gone']);
    const demo = list.apps.find((a: { app_name: string }) => a.app_name === 'demo');
    assert.equal(demo.repo, 'acme/demo');
    assert.equal(demo.network, 'sandbox-1');
    assert.equal(demo.status, 'active');
    assert.equal(demo.sealed, false);
    assert.equal(demo.agents_connected, 1);
    assert.ok(isRecent(demo.last_attest), `last_attest ${demo.last_attest}`);
    assert.ok(Date.parse(demo.expires_at) > now + 29 * 86_400_000, `expires_at ${demo.expires_at} (30-day TTL)`);
    const gone = list.apps.find((a: { app_name: string }) => a.app_name === 'gone');
    assert.equal(gone.status, 'offline');
    assert.equal(gone.agents_connected, 0);

    const r = await call(cp.api_url, '/v1/apps/demo', { headers: auth });
    assert.equal(r.status, 200);
    const d = r.json();
    assert.equal(d.app_name, 'demo');
    assert.equal(d.repo, 'acme/demo');
    assert.equal(d.network, 'sandbox-1');
    assert.equal(d.sealed, false);
    assert.equal(d.status, 'active');
    assert.ok(Date.parse(d.expires_at) > now + 29 * 86_400_000, `expires_at ${d.expires_at}`);
    assert.ok(isRecent(d.last_attest), `last_attest ${d.last_attest}`);
    // Release
    assert.equal(d.registrations.length, 1);
    assert.equal(d.registrations[0].release_tag, 'v1.0.0');
    assert.equal(d.registrations[0].status, 'active');
    // Agents
    assert.equal(d.agents.length, 1);
    const ag = d.agents[0];
    assert.equal(ag.agent_id, 'agent-demo-1');
    assert.equal(ag.release_tag, 'v1.0.0');
    assert.equal(ag.connected, true);
    assert.equal(ag.status, 'routable');
    assert.equal(ag.attested, true);
    assert.equal(ag.health, 'pass');
    assert.ok(isRecent(ag.last_health), `agent last_health ${ag.last_health}`);
    assert.ok(isRecent(ag.last_health_pass), `agent last_health_pass ${ag.last_health_pass}`);
    assert.ok(isRecent(ag.last_attest), `agent last_attest ${ag.last_attest}`);
    assert.ok(isRecent(ag.last_connected), `agent last_connected ${ag.last_connected}`);
    // Attestation record
    assert.ok(d.recent_attestations.length >= 1);
    const att = d.recent_attestations[0];
    assert.equal(att.agent_id, 'agent-demo-1');
    assert.equal(att.ok, true);
    assert.ok(isRecent(att.at), `attestation at ${att.at}`);

    assertApiError(
      await call(cp.api_url, '/v1/apps/nope', { headers: auth }),
      404,
      'unknown_app',
      'unknown app detail',
    );
  });
});
