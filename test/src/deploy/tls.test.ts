// The control plane serving TLS itself (EE_TLS_CERT_FILE / EE_TLS_KEY_FILE) with a private CA made for the
// run: an `ee agent` dials wss://, the SDK and `ee` call https://, apps are served over HTTPS on both entries;
// a client that does not trust the CA is refused. And production start refuses an unset admin token on a
// bind beyond loopback unless EE_ALLOW_NO_ADMIN_TOKEN=1 (issue 15 item 1).
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import https from 'node:https';
import { after, describe, it } from 'node:test';
import {
  ADMIN_TOKEN,
  closeAll,
  cpEnv,
  EE_BIN,
  freePort,
  REPO_ROOT,
  SPAWN_READY_TIMEOUT_MS,
  spawnAgent,
  spawnEe,
  startBackend,
  waitFor,
} from '../helpers/network.js';
import { makeTestPki } from '../helpers/tls.js';
import { httpsRequest } from './util.js';
import { connectRaw, untilClosed } from '../edge/util.js';

after(closeAll);

describe('the control plane over TLS', () => {
  it('agents over wss://, the SDK and ee over https://, apps over HTTPS on both entries', async () => {
    const pki = await makeTestPki(['localhost', '*.app.test', '127.0.0.1']);
    const api_port = await freePort();
    const proxy_port = await freePort();
    const cp = spawnEe(
      ['control-plane'],
      cpEnv({
        EE_CONTROL_PORT: String(api_port),
        EE_PROXY_PORT: String(proxy_port),
        EE_TLS_CERT_FILE: pki.cert_file,
        EE_TLS_KEY_FILE: pki.key_file,
        EE_HEADERS_TIMEOUT_MS: '1000',
        EE_LOG_LEVEL: 'warn',
      }),
    );
    await waitFor(
      async () => (await httpsRequest(api_port, 'localhost', '/health', pki)).status === 200,
      SPAWN_READY_TIMEOUT_MS,
      `control plane over TLS\n${cp.output()}`,
    );
    assert.match(cp.output(), new RegExp(`api https://127\\.0\\.0\\.1:${api_port}`));

    const backend = await startBackend();
    spawnAgent({
      control_ws: `wss://localhost:${api_port}/v1/tunnel`,
      backend_url: backend.url,
      extra: { NODE_EXTRA_CA_CERTS: pki.ca_file },
    });
    await waitFor(
      async () => (await httpsRequest(api_port, 'localhost', '/v1/resolve/demo', pki)).status === 200,
      SPAWN_READY_TIMEOUT_MS,
      'the agent to attest over wss://',
    );

    const viaPath = await httpsRequest(api_port, 'localhost', '/v1/proxy/demo/echo', pki);
    assert.equal(viaPath.status, 200, viaPath.body);
    assert.equal(JSON.parse(viaPath.body).headers['x-forwarded-proto'], 'https');
    const viaHost = await httpsRequest(proxy_port, 'demo.app.test', '/echo', pki);
    assert.equal(viaHost.status, 200, viaHost.body);

    // The SDK, in a process of its own that trusts the CA the usual Node way.
    const sdk = spawnSync(
      process.execPath,
      [
        '--input-type=module',
        '-e',
        `import { EasyEnclave } from '@easyenclave/sdk';
         const ee = new EasyEnclave({ url: 'https://localhost:${api_port}' });
         const r = await ee.resolve('demo');
         process.stdout.write(JSON.stringify({ app: r.app_name, agents: r.agents }));`,
      ],
      { cwd: REPO_ROOT, env: { PATH: process.env.PATH, NODE_EXTRA_CA_CERTS: pki.ca_file }, encoding: 'utf8' },
    );
    assert.equal(sdk.status, 0, sdk.stderr);
    assert.deepEqual(JSON.parse(sdk.stdout), { app: 'demo', agents: 1 });

    const ee = spawnSync(
      process.execPath,
      [EE_BIN, 'apps', 'list', '--url', `https://localhost:${api_port}`, '--admin-token', ADMIN_TOKEN],
      { env: { PATH: process.env.PATH, NODE_EXTRA_CA_CERTS: pki.ca_file }, encoding: 'utf8' },
    );
    assert.equal(ee.status, 0, ee.stderr);
    assert.match(ee.stdout, /demo/);

    // Without the CA the certificate is refused: this really is TLS with the private CA.
    await assert.rejects(
      new Promise((resolve, reject) =>
        https
          .get({ host: '127.0.0.1', port: api_port, path: '/health', servername: 'localhost' }, resolve)
          .on('error', reject),
      ),
      /self-signed|unable to verify|certificate/i,
    );

    // A connection that never starts its TLS handshake is closed like one that never sends a header block.
    const idle = await connectRaw(api_port);
    await untilClosed(idle, 15_000, 'an idle connection to the TLS port');
  });

  it('one of EE_TLS_CERT_FILE and EE_TLS_KEY_FILE alone is a configuration error', async () => {
    const pki = await makeTestPki(['localhost']);
    const r = spawnSync(process.execPath, [EE_BIN, 'control-plane'], {
      env: { PATH: process.env.PATH, ...cpEnv({ EE_TLS_CERT_FILE: pki.cert_file }) },
      encoding: 'utf8',
      timeout: 60_000,
    });
    assert.equal(r.status, 2, r.stderr);
    assert.match(r.stderr, /EE_TLS_CERT_FILE and EE_TLS_KEY_FILE must be set together/);
  });
});

describe('production start and the admin token', () => {
  const start = (extra: Record<string, string | undefined>) =>
    spawnEe(['control-plane'], cpEnv({ EE_ADMIN_TOKEN: undefined, EE_LOG_LEVEL: 'warn', ...extra }));

  it('refuses an unset admin token on a bind beyond loopback', async () => {
    const cp = start({ EE_CONTROL_BIND: '0.0.0.0' });
    assert.equal(await cp.exited, 2, cp.output());
    assert.match(cp.output(), /EE_ADMIN_TOKEN is not set and the API listens on 0\.0\.0\.0/);
    assert.match(cp.output(), /EE_ALLOW_NO_ADMIN_TOKEN=1/);
  });

  it('starts when the operator says so, on loopback, or with a token', async () => {
    for (const extra of [
      { EE_CONTROL_BIND: '0.0.0.0', EE_ALLOW_NO_ADMIN_TOKEN: '1' },
      { EE_CONTROL_BIND: '127.0.0.1' },
      { EE_CONTROL_BIND: '0.0.0.0', EE_ADMIN_TOKEN: ADMIN_TOKEN },
    ]) {
      const port = await freePort();
      const cp = start({ ...extra, EE_CONTROL_PORT: String(port) });
      await waitFor(
        async () => (await fetch(`http://127.0.0.1:${port}/health`)).ok,
        SPAWN_READY_TIMEOUT_MS,
        `${JSON.stringify(extra)}\n${cp.output()}`,
      );
      cp.kill('SIGKILL');
      await cp.exited;
    }
  });
});
