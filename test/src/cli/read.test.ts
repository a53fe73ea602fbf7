// The read commands (health, apps list | show | resolve) against a real `ee control-plane` on loopback with
// an agent serving app "demo": --json parses and carries the server's fields, tables show them, API errors
// exit 1 with their code, an unreachable or hanging URL exits 1 naming it, and the admin token given by flag
// or environment never appears in any output, error paths included.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import {
  closeAll,
  freePort,
  spawnCp,
  startAgent,
  startBackend,
  waitRoutable,
  type CpProcess,
} from '../helpers/network.js';
import { ee, failsWith, json, show, type Run } from './util.js';

// Distinctive and lowercase, so the server itself echoes it when it is (wrongly) used as an app name.
const SECRET = `ee-cli-secret-${randomBytes(8).toString('hex')}`;
const WRONG = `wrong-token-${randomBytes(8).toString('hex')}`;
const outputs: Run[] = [];

let cp: CpProcess;
let env: Record<string, string>;
/** Runs `ee` with the URL and the admin token in the environment, and keeps the output for the secret check. */
async function run(args: string[], extra: Record<string, string | undefined> = {}): Promise<Run> {
  const r = await ee(args, { ...env, ...extra });
  outputs.push(r);
  return r;
}

before(async () => {
  cp = await spawnCp({ EE_ADMIN_TOKEN: SECRET });
  env = { EE_CONTROL_URL: cp.api_url, EE_ADMIN_TOKEN: SECRET };
  const backend = await startBackend();
  startAgent({
    control_ws: cp.ws_url,
    backend_url: backend.url,
    app_name: 'demo',
    repo: 'acme/demo',
    release_tag: 'v1.2.3',
    agent_id: 'agent-cli-test-1',
  });
  await waitRoutable(cp, 'demo', 10_000);
});
after(() => closeAll());

describe('ee health', () => {
  test('--json and the table', async () => {
    const j = json(await run(['health', '--json']));
    assert.equal(j.status, 'ok');
    assert.equal(j.agents_connected, 1);
    assert.equal(j.agents_routable, 1);
    assert.equal(j.apps_known, 1);
    assert.equal(typeof j.uptime_s, 'number');
    const t = await run(['health']);
    assert.equal(t.code, 0, show(t));
    assert.match(t.stdout, /^Status\s+ok$/m);
    assert.match(t.stdout, /^Agents connected\s+1$/m);
    assert.match(t.stdout, /^Agents routable\s+1$/m);
  });

  test('--url wins over EE_CONTROL_URL', async () => {
    const port = await freePort();
    const r = await run(['health', '--json', '--url', cp.api_url], { EE_CONTROL_URL: `http://127.0.0.1:${port}` });
    assert.equal(json(r).status, 'ok');
  });
});

describe('ee apps', () => {
  test('list --json: the app with its status and agents; the table has a row for it', async () => {
    const j = json(await run(['apps', 'list', '--json']));
    assert.equal(j.apps.length, 1);
    const a = j.apps[0];
    assert.equal(a.app_name, 'demo');
    assert.equal(a.repo, 'acme/demo');
    assert.equal(a.status, 'active');
    assert.equal(a.network, 'sandbox-1');
    assert.equal(a.agents_routable, 1);
    const t = await run(['apps', 'list']);
    assert.equal(t.code, 0, show(t));
    assert.match(t.stdout, /^APP\s+STATUS\s+NETWORK\s+AGENTS\s+REPO/m);
    assert.match(t.stdout, /^demo\s+active\s+sandbox-1\s+1\/1\s+acme\/demo\s/m);
  });

  test('show --json: agents, registrations and recent events; the table has the agent', async () => {
    const j = json(await run(['apps', 'show', 'demo', '--json']));
    assert.equal(j.app_name, 'demo');
    assert.equal(j.status, 'active');
    assert.equal(j.agents.length, 1);
    assert.equal(j.agents[0].agent_id, 'agent-cli-test-1');
    assert.equal(j.agents[0].status, 'routable');
    assert.equal(j.agents[0].attested, true);
    assert.equal(j.registrations[0].release_tag, 'v1.2.3');
    assert.ok(j.recent_attestations.length >= 1);
    const t = await run(['apps', 'show', 'demo']);
    assert.equal(t.code, 0, show(t));
    assert.match(t.stdout, /^Status\s+active$/m);
    assert.match(t.stdout, /^Agents\nAGENT\s+RELEASE\s+STATUS/m);
    assert.match(t.stdout, /^agent-cli-test-1\s+v1\.2\.3\s+routable\s+yes\s+0\s+pass\s+sandbox\s/m);
    assert.match(t.stdout, /^Registrations\nRELEASE\s+STATUS[^\n]*\nv1\.2\.3\s+active\s/m);
  });

  test('resolve --json (public: works without any token)', async () => {
    const r = await run(['apps', 'resolve', 'demo', '--json'], { EE_ADMIN_TOKEN: undefined });
    const j = json(r);
    assert.equal(j.app_name, 'demo');
    assert.equal(j.status, 'active');
    assert.equal(j.endpoint, `${cp.api_url}/v1/proxy/demo`);
    assert.equal(j.agents, 1);
    const t = await run(['apps', 'resolve', 'demo']);
    assert.match(t.stdout, /^Endpoint\s+http:\/\/127\.0\.0\.1:\d+\/v1\/proxy\/demo$/m);
  });

  test('API errors exit 1 with the error code: unknown app, missing and wrong admin token', async () => {
    failsWith(await run(['apps', 'show', 'nope']), 1, /^ee: unknown_app: no app named "nope"\n$/);
    failsWith(await run(['apps', 'resolve', 'nope']), 1, /^ee: unknown_app: /);
    failsWith(
      await run(['apps', 'list'], { EE_ADMIN_TOKEN: undefined }),
      1,
      /^ee: unauthorized: missing Authorization.*\(set EE_ADMIN_TOKEN or pass --admin-token\)\n$/,
    );
    failsWith(await run(['apps', 'list', '--admin-token', WRONG]), 1, /^ee: unauthorized: invalid admin token/);
    // The flag wins over the environment: the right token by flag works with a wrong one in the environment.
    assert.equal(
      json(await run(['apps', 'list', '--json', '--admin-token', SECRET], { EE_ADMIN_TOKEN: WRONG })).apps.length,
      1,
    );
  });

  test('an app that is known but offline: resolve exits 1 with app_offline', async () => {
    const backend = await startBackend();
    const agent = startAgent({
      control_ws: cp.ws_url,
      backend_url: backend.url,
      app_name: 'gone',
      agent_id: 'agent-cli-gone-1',
    });
    await waitRoutable(cp, 'gone', 10_000);
    await agent.stop(0);
    let r: Run;
    const deadline = Date.now() + 10_000;
    do r = await run(['apps', 'resolve', 'gone']);
    while (r.code === 0 && Date.now() < deadline);
    failsWith(r, 1, /^ee: app_(offline|draining): app "gone"/);
  });
});

describe('connection failures exit 1 and name the URL', () => {
  test('connection refused', async () => {
    const port = await freePort();
    failsWith(
      await run(['health'], { EE_CONTROL_URL: `http://127.0.0.1:${port}` }),
      1,
      new RegExp(
        `^ee: unreachable: cannot reach the control plane at http://127\\.0\\.0\\.1:${port}: connection refused`,
      ),
    );
    failsWith(
      await run(['apps', 'list', '--json', '--url', `http://127.0.0.1:${port}/`]),
      1,
      new RegExp(`at http://127\\.0\\.0\\.1:${port}: connection refused`),
    );
  });

  test('a server that never answers: timeout after --timeout-ms', async () => {
    const backend = await startBackend();
    const r = await run(['health', '--timeout-ms', '300', '--url', `${backend.url}/hang`]);
    failsWith(r, 1, new RegExp(`^ee: timeout: no answer from the control plane at ${backend.url}/hang within 300 ms`));
  });

  test('an answer of the wrong shape is refused, not printed', async () => {
    const backend = await startBackend(); // /echo answers JSON, but not /health's
    failsWith(
      await run(['health', '--json', '--url', `${backend.url}/echo`]),
      1,
      /^ee: bad_response: unexpected answer from GET \/health: status: /,
    );
  });
});

describe('secrets', () => {
  test('the admin token, by environment or flag, is never printed (EE_DEBUG=1 included)', async () => {
    const port = await freePort();
    const paths: Array<[string[], Record<string, string | undefined>]> = [
      [['apps', 'list', '--json'], { EE_DEBUG: '1' }],
      [['apps', 'list', '--admin-token', SECRET], { EE_ADMIN_TOKEN: undefined, EE_DEBUG: '1' }],
      [['apps', 'list', `--admin-token=${SECRET}`, '--url', `http://127.0.0.1:${port}`], { EE_DEBUG: '1' }],
      [['apps', 'show', 'missing-app', '--admin-token', SECRET], {}],
      [['apps', 'list', '--admin-token', SECRET, '--bogus'], {}],
      [['apps', 'list', '--admin-token', SECRET, '--timeout-ms', 'x'], {}],
      [['health', '--api-key', SECRET, '--url', 'not a url'], {}],
      [['attestation', 'fetch', '--admin-token', SECRET, '--nonce', 'zz'], {}],
    ];
    for (const [args, extra] of paths) await run(args, extra);
    // The server echoes an app name it does not know: a token pasted as one must still not show.
    const echoed = await run(['apps', 'show', SECRET]);
    failsWith(echoed, 1, /^ee: unknown_app: no app named "\[redacted\]"/);
    const wrong = await run(['apps', 'show', WRONG, '--admin-token', WRONG]);
    assert.ok(!wrong.stderr.includes(WRONG), show(wrong));
    assert.ok(outputs.length > 20);
    for (const r of outputs) {
      assert.ok(!r.stdout.includes(SECRET) && !r.stderr.includes(SECRET), `the admin token was printed:\n${show(r)}`);
    }
  });
});
