// Request-Id on every response — API answers, proxied answers through both entry points (the app's own
// `Request-Id` is replaced by ours), WebSocket upgrades and their refusals — and the same id in the log lines
// of that request, read from the output of a real `ee control-plane` process with EE_ACCESS_LOG=full.
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { writeFileSync } from 'node:fs';
import net from 'node:net';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { WebSocket, WebSocketServer } from 'ws';
import { closeAll, onCleanup, spawnCp, startAgent, waitFor, waitRoutable, type CpProcess } from '../helpers/network.js';
import { tmpDir } from '../helpers/tmp.js';
import { call, createAccount } from '../ledger-http/client.js';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/** An app that answers with the request id it was given, names its own (which must not reach the client), and
 *  echoes WebSocket messages. */
async function appWithItsOwnRequestId(): Promise<string> {
  const server = http.createServer((req, res) => {
    res.writeHead(200, { 'content-type': 'text/plain', 'request-id': 'chosen-by-the-app' });
    res.end(`hello ${String(req.headers['request-id'])}`);
  });
  const wss = new WebSocketServer({ server });
  wss.on('connection', (ws) => ws.on('message', (d) => ws.send(d)));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  onCleanup(
    () =>
      new Promise<void>((r) => {
        for (const c of wss.clients) c.terminate();
        server.closeAllConnections();
        server.close(() => r());
      }),
  );
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

/** The raw head of the answer to an upgrade request (refusals end the connection). */
function rawUpgrade(port: number, path: string, host: string, extra = ''): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = net.connect(port, '127.0.0.1', () =>
      s.write(
        `GET ${path} HTTP/1.1\r\nHost: ${host}\r\n${extra}Connection: Upgrade\r\nUpgrade: websocket\r\n` +
          'Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n',
      ),
    );
    let got = '';
    s.on('data', (d: Buffer) => (got += d.toString('latin1')));
    s.on('end', () => resolve(got.split('\r\n\r\n')[0]!));
    s.on('error', reject);
  });
}

const headerOf = (head: string, name: string) =>
  head
    .split('\r\n')
    .find((l) => l.toLowerCase().startsWith(`${name}:`))
    ?.slice(name.length + 1)
    .trim();

describe('Request-Id on every response and in every log line of its request', () => {
  let cp: CpProcess;
  const lines = (): any[] =>
    cp
      .output()
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l));
  const linesOf = async (request_id: string, min = 1): Promise<any[]> =>
    waitFor(() => {
      const l = lines().filter((x) => x.request_id === request_id);
      return l.length >= min ? l : undefined;
    });
  const proxyPort = () => Number(new URL(cp.proxy_url).port);
  const apiPort = () => Number(new URL(cp.api_url).port);

  before(async () => {
    // A configfs-tsm path that is a plain file: every self-quote fails, which is an error line of its request.
    const tsm = join(tmpDir(), 'not-configfs');
    writeFileSync(tsm, '');
    cp = await spawnCp({ EE_ACCESS_LOG: 'full', EE_LOG_LEVEL: 'info', EE_TSM_PATH: tsm });
    startAgent({ control_ws: cp.ws_url, backend_url: await appWithItsOwnRequestId() });
    await waitRoutable(cp);
  });
  after(closeAll);

  it('an API call that moves money: the header names the access line and the money line', async () => {
    const alice = await createAccount(cp.api_url, 'user', 'alice');
    const r = await call(cp.api_url, 'POST', '/v1/credits/purchase', {
      body: { account: alice.id, amount: '$3', payment_ref: 'rid_0001' },
    });
    assert.equal(r.status, 201, JSON.stringify(r.body));
    const id = r.headers.get('request-id')!;
    assert.match(id, UUID);
    const mine = await linesOf(id, 2);
    assert.ok(
      mine.some((l) => l.msg === 'request' && l.status === 201 && l.route === '/v1/credits/purchase'),
      JSON.stringify(mine),
    );
    assert.ok(
      mine.some((l) => l.event === 'money' && l.kind === 'mint'),
      JSON.stringify(mine),
    );
    // Every line that names this request names it with this id, and no other request's line carries it.
    for (const l of lines().filter((x) => x.transfer_id === r.body.transfer_id)) assert.equal(l.request_id, id);
  });

  it('an error line of a request names it too', async () => {
    const res = await fetch(`${cp.api_url}/v1/attestation?nonce=${'ab'.repeat(32)}`);
    assert.equal(res.status, 503);
    const id = res.headers.get('request-id')!;
    const mine = await linesOf(id, 2);
    const error = mine.find((l) => l.level >= 50 && l.msg === 'control plane could not produce its own quote');
    assert.ok(error, JSON.stringify(mine));
    assert.ok(mine.some((l) => l.msg === 'request' && l.status === 503));
    const unnamed = lines().filter((l) => l.msg === 'control plane could not produce its own quote' && !l.request_id);
    assert.deepEqual(unnamed, []);
  });

  it('an id the caller sends is kept; a malformed one is replaced', async () => {
    const kept = await fetch(`${cp.api_url}/v1/nope`, { headers: { 'request-id': 'edge-7f3a.1' } });
    assert.equal(kept.status, 404);
    assert.equal(kept.headers.get('request-id'), 'edge-7f3a.1');
    const [line] = await linesOf('edge-7f3a.1');
    assert.equal(line.status, 404);
    const bad = await fetch(`${cp.api_url}/health`, { headers: { 'request-id': 'a b"c' } });
    assert.match(bad.headers.get('request-id')!, UUID);
  });

  it("proxied through /v1/proxy/{app}: the app is given it, ours replaces the app's, and the access line names it", async () => {
    const res = await fetch(`${cp.api_url}/v1/proxy/demo/hello?x=1`);
    assert.equal(res.status, 200);
    const id = res.headers.get('request-id')!;
    assert.match(id, UUID);
    assert.equal(await res.text(), `hello ${id}`, 'the app was given the same id');
    const kept = await fetch(`${cp.api_url}/v1/proxy/demo/hello`, { headers: { 'x-request-id': 'edge-42' } });
    assert.equal(kept.headers.get('request-id'), 'edge-42');
    assert.equal(await kept.text(), 'hello edge-42');
    const [line] = await linesOf(id);
    assert.equal(line.msg, 'request');
    assert.deepEqual([line.entry, line.app, line.status, line.path], ['path', 'demo', 200, '/v1/proxy/demo/hello']);
  });

  it('proxied through the host entry, and refused there', async () => {
    const ok = await new Promise<http.IncomingMessage>((resolve, reject) =>
      http
        .get({ port: proxyPort(), host: '127.0.0.1', path: '/hello', headers: { host: 'demo.app.test' } }, resolve)
        .on('error', reject),
    );
    ok.resume();
    assert.equal(ok.statusCode, 200);
    const id = ok.headers['request-id'] as string;
    assert.match(id, UUID);
    const [line] = await linesOf(id);
    assert.deepEqual([line.entry, line.app, line.status], ['host', 'demo', 200]);

    const refused = await fetch(`${cp.api_url}/v1/proxy/nosuch/x`);
    assert.equal(refused.status, 404);
    const rid = refused.headers.get('request-id')!;
    assert.equal(((await refused.json()) as any).error.code, 'unknown_app');
    const [refusedLine] = await linesOf(rid);
    assert.deepEqual([refusedLine.app, refusedLine.status], ['nosuch', 404]);
  });

  it('WebSocket upgrades carry it, accepted or refused', async () => {
    const ws = new WebSocket(`${cp.api_url.replace('http', 'ws')}/v1/proxy/demo/socket`);
    const upgraded = await new Promise<http.IncomingMessage>((resolve, reject) => {
      ws.once('upgrade', resolve);
      ws.once('error', reject);
    });
    assert.match(upgraded.headers['request-id'] as string, UUID);
    ws.close();

    for (const [port, path, host] of [
      [apiPort(), '/v1/proxy/nosuch/socket', '127.0.0.1'],
      [apiPort(), '/not/an/upgrade/path', '127.0.0.1'],
      [proxyPort(), '/socket', 'nosuch.app.test'],
      [proxyPort(), '/socket', 'elsewhere.example'],
    ] as const) {
      const head = await rawUpgrade(port, path, host);
      assert.match(head, /^HTTP\/1\.1 404 /, `${host}${path}`);
      assert.match(headerOf(head, 'request-id') ?? '', UUID, `${host}${path}: ${head}`);
    }
    const kept = await rawUpgrade(apiPort(), '/v1/proxy/nosuch/socket', '127.0.0.1', 'Request-Id: upgrade-1\r\n');
    assert.equal(headerOf(kept, 'request-id'), 'upgrade-1');
  });
});
