// Slow and idle clients on both listeners (issue 11 item 5): a socket that sends nothing, a header block sent
// a line at a time, a body that never starts or stops half way each get 408 and a closed connection within
// the configured deadlines; connections are capped per address and in total (503). The legitimate paths go
// on working: a slow but flowing upload of any length, a response slower than the header deadline, keep-alive
// reuse after an idle pause, WebSockets and agent tunnels that outlive every deadline.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import http from 'node:http';
import { after, before, describe, it } from 'node:test';
import { WebSocket } from 'ws';
import {
  ADMIN_TOKEN,
  closeAll,
  sleep,
  startAgent,
  startBackend,
  startCp,
  waitFor,
  waitRoutable,
  wsUrl,
  type Backend,
} from '../helpers/network.js';
import type { ControlPlane } from '@easyenclave/control-plane/server';
import { call, deadline, entries, sha256, via } from '../data-path/util.js';
import { connectRaw, header, parseResponses, untilClosed } from './util.js';

after(closeAll);

const HEADERS_TIMEOUT_MS = 1000;
const BODY_TIMEOUT_MS = 1000;
/** Far beyond both deadlines: a connection still open then was never going to be closed. */
const CLOSE_WITHIN_MS = 15_000;

const auth = (p: { auth?: boolean }) => (p.auth ? `Authorization: Bearer ${ADMIN_TOKEN}\r\n` : '');

function expect408(text: string, what: string): void {
  const [r] = parseResponses(text);
  assert.ok(r, `${what}: no HTTP response before the close, got ${JSON.stringify(text.slice(0, 200))}`);
  assert.equal(r.status, 408, `${what}: ${text}`);
  assert.match(r.body, /"code":"request_timeout"/, what);
}

describe('slow clients get 408 on both listeners', () => {
  let backend: Backend;
  let cp: ControlPlane;
  before(async () => {
    backend = await startBackend();
    cp = await startCp({
      EE_HEADERS_TIMEOUT_MS: String(HEADERS_TIMEOUT_MS),
      EE_BODY_TIMEOUT_MS: String(BODY_TIMEOUT_MS),
      EE_PROXY_TIMEOUT_SEC: '120', // the backend's own wait for a body must not be what closes anything
    });
    startAgent({ control_ws: wsUrl(cp), backend_url: backend.url });
    await waitRoutable(cp);
  });

  const ports = (): Array<{ name: string; port: number; host: string; body_path: string; auth?: boolean }> => [
    { name: 'API port', port: cp.api_port, host: '127.0.0.1', body_path: '/v1/proxy/demo/sink' },
    { name: 'API port, a JSON route', port: cp.api_port, host: '127.0.0.1', body_path: '/v1/accounts', auth: true },
    { name: 'proxy port', port: cp.proxy_port, host: 'demo.app.test', body_path: '/sink' },
  ];

  it('a connection that sends nothing', async () => {
    for (const p of ports()) {
      const c = await connectRaw(p.port);
      expect408(await untilClosed(c, CLOSE_WITHIN_MS, p.name), p.name);
    }
  });

  it('a header block sent one line at a time, never finished', async () => {
    for (const p of ports()) {
      const c = await connectRaw(p.port);
      c.write(`GET / HTTP/1.1\r\nHost: ${p.host}\r\n`);
      const t = setInterval(() => c.write(`X-Slow-${randomBytes(2).toString('hex')}: 1\r\n`), 200);
      try {
        expect408(await untilClosed(c, CLOSE_WITHIN_MS, p.name), p.name);
      } finally {
        clearInterval(t);
      }
    }
  });

  it('a body that never starts', async () => {
    for (const p of ports()) {
      const c = await connectRaw(p.port);
      c.write(
        `POST ${p.body_path} HTTP/1.1\r\nHost: ${p.host}\r\n${auth(p)}Content-Type: application/json\r\nContent-Length: 100\r\n\r\n`,
      );
      expect408(await untilClosed(c, CLOSE_WITHIN_MS, p.name), p.name);
    }
  });

  it('a body that stops half way', async () => {
    for (const p of ports()) {
      const c = await connectRaw(p.port);
      c.write(
        `POST ${p.body_path} HTTP/1.1\r\nHost: ${p.host}\r\n${auth(p)}Content-Type: application/json\r\nContent-Length: 100\r\n\r\n`,
      );
      await sleep(50);
      c.write('{"kind":"u'); // 10 of 100 bytes, after the head
      expect408(await untilClosed(c, CLOSE_WITHIN_MS, p.name), p.name);
    }
  });

  it('legitimate: a slow upload that keeps flowing outlives both deadlines, byte-exact, on both entries', async () => {
    const chunks = Array.from({ length: 30 }, () => randomBytes(64 * 1024));
    const whole = Buffer.concat(chunks);
    for (const e of entries(cp)) {
      const u = new URL(e.base);
      const r = await new Promise<{ status: number; body: string }>((resolve, reject) => {
        const req = http.request(
          {
            host: u.hostname,
            port: u.port,
            method: 'POST',
            path: `${e.prefix}/sink`,
            headers: { ...(e.host ? { host: e.host } : {}), 'content-type': 'application/octet-stream' },
          },
          (res) => {
            let body = '';
            res.on('data', (c: Buffer) => (body += c.toString()));
            res.on('end', () => resolve({ status: res.statusCode!, body }));
          },
        );
        req.on('error', reject);
        let i = 0;
        // 30 chunks 150 ms apart: 4.5 s in all, more than the header and body deadlines together.
        const t = setInterval(() => {
          req.write(chunks[i++]);
          if (i === chunks.length) {
            clearInterval(t);
            req.end();
          }
        }, 150);
      });
      assert.equal(r.status, 200, `${e.name}: ${r.body}`);
      assert.deepEqual(JSON.parse(r.body), { body_bytes: whole.length, sha256: sha256(whole) }, e.name);
    }
  });

  it('legitimate: a response slower than the header deadline, and keep-alive reuse after an idle pause', async () => {
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    for (const e of entries(cp)) {
      const slow = await via(e, `/slow/${HEADERS_TIMEOUT_MS * 2}`, { agent });
      assert.equal(slow.status, 200, `${e.name}: ${slow.body.toString()}`);
      await sleep(HEADERS_TIMEOUT_MS * 2); // idle on the kept-alive connection
      const again = await via(e, '/echo', { agent });
      assert.equal(again.status, 200, `${e.name}: ${again.body.toString()}`);
    }
    agent.destroy();
  });

  it('legitimate: a WebSocket through the proxy and the agent tunnel outlive every deadline', async () => {
    const ws = new WebSocket(`${cp.proxy_url.replace('http', 'ws')}/ws`, { headers: { host: 'demo.app.test' } });
    await new Promise<void>((resolve, reject) => {
      ws.once('open', () => resolve());
      ws.once('error', reject);
    });
    const agents_before = [...cp.hub.links].length;
    await sleep(HEADERS_TIMEOUT_MS + BODY_TIMEOUT_MS + 1500);
    const echoed = new Promise<string>((r) => ws.once('message', (d: Buffer) => r(d.toString())));
    ws.send('still here');
    assert.equal(await deadline(echoed, 5000, 'echo after the pause'), 'still here');
    ws.close();
    assert.equal([...cp.hub.links].length, agents_before, 'the agent tunnel stayed');
    const r = await call(cp.api_url, '/v1/proxy/demo/echo');
    assert.equal(r.status, 200);
  });
});

/** One request on a connection of its own (closed after the answer), from `local` (a 127.x address). */
function getStatus(port: number, path: string, host: string | undefined, local: string): Promise<number> {
  return new Promise<number>((resolve, reject) => {
    const req = http.request(
      { host: '127.0.0.1', port, localAddress: local, path, headers: host ? { host } : {}, agent: false },
      (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode!));
      },
    );
    req.on('error', reject);
    req.end();
  });
}

/** The caps' own count (absent before they existed: then nothing is waited for, and the attack shows). */
function openConnections(cp: ControlPlane, which: 'api' | 'proxy'): number {
  const f = (cp as Partial<ControlPlane>).open_connections;
  if (typeof f !== 'function') return 0;
  return f.call(cp)[which];
}

describe('connection caps', () => {
  let cp: ControlPlane;
  before(async () => {
    const backend = await startBackend();
    cp = await startCp({ EE_MAX_CONNECTIONS_PER_ADDRESS: '4', EE_MAX_CONNECTIONS: '8' });
    // Agents all dial from 127.0.0.1 and outnumber the per-address cap: tunnels are not counted once open.
    for (let i = 0; i < 6; i++) startAgent({ control_ws: wsUrl(cp), backend_url: backend.url });
    // Only connections of their own (no keep-alive pool), so the counts below are exactly the test's.
    await waitFor(
      async () => (await getStatus(cp.api_port, '/v1/resolve/demo', undefined, '127.0.0.1')) === 200,
      20_000,
      'demo routable',
    );
    await waitFor(() => [...cp.hub.links].filter((l) => l.reg !== null).length === 6, 20_000, 'six agents');
  });

  for (const which of ['api', 'proxy'] as const) {
    it(`${which} port: one address gets 503 beyond its cap, others still get through; then the total cap`, async () => {
      const port = which === 'api' ? cp.api_port : cp.proxy_port;
      const health = (local: string) =>
        getStatus(port, which === 'api' ? '/health' : '/echo', which === 'api' ? undefined : 'demo.app.test', local);
      await waitFor(() => openConnections(cp, which) === 0, 5000, 'no connection open');
      const held = [];
      for (let i = 0; i < 4; i++) held.push(await connectRaw(port, '127.0.0.2'));
      const fifth = await connectRaw(port, '127.0.0.2');
      const text = await untilClosed(fifth, CLOSE_WITHIN_MS, 'the fifth connection from one address');
      const [r] = parseResponses(text);
      assert.equal(r?.status, 503, text);
      assert.match(r.body, /"code":"too_many_connections"/);
      assert.equal(header(r, 'retry-after')[0], '1');
      assert.equal(await health('127.0.0.3'), 200, 'another address is served');
      await waitFor(() => openConnections(cp, which) === 4, 5000, 'the served connection to be released');

      for (let i = 0; i < 4; i++) held.push(await connectRaw(port, '127.0.0.3'));
      const over = await connectRaw(port, '127.0.0.4');
      const t2 = await untilClosed(over, CLOSE_WITHIN_MS, 'a connection over the total cap');
      assert.equal(parseResponses(t2)[0]?.status, 503, t2);

      for (const c of held) c.socket.destroy();
      await waitFor(() => openConnections(cp, which) === 0, 5000, 'every connection released');
      assert.equal(await waitFor(async () => (await health('127.0.0.4')) === 200, 5000, 'served again'), true);
    });
  }
});
