// Origins at the HTTP level (issue 11 item 10): a request with two Host headers is a 400 on both ports (and
// for upgrades); the path entry `/v1/proxy/{app}` shares the API's origin, so there it strips Set-Cookie,
// does not forward the origin's cookies, refuses documents and scripts (403 content_type_refused) and marks
// what it serves nosniff and sandboxed — unless EE_PROXY_PATH_ACTIVE_CONTENT=1. The host entry serves all of
// it, with cookies kept host-only. (origins-chromium.test.ts shows the same in a browser.)
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { closeAll, startCp } from '../helpers/network.js';
import { assertApiError, call } from '../data-path/util.js';
import { startApps } from './apps.js';
import { connectRaw, parseResponses, untilClosed } from './util.js';

after(closeAll);

const noTargets = () => ({ api: '', other: '' });

describe('two Host headers', () => {
  it('are a 400 on the API port, the proxy port and an upgrade request', async () => {
    const cp = await startCp();
    await startApps(cp, noTargets);
    const cases = [
      { port: cp.api_port, req: 'GET /health HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n' },
      { port: cp.api_port, req: 'GET /v1/proxy/alpha/x HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n' },
      { port: cp.proxy_port, req: 'GET /x HTTP/1.1\r\nHost: alpha.app.test\r\nHost: beta.app.test\r\n\r\n' },
      {
        port: cp.proxy_port,
        req:
          'GET /ws HTTP/1.1\r\nHost: alpha.app.test\r\nHost: beta.app.test\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n' +
          'Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n',
      },
    ];
    for (const c of cases) {
      const conn = await connectRaw(c.port);
      conn.write(c.req);
      const text = await untilClosed(conn, 15_000, c.req);
      const [r] = parseResponses(text);
      assert.equal(r?.status, 400, `${c.req}\n→ ${text}`);
      assert.match(r.body, /"code":"bad_request"/);
      assert.match(r.body, /Host/);
    }
    // One Host is fine.
    assert.equal((await call(cp.api_url, '/health')).status, 200);
  });
});

describe('the path entry shares the API origin', () => {
  it('strips Set-Cookie, drops the Cookie header, refuses documents and scripts; the host entry serves them', async () => {
    const cp = await startCp();
    const { alpha } = await startApps(cp, noTargets);
    const path = (p: string, headers: Record<string, string> = {}) =>
      call(cp.api_url, `/v1/proxy/alpha${p}`, { headers });
    const host = (p: string, headers: Record<string, string> = {}) =>
      call(cp.proxy_url, p, { headers: { host: 'alpha.app.test', ...headers } });

    const set = await path('/setcookie');
    assert.equal(set.status, 200);
    assert.equal(set.headers['set-cookie'], undefined, 'no cookie is set on the API origin');
    assert.equal(set.headers['x-content-type-options'], 'nosniff');
    assert.equal(set.headers['content-security-policy'], 'sandbox');
    assert.equal(set.body.toString(), 'cookies set');

    await path('/cookies', { cookie: 'api_session=secret' });
    assert.equal(alpha.cookies_seen.at(-1), '', "the API origin's cookies are not the app's");

    for (const [p, type] of [
      ['/page', 'text/html'],
      ['/script.js', 'application/javascript'],
      ['/image.svg', 'image/svg+xml'],
    ] as const) {
      const r = await path(p);
      const err = assertApiError(r, 403, 'content_type_refused', p);
      assert.match(err.message, new RegExp(type.replace('+', '\\+')));
      assert.match(err.message, /\{app\}\.<EE_APP_DOMAIN>/);
    }

    const page = await host('/page');
    assert.equal(page.status, 200);
    assert.match(String(page.headers['content-type']), /^text\/html/);
    assert.equal(page.headers['content-security-policy'], undefined);
    assert.deepEqual(
      page.headers['set-cookie'],
      ['hdr_alpha=1; Path=/', 'dom_alpha=1; Path=/'],
      'host-only: the Domain attribute is dropped, so sibling apps never receive the cookie',
    );
    await host('/cookies', { cookie: 'hdr_alpha=1' });
    assert.equal(alpha.cookies_seen.at(-1), 'hdr_alpha=1');
    assert.equal((await host('/script.js')).status, 200);
  });

  it('EE_PROXY_PATH_ACTIVE_CONTENT=1 serves all of it on the path entry too', async () => {
    const cp = await startCp({ EE_PROXY_PATH_ACTIVE_CONTENT: '1' });
    const { alpha } = await startApps(cp, noTargets);
    const page = await call(cp.api_url, '/v1/proxy/alpha/page');
    assert.equal(page.status, 200);
    assert.match(String(page.headers['content-type']), /^text\/html/);
    assert.deepEqual(page.headers['set-cookie'], ['hdr_alpha=1; Path=/', 'dom_alpha=1; Domain=app.test; Path=/']);
    assert.equal(page.headers['content-security-policy'], undefined);
    await call(cp.api_url, '/v1/proxy/alpha/cookies', { headers: { cookie: 'k=v' } });
    assert.equal(alpha.cookies_seen.at(-1), 'k=v');
  });
});
