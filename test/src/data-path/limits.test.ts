// Input limits on the proxy path: an oversized request head is a 431 that leaves no stream behind, and
// every client-sent X-Forwarded-* header is replaced by what the control plane saw.
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { closeAll, startAgent, startBackend, startCp, waitRoutable, wsUrl } from '../helpers/network.js';

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
});
