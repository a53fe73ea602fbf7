// deploy/'s nginx configuration and Caddyfile in front of a real control plane, on loopback with a private CA
// (issue 15 item 1): the API and a real app are served over TLS; an unknown app and an unattested one are
// refused by the front proxy itself with a 403 (the gate is GET /v1/resolve, never a status nginx turns
// into a 500); a real agent dials the tunnel through the front proxy over wss:// and serves its app.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { ControlPlane } from '@easyenclave/control-plane/server';
import {
  closeAll,
  spawnAgent,
  startAgent,
  startBackend,
  startCp,
  waitFor,
  waitRoutable,
  wsUrl,
  type Backend,
} from '../helpers/network.js';
import { makeTestPki, type TestPki } from '../helpers/tls.js';
import { RawAgent } from '../lifecycle/raw-agent.js';
import {
  binarySkip,
  CADDY,
  httpsRequest,
  NGINX,
  startCaddy,
  startNginx,
  type FrontProxy,
  type Upstreams,
} from './util.js';

after(closeAll);

const FRONTS: Array<{
  name: string;
  skip: () => false | string;
  start: (pki: TestPki, up: Upstreams) => Promise<FrontProxy>;
}> = [
  { name: 'nginx', skip: () => binarySkip(NGINX, ['-v'], 'nginx'), start: startNginx },
  { name: 'Caddy', skip: () => binarySkip(CADDY, ['version'], 'caddy'), start: startCaddy },
];

for (const front of FRONTS) {
  describe(`${front.name} in front of the control plane`, { skip: front.skip() }, () => {
    let pki: TestPki;
    let cp: ControlPlane;
    let backend: Backend;
    let fp: FrontProxy;

    before(async () => {
      pki = await makeTestPki(['localhost', '*.app.test', '127.0.0.1']);
      backend = await startBackend();
      // Every connection comes from the front proxy's address.
      cp = await startCp({ EE_MAX_CONNECTIONS_PER_ADDRESS: '4096' });
      startAgent({ control_ws: wsUrl(cp), backend_url: backend.url, app_name: 'demo' });
      await waitRoutable(cp, 'demo');
      // Registered, never attested.
      const ghost = await RawAgent.connect(wsUrl(cp), { app_name: 'ghost', repo: 'acme/ghost' });
      ghost.register();
      await ghost.next('registered');
      fp = await front.start(pki, cp);
    });

    it('serves the API and a real app over TLS, with the gate state in headers', async () => {
      const health = await httpsRequest(fp.port, 'localhost', '/health', pki);
      assert.equal(health.status, 200, health.body);
      assert.equal(JSON.parse(health.body).status, 'ok');
      const r = await httpsRequest(fp.port, 'demo.app.test', '/echo?x=1', pki, { method: 'POST', body: 'hi' });
      assert.equal(r.status, 200, `${r.body}\n${fp.output()}`);
      const echo = JSON.parse(r.body) as { url: string; body: string; headers: Record<string, string> };
      assert.equal(echo.url, '/echo?x=1');
      assert.equal(echo.body, 'hi');
      if (front.name === 'nginx') {
        assert.equal(r.headers['ee-app-agents'], '1');
        assert.equal(r.headers['ee-app-sealed'], 'false');
        assert.match(String(r.headers['ee-app-last-attestation']), /^\d{4}-\d{2}-\d{2}T/);
      } else {
        // Caddy's forward_auth hands the gate's headers to the app.
        assert.equal(echo.headers['ee-app-agents'], '1');
        assert.match(echo.headers['ee-app-last-attestation'] ?? '', /^\d{4}-\d{2}-\d{2}T/);
      }
    });

    it('refuses an unattested app and an unknown one with a 403 before any request is forwarded', async () => {
      for (const host of ['ghost.app.test', 'nope.app.test', 'not_an-app.app.test']) {
        const r = await httpsRequest(fp.port, host, '/echo', pki);
        assert.equal(r.status, 403, `${host}: ${r.status} ${r.body}\n${fp.output()}`);
        const err = (JSON.parse(r.body) as { error: { code: string; type: string } }).error;
        assert.equal(err.type, 'permission', `${host}: ${r.body}`);
      }
    });

    it('an agent dials the tunnel through it over wss:// (private CA) and serves its app', async () => {
      spawnAgent({
        control_ws: `wss://localhost:${fp.port}/v1/tunnel`,
        backend_url: backend.url,
        app_name: `tls-${front.name.toLowerCase()}`,
        extra: { NODE_EXTRA_CA_CERTS: pki.ca_file },
      });
      const app = `tls-${front.name.toLowerCase()}`;
      await waitRoutable(cp, app, 30_000);
      const r = await waitFor(
        async () => {
          const x = await httpsRequest(fp.port, `${app}.app.test`, '/echo', pki);
          return x.status === 200 ? x : null;
        },
        10_000,
        `${app} through ${front.name}`,
      );
      assert.equal(JSON.parse(r.body).url, '/echo');
    });
  });
}
