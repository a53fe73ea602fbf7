// Input limits on the proxy path: an oversized request head is a 431 that leaves no stream behind, every
// client-sent X-Forwarded-* header is replaced by what the control plane saw, and requests the HTTP parser
// refuses get our JSON error shape on both listeners.
import assert from 'node:assert/strict';
import net from 'node:net';
import { after, describe, it } from 'node:test';
import { closeAll, startAgent, startBackend, startCp, waitRoutable, wsUrl } from '../helpers/network.js';
import { assertApiError, call, entries, via } from './util.js';

after(closeAll);

describe('proxy input limits', () => {
  it('a request head larger than one HEADERS frame gets 431 and frees its slot', async () => {
    const backend = await startBackend();
    const cp = await startCp({ EE_MAX_HEADER_BYTES: String(256 * 1024) });
    startAgent({ control_ws: wsUrl(cp), backend_url: backend.url });
    await waitRoutable(cp);
    const big = 'x'.repeat(40 * 1024); // under the HTTP limit, over the 32 KiB tunnel frame
    const res = await fetch(`${cp.api_url}/v1/proxy/demo/echo`, { headers: { 'x-big': big } });
    assert.equal(res.status, 431);
    const body = (await res.json()) as { error: { code: string } };
    assert.equal(body.error.code, 'headers_too_large');
    for (const link of cp.hub.links) assert.equal(link.session.activeStreams, 0, 'no stream may be left open');
    const ok = await fetch(`${cp.api_url}/v1/proxy/demo/echo`);
    assert.equal(ok.status, 200);
  });

  it('a request target over 8 KiB gets 414 on both entry points and for upgrades, and one that is not a path 400, before any agent is asked', async () => {
    const backend = await startBackend();
    const cp = await startCp();
    startAgent({ control_ws: wsUrl(cp), backend_url: backend.url });
    await waitRoutable(cp);
    const long = `/echo/${'a'.repeat(9000)}`;
    for (const e of entries(cp)) {
      const r = await via(e, long);
      assertApiError(r, 414, 'uri_too_long', e.name);
    }
    const upgrade = await new Promise<string>((resolve, reject) => {
      const sock = net.connect(cp.api_port, '127.0.0.1', () =>
        sock.end(
          `GET /v1/proxy/demo${long} HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n`,
        ),
      );
      const chunks: Buffer[] = [];
      sock.on('data', (c: Buffer) => chunks.push(c));
      sock.on('error', reject);
      sock.on('close', () => resolve(Buffer.concat(chunks).toString('latin1')));
    });
    assert.match(upgrade, /^HTTP\/1\.1 414 /);
    assert.match(upgrade, /"uri_too_long"/);
    for (const target of ['*', 'http://demo.app.test/echo']) {
      const r = await call(cp.proxy_url, target, { method: 'OPTIONS', headers: { host: 'demo.app.test' } });
      assertApiError(r, 400, 'bad_request', `target ${target}`);
    }
    const ok = await fetch(`${cp.api_url}/v1/proxy/demo/echo/${'a'.repeat(8000)}`);
    assert.equal(ok.status, 200, 'a target just under the limit passes');
  });

  it('drops every client X-Forwarded-* header, short names included', async () => {
    const backend = await startBackend();
    const cp = await startCp();
    startAgent({ control_ws: wsUrl(cp), backend_url: backend.url });
    await waitRoutable(cp);
    const res = await fetch(`${cp.api_url}/v1/proxy/demo/echo`, {
      headers: { 'x-forwarded-by': 'evil', 'x-forwarded-host': 'evil.example', 'x-forwarded-for': '203.0.113.7' },
    });
    const echo = (await res.json()) as { headers: Record<string, string> };
    assert.equal(echo.headers['x-forwarded-by'], undefined);
    assert.notEqual(echo.headers['x-forwarded-host'], 'evil.example');
    assert.match(echo.headers['x-forwarded-for']!, /^203\.0\.113\.7, 127\.0\.0\.1$/);
  });

  it('requests the HTTP parser refuses get a JSON error and a closed connection, on both listeners', async () => {
    const backend = await startBackend();
    const cp = await startCp({ EE_MAX_HEADER_BYTES: String(8 * 1024) });
    startAgent({ control_ws: wsUrl(cp), backend_url: backend.url });
    await waitRoutable(cp);
    const raw = (port: number, bytes: Buffer) =>
      new Promise<{ status: number; headers: string; body: string }>((resolve, reject) => {
        const sock = net.connect(port, '127.0.0.1', () => sock.end(bytes));
        const chunks: Buffer[] = [];
        sock.on('data', (c: Buffer) => chunks.push(c));
        sock.on('error', reject);
        sock.on('close', () => {
          const text = Buffer.concat(chunks).toString('latin1');
          const [head = '', body = ''] = text.split('\r\n\r\n');
          resolve({ status: Number(head.split(' ')[1]), headers: head.toLowerCase(), body });
        });
      });
    const cases: Array<[string, Buffer, number, string]> = [
      [
        'raw non-ASCII byte in the path',
        Buffer.concat([
          Buffer.from('GET /v1/proxy/demo/caf'),
          Buffer.from([0xe9]),
          Buffer.from(' HTTP/1.1\r\nHost: demo.app.test\r\n\r\n'),
        ]),
        400,
        'bad_request',
      ],
      ['garbage request line', Buffer.from('NOT HTTP AT ALL\r\n\r\n'), 400, 'bad_request'],
      [
        'header block over EE_MAX_HEADER_BYTES',
        Buffer.from(
          `GET /v1/proxy/demo/echo HTTP/1.1\r\nHost: demo.app.test\r\nx-big: ${'y'.repeat(16 * 1024)}\r\n\r\n`,
        ),
        431,
        'headers_too_large',
      ],
    ];
    for (const port of [cp.api_port, cp.proxy_port]) {
      for (const [what, bytes, status, code] of cases) {
        const r = await raw(port, bytes);
        assert.equal(r.status, status, `${what} on port ${port}: ${r.headers}`);
        assert.match(r.headers, /content-type: application\/json/, what);
        assert.match(r.headers, /connection: close/, what);
        assert.equal((JSON.parse(r.body) as { error: { code: string } }).error.code, code, `${what}: ${r.body}`);
      }
    }
    const ok = await fetch(`${cp.api_url}/v1/proxy/demo/echo`);
    assert.equal(ok.status, 200, 'the control plane keeps serving');
  });
});
