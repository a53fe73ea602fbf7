// A malicious agent controls its response heads and bodies, never the client connection's framing (issue 11
// item 6). A pipelining raw-socket client sends a request to the attacker's app and one to a genuine app on
// the same connection; whatever the attacker's agent declares (a short Content-Length followed by a forged
// response, a long one it never fills, Transfer-Encoding with Content-Length, Connection and other hop-by-hop
// fields), the client never parses a response the genuine app did not send. Genuine responses keep working
// when pipelined, on both entries.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { MuxStream } from '@easyenclave/protocol';
import type { ControlPlane } from '@easyenclave/control-plane/server';
import { closeAll, startAgent, startBackend, startCp, waitRoutable, wsUrl } from '../helpers/network.js';
import { RawAgent } from '../lifecycle/raw-agent.js';
import { connectRaw, header, parseResponses, untilClosed, type ParsedResponse } from './util.js';

after(closeAll);

const FORGED =
  'HTTP/1.1 200 OK\r\nSet-Cookie: stolen=1; Path=/\r\nContent-Type: text/plain\r\nContent-Length: 6\r\n\r\nforged';

/** What the attacker's agent answers, by request path. */
const ATTACKS: Record<string, (s: MuxStream) => void> = {
  // Content-Length 2, then the two bytes and a whole forged response in a second frame.
  '/short-length': (s) => {
    s.respond({ status: 200, headers: [['content-length', '2']] });
    s.write(Buffer.from('ok'));
    s.write(Buffer.from(FORGED, 'latin1'));
    s.end();
  },
  // The same bytes in one frame.
  '/short-length-one-frame': (s) => {
    s.respond({ status: 200, headers: [['content-length', '2']] });
    s.write(Buffer.from(`ok${FORGED}`, 'latin1'));
    s.end();
  },
  // Content-Length 40 and 3 bytes: the next response's head would be read as the rest of this body.
  '/long-length': (s) => {
    s.respond({ status: 200, headers: [['content-length', '40']] });
    s.write(Buffer.from('abc'));
    s.end();
  },
  // Both framings at once, and a chunked body that is not chunked.
  '/te-and-cl': (s) => {
    s.respond({
      status: 200,
      headers: [
        ['transfer-encoding', 'chunked'],
        ['content-length', '5'],
      ],
    });
    s.write(Buffer.from('hello'));
    s.end();
  },
  // Hop-by-hop fields, and a field named by Connection.
  '/hop-by-hop': (s) => {
    const body = Buffer.from('hop');
    s.respond({
      status: 200,
      headers: [
        ['connection', 'close, x-hop-secret'],
        ['x-hop-secret', '1'],
        ['keep-alive', 'timeout=1'],
        ['proxy-authenticate', 'Basic'],
        ['proxy-connection', 'close'],
        ['upgrade', 'h2c'],
        ['trailer', 'x-t'],
        ['te', 'trailers'],
        ['content-length', String(body.length)],
      ],
    });
    s.write(body);
    s.end();
  },
  // Two different lengths.
  '/conflicting-lengths': (s) => {
    s.respond({
      status: 200,
      headers: [
        ['content-length', '2'],
        ['content-length', '8'],
      ],
    });
    s.write(Buffer.from('okforged'));
    s.end();
  },
};

describe('a malicious agent cannot frame the client connection', () => {
  let cp: ControlPlane;
  before(async () => {
    const backend = await startBackend();
    cp = await startCp();
    startAgent({ control_ws: wsUrl(cp), backend_url: backend.url, app_name: 'good' });
    const evil = await RawAgent.connect(wsUrl(cp), { app_name: 'evil', repo: 'mallory/evil' });
    evil.serve((stream, head) => {
      stream.onData = (c) => stream.consumed(c.length);
      const path = head.path;
      const attack = Object.entries(ATTACKS).find(([p]) => path.startsWith(p));
      if (attack) return attack[1](stream);
      stream.respond({ status: 404, headers: [['content-length', '0']] });
      stream.end();
    });
    await evil.registerAndAttest();
    await waitRoutable(cp, 'good');
    await waitRoutable(cp, 'evil');
  });

  /** Two pipelined requests on one connection: the attacker's, then the genuine app's. */
  async function pipelined(entry: 'path' | 'host', attack: string): Promise<ParsedResponse[]> {
    const port = entry === 'path' ? cp.api_port : cp.proxy_port;
    const req = (app: string, path: string) =>
      entry === 'path'
        ? `GET /v1/proxy/${app}${path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n`
        : `GET ${path} HTTP/1.1\r\nHost: ${app}.app.test\r\n\r\n`;
    const c = await connectRaw(port);
    c.write(req('evil', attack) + req('good', '/echo') + 'GET /x HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
    return parseResponses(await untilClosed(c, 15_000, `${entry} ${attack}`));
  }

  for (const entry of ['path', 'host'] as const) {
    for (const attack of Object.keys(ATTACKS)) {
      it(`${entry} entry, ${attack}: no forged response, no smuggled framing`, async () => {
        const responses = await pipelined(entry, attack);
        const text = JSON.stringify(responses);
        assert.ok(!/stolen|forged/.test(responses.map((r) => JSON.stringify(r.headers)).join('')), text);
        for (const [i, r] of responses.entries()) {
          assert.ok(!r.body.includes('HTTP/1.1'), `response ${i} swallowed another response: ${text}`);
          if (!r.complete) continue;
          assert.ok(!(header(r, 'transfer-encoding').length > 0 && header(r, 'content-length').length > 0), text);
          assert.ok(header(r, 'content-length').length <= 1, text);
          assert.ok(
            !header(r, 'keep-alive').includes('timeout=1'),
            `the agent's Keep-Alive reached the client: ${text}`,
          );
          assert.ok(!header(r, 'connection').some((v) => /x-hop-secret/.test(v)), text);
          for (const f of ['proxy-authenticate', 'proxy-connection', 'upgrade', 'trailer', 'te', 'x-hop-secret'])
            assert.deepEqual(header(r, f), [], `${f} reached the client: ${text}`);
        }
        // The first answer is the attacker's (cut, or as declared); a second, if any, is the genuine app's.
        const first = responses[0];
        if (first?.complete && first.status === 200) {
          assert.ok(['hop', 'hello', 'ok'].includes(first.body), `attacker's body: ${text}`);
        }
        if (responses[1]?.complete) {
          assert.equal(responses[1].status, 200, text);
          assert.match(responses[1].body, /"url":"\/echo"/, `the second answer is the genuine app's: ${text}`);
        }
      });
    }
  }

  it('the attack responses that can be answered are answered: hop-by-hop fields dropped, length kept', async () => {
    const c = await connectRaw(cp.proxy_port);
    c.write(
      'GET /hop-by-hop HTTP/1.1\r\nHost: evil.app.test\r\n\r\nGET /echo HTTP/1.1\r\nHost: good.app.test\r\nConnection: close\r\n\r\n',
    );
    const [hop, echo] = parseResponses(await untilClosed(c, 15_000, 'hop-by-hop'));
    assert.equal(hop?.body, 'hop');
    assert.deepEqual(header(hop!, 'content-length'), ['3']);
    assert.ok(echo?.complete, 'the agent could not close the client connection with Connection: close');
    assert.match(echo.body, /"url":"\/echo"/);
    const c2 = await connectRaw(cp.proxy_port);
    c2.write('GET /conflicting-lengths HTTP/1.1\r\nHost: evil.app.test\r\nConnection: close\r\n\r\n');
    const [bad] = parseResponses(await untilClosed(c2, 15_000, 'conflicting lengths'));
    assert.equal(bad?.status, 502);
    assert.match(bad.body, /"code":"bad_response"/);
  });

  it('legitimate: genuine responses pipelined on one connection, both entries, with HEAD, 204 and 304', async () => {
    for (const entry of ['path', 'host'] as const) {
      const port = entry === 'path' ? cp.api_port : cp.proxy_port;
      const line = (method: string, path: string, last = false) =>
        (entry === 'path'
          ? `${method} /v1/proxy/good${path} HTTP/1.1\r\nHost: 127.0.0.1\r\n`
          : `${method} ${path} HTTP/1.1\r\nHost: good.app.test\r\n`) + (last ? 'Connection: close\r\n\r\n' : '\r\n');
      const c = await connectRaw(port);
      c.write(
        line('GET', '/bytes/70000') +
          line('HEAD', '/bytes/5') +
          line('GET', '/echo?n=2') +
          line('GET', '/bytes/10', true),
      );
      const rs = parseResponses(await untilClosed(c, 15_000, entry), new Set([1]));
      assert.deepEqual(
        rs.map((r) => [r.status, r.complete, r.body.length]),
        [
          [200, true, 70000],
          [200, true, 0],
          [200, true, rs[2]?.body.length],
          [200, true, 10],
        ],
        entry,
      );
      assert.deepEqual(header(rs[1]!, 'content-length'), ['5'], 'HEAD keeps the representation length');
      assert.match(rs[2]!.body, /"url":"\/echo\?n=2"/);
    }
  });
});
