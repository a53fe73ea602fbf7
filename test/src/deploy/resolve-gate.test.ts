// GET /v1/resolve/{app}?auth_request=1, what an external proxy's gate needs (issue 15 item 1): 2xx, or 403
// for every refusal — an unknown app, a malformed name, a host outside the app domain, an app that may not
// receive traffic — never a 404 or 400 that nginx would turn into a 500; the app may be named by its host;
// the app's state travels in EE-App-* headers. Without the flag resolve answers as documented (404 unknown).
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { closeAll, startAgent, startBackend, startCp, waitRoutable, wsUrl } from '../helpers/network.js';
import { assertApiError, call } from '../data-path/util.js';
import { RawAgent } from '../lifecycle/raw-agent.js';

after(closeAll);

describe('resolve as a gate', () => {
  it('answers 200 or 403 only, takes the host, and states the app in headers', async () => {
    const cp = await startCp();
    const backend = await startBackend();
    startAgent({ control_ws: wsUrl(cp), backend_url: backend.url });
    await waitRoutable(cp);
    const ghost = await RawAgent.connect(wsUrl(cp), { app_name: 'ghost', repo: 'acme/ghost' });
    ghost.register();
    await ghost.next('registered');

    for (const name of ['demo', 'demo.app.test', 'DEMO.App.Test']) {
      const r = await call(cp.api_url, `/v1/resolve/${name}?auth_request=1`);
      assert.equal(r.status, 200, `${name}: ${r.body.toString()}`);
      assert.equal(r.json().app_name, 'demo');
      assert.equal(r.headers['ee-app-status'], 'active');
      assert.equal(r.headers['ee-app-agents'], '1');
      assert.equal(r.headers['ee-app-sealed'], 'false');
      assert.equal(r.headers['ee-app-network'], 'sandbox-1');
      assert.match(String(r.headers['ee-app-last-attestation']), /^\d{4}-\d{2}-\d{2}T/);
    }
    const refusals: Array<[string, string]> = [
      ['nope', 'unknown_app'],
      ['nope.app.test', 'unknown_app'],
      ['demo.elsewhere.test', 'unknown_app'],
      ['bad_name!', 'unknown_app'],
      ['ghost', 'app_unattested'],
      ['ghost.app.test', 'app_unattested'],
      ['x'.repeat(300), 'uri_too_long'],
      ['x'.repeat(200), 'unknown_app'],
    ];
    for (const [name, code] of refusals) {
      for (const flag of ['1', 'yes']) {
        const r = await call(cp.api_url, `/v1/resolve/${encodeURIComponent(name)}?auth_request=${flag}`);
        // A malformed flag still means a gate is asking: refused, with a 403 all the same.
        assertApiError(r, 403, flag === '1' ? code : undefined, `${name.slice(0, 20)} auth_request=${flag}`);
      }
    }
    const ghostGate = await call(cp.api_url, '/v1/resolve/ghost?auth_request=1');
    assert.match(String(ghostGate.headers['ee-app-status']), /unattested|offline/);
    // Without the flag: the documented statuses for programs.
    assertApiError(await call(cp.api_url, '/v1/resolve/nope'), 404, 'unknown_app');
    assertApiError(await call(cp.api_url, '/v1/resolve/ghost'), 403);
  });
});
