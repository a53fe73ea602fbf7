// WebSocket upgrades carried through the tunnel, via both entry points: echo of text and binary messages,
// a 5 MiB binary message byte-exact, close propagation both ways, and a refused upgrade relayed as is.

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { randomBytes } from 'node:crypto';
import { WebSocket } from 'ws';
import { closeAll, startAgent, startBackend, startCp, waitRoutable, wsUrl, type Backend } from '../helpers/network.js';
import type { ControlPlane } from '@easyenclave/control-plane/server';
import { deadline, entries, wsRoutes, type Entry } from './util.js';

after(closeAll);

let backend: Backend;
let cp: ControlPlane;
let held: ReturnType<typeof wsRoutes>;

before(async () => {
  backend = await startBackend();
  held = wsRoutes(backend);
  cp = await startCp();
  startAgent({ control_ws: wsUrl(cp), backend_url: backend.url });
  await waitRoutable(cp);
});

const clients: WebSocket[] = [];
after(() => {
  for (const c of clients) c.terminate();
});

function wsTo(e: Entry, path: string): WebSocket {
  const url = `${e.base.replace(/^http/, 'ws')}${e.prefix}${path}`;
  const ws = new WebSocket(url, { perMessageDeflate: false, ...(e.host ? { headers: { host: e.host } } : {}) });
  ws.on('error', () => {}); // failures surface through the promises below; never as an uncaught 'error'
  clients.push(ws);
  return ws;
}

async function open(e: Entry, path: string): Promise<WebSocket> {
  const ws = wsTo(e, path);
  await deadline(
    new Promise<void>((resolve, reject) => {
      ws.once('open', () => resolve());
      ws.once('error', reject);
      ws.once('unexpected-response', (_req, res) => reject(new Error(`upgrade answered ${res.statusCode}`)));
    }),
    10_000,
    `WebSocket open via ${e.name}`,
  );
  return ws;
}

function nextMessage(ws: WebSocket): Promise<{ data: Buffer; isBinary: boolean }> {
  return new Promise((resolve, reject) => {
    const onClose = (code: number) => reject(new Error(`closed (${code}) while waiting for a message`));
    ws.once('close', onClose);
    ws.once('message', (data, isBinary) => {
      ws.off('close', onClose);
      resolve({ data: Buffer.isBuffer(data) ? data : Buffer.concat(data as Buffer[]), isBinary });
    });
  });
}

function closed(ws: WebSocket): Promise<{ code: number; reason: string }> {
  if (ws.readyState === WebSocket.CLOSED) return Promise.reject(new Error('already closed'));
  return new Promise((resolve) => ws.once('close', (code, reason) => resolve({ code, reason: reason.toString() })));
}

for (const name of ['api-path', 'host'] as const) {
  const entry = (): Entry => entries(cp).find((e) => e.name === name)!;

  describe(`WebSocket via ${name}`, () => {
    it('echoes text and binary messages, in order', async () => {
      const ws = await open(entry(), '/ws?x=1');
      const sent: Array<[string | Buffer, boolean]> = [
        ['hello', false],
        [Buffer.from([0, 1, 2, 255, 254]), true],
        ['héllo ✓ wörld', false],
        [randomBytes(70_000), true], // bigger than one tunnel DATA frame
        ['', false],
      ];
      const got: Array<{ data: Buffer; isBinary: boolean }> = [];
      const all = new Promise<void>((resolve) =>
        ws.on('message', (data, isBinary) => {
          got.push({ data: data as Buffer, isBinary });
          if (got.length === sent.length) resolve();
        }),
      );
      for (const [m, binary] of sent) ws.send(m, { binary });
      await deadline(all, 10_000, 'echo of 5 messages');
      sent.forEach(([m, binary], i) => {
        assert.equal(got[i]!.isBinary, binary, `message ${i} type`);
        assert.ok(got[i]!.data.equals(Buffer.from(m)), `message ${i} content`);
      });
      ws.close(1000);
      await closed(ws).catch(() => {});
    });

    it('a 5 MiB binary message round-trips byte-exact', async () => {
      const ws = await open(entry(), '/ws/big');
      const big = randomBytes(5 * 1024 * 1024);
      const reply = nextMessage(ws);
      ws.send(big, { binary: true });
      const { data, isBinary } = await deadline(reply, 20_000, '5 MiB echo');
      assert.equal(isBinary, true);
      assert.equal(data.length, big.length);
      assert.ok(data.equals(big), '5 MiB message corrupted in transit');
      ws.close(1000);
      await closed(ws).catch(() => {});
    });

    it('a close from the client reaches the backend, and its answer comes back', async () => {
      const server_side = held.nextHeld();
      const ws = await open(entry(), '/held/client-closes?q=1');
      const srv = await deadline(server_side, 5000, 'backend-side socket');
      const req = held.requests[held.held.indexOf(srv)]!;
      assert.equal(req.url, '/held/client-closes?q=1', 'path and query of the upgrade request');
      assert.equal(req.headers['x-forwarded-host'], entry().forwarded_host);
      assert.equal(req.headers['x-forwarded-for'], '127.0.0.1');
      // Prove the pipe works, then close from the client.
      const echo = nextMessage(ws);
      ws.send('ping');
      assert.equal((await echo).data.toString(), 'ping');
      const srv_closed = closed(srv);
      const cli_closed = closed(ws);
      ws.close(4000, 'client bye');
      const s = await deadline(srv_closed, 10_000, 'backend sees the client close');
      assert.equal(s.code, 4000);
      assert.equal(s.reason, 'client bye');
      const c = await deadline(cli_closed, 10_000, 'client close handshake completes');
      assert.equal(c.code, 4000, 'the backend echoes the close code through the tunnel');
    });

    it('a close from the backend reaches the client', async () => {
      const server_side = held.nextHeld();
      const ws = await open(entry(), '/held/server-closes');
      const srv = await deadline(server_side, 5000, 'backend-side socket');
      const cli_closed = closed(ws);
      const srv_closed = closed(srv);
      srv.close(4001, 'server bye');
      const c = await deadline(cli_closed, 10_000, 'client sees the backend close');
      assert.equal(c.code, 4001);
      assert.equal(c.reason, 'server bye');
      const s = await deadline(srv_closed, 10_000, 'backend close handshake completes');
      assert.equal(s.code, 4001);
    });

    it('a client that drops the connection closes the backend side', async () => {
      const server_side = held.nextHeld();
      const ws = await open(entry(), '/held/client-drops');
      const srv = await deadline(server_side, 5000, 'backend-side socket');
      const srv_closed = closed(srv);
      ws.terminate();
      const s = await deadline(srv_closed, 10_000, 'backend sees the dropped client');
      assert.equal(s.code, 1006);
    });

    it('a backend that drops the connection closes the client side', async () => {
      const server_side = held.nextHeld();
      const ws = await open(entry(), '/held/server-drops');
      const srv = await deadline(server_side, 5000, 'backend-side socket');
      const cli_closed = closed(ws);
      srv.terminate();
      const c = await deadline(cli_closed, 10_000, 'client sees the dropped backend');
      assert.equal(c.code, 1006);
    });

    it('an upgrade the backend answers with an ordinary response is relayed as that response', async () => {
      const ws = wsTo(entry(), '/refuse/me?y=2');
      const res = await deadline(
        new Promise<import('node:http').IncomingMessage>((resolve, reject) => {
          ws.once('unexpected-response', (_req, r) => resolve(r));
          ws.once('open', () => reject(new Error('upgrade unexpectedly succeeded')));
          ws.once('error', reject);
        }),
        10_000,
        'refused upgrade',
      );
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      await once(res, 'end');
      assert.equal(res.statusCode, 403);
      assert.equal(res.headers['x-refused'], 'yes');
      assert.match(String(res.headers['content-type']), /^application\/json/);
      assert.deepEqual(JSON.parse(Buffer.concat(chunks).toString()), { refused: true, url: '/refuse/me?y=2' });
    });
  });
}

describe('WebSocket errors', () => {
  it('an upgrade for an unknown app gets a 404 JSON error on both entry points', async () => {
    for (const e of entries(cp, 'nope')) {
      const ws = wsTo(e, '/ws');
      const res = await deadline(
        new Promise<import('node:http').IncomingMessage>((resolve, reject) => {
          ws.once('unexpected-response', (_req, r) => resolve(r));
          ws.once('open', () => reject(new Error('upgrade to an unknown app succeeded')));
          ws.once('error', reject);
        }),
        10_000,
        `upgrade to an unknown app via ${e.name}`,
      );
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      await once(res, 'end');
      assert.equal(res.statusCode, 404, `via ${e.name}`);
      assert.match(String(res.headers['content-type']), /^application\/json/);
      const body = JSON.parse(Buffer.concat(chunks).toString());
      assert.equal(body.error.code, 'unknown_app', `via ${e.name}: ${JSON.stringify(body)}`);
      assert.equal(typeof body.error.message, 'string');
    }
  });
});

describe('WebSocket with short proxy timeouts (EE_PROXY_TIMEOUT_SEC=1, EE_PROXY_IDLE_TIMEOUT_SEC=1)', () => {
  let short: ControlPlane;
  before(async () => {
    const b = await startBackend();
    short = await startCp({ EE_PROXY_TIMEOUT_SEC: '1', EE_PROXY_IDLE_TIMEOUT_SEC: '1' });
    startAgent({ control_ws: wsUrl(short), backend_url: b.url });
    await waitRoutable(short);
  });

  it('an open WebSocket idle for longer than both timeouts stays open and keeps echoing', async () => {
    const socks = await Promise.all(entries(short).map((e) => open(e, '/ws/idle')));
    const early = socks.map((ws) => closed(ws).then((c) => `closed ${c.code} while idle`));
    const idle = new Promise<string>((r) => setTimeout(() => r('idle over'), 2500));
    assert.equal(await Promise.race([idle, ...early]), 'idle over');
    for (const ws of socks) {
      const reply = nextMessage(ws);
      ws.send('still here');
      assert.equal((await deadline(reply, 5000, 'echo after idling')).data.toString(), 'still here');
      ws.close(1000);
    }
  });
});
