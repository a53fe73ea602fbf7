// `npm start` (scripts/start.mjs) on ports of its own, its state in a temporary directory: it configures every
// token the local network needs (launcher and uptime reports are not `endpoint_disabled`), prints `ee` lines
// with the EE_CONTROL_URL of the ports it chose, and writes .easyenclave/config.json so that `ee` run there
// without --url or EE_CONTROL_URL talks to this network, not to whatever listens on the default port.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { closeAll, freePort, onCleanup, REPO_ROOT, waitFor } from '../helpers/network.js';
import { tmpDir } from '../helpers/tmp.js';
import { ee, failsWith, json, show } from './util.js';

/** Build (when needed) plus three processes coming up on a loaded machine. */
const START_TIMEOUT_MS = 120_000;

describe('npm start: tokens, ee lines and the local ee configuration', () => {
  let home: string;
  let state: string;
  let port: number;
  let stdout = '';

  before(async () => {
    home = tmpDir('ee-start-');
    state = join(home, '.easyenclave');
    port = await freePort();
    const child = spawn(process.execPath, [join(REPO_ROOT, 'scripts/start.mjs')], {
      cwd: REPO_ROOT,
      env: {
        PATH: process.env.PATH,
        HOME: process.env.HOME,
        INIT_CWD: home,
        EE_STATE_DIR: state,
        EE_CONTROL_PORT: String(port),
        EE_PROXY_PORT: String(await freePort()),
        EE_DEMO_BACKEND_PORT: String(await freePort()),
        EE_DRAIN_TIMEOUT_SEC: '1',
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stdout += d.toString()));
    const exited = new Promise((resolve) => child.on('exit', resolve));
    onCleanup(async () => {
      child.kill('SIGTERM');
      await exited;
    });
    await waitFor(() => stdout.includes('local network is up'), START_TIMEOUT_MS, `npm start is up:\n${stdout}`);
  });
  after(closeAll);

  test('the printed ee lines carry the chosen port; the tokens are kept with mode 600', () => {
    assert.match(stdout, new RegExp(`^  export EE_CONTROL_URL=http://127\\.0\\.0\\.1:${port}$`, 'm'));
    assert.match(stdout, /^ {2}export EE_ADMIN_TOKEN=\$\(cat \.easyenclave\/admin-token\)$/m);
    assert.match(stdout, /EE_LAUNCHER_TOKEN=\$\(cat \.easyenclave\/launcher-token\) npx ee abuse report/);
    assert.match(stdout, /EE_UPTIME_TOKEN=\$\(cat \.easyenclave\/uptime-token\) npx ee usage report/);
    for (const file of ['admin-token', 'launcher-token', 'uptime-token'])
      assert.equal(statSync(join(state, file)).mode & 0o777, 0o600, file);
    const config = JSON.parse(readFileSync(join(state, 'config.json'), 'utf8'));
    assert.equal(config.control_url, `http://127.0.0.1:${port}`);
    assert.ok(!JSON.stringify(config).includes(readFileSync(join(state, 'admin-token'), 'utf8').trim()));
  });

  test('ee run there without --url or EE_CONTROL_URL talks to this network (also from a subdirectory)', async () => {
    const h = json(await ee(['health', '--json'], {}, home));
    assert.equal(h.status, 'ok');
    const admin = { EE_ADMIN_TOKEN: readFileSync(join(state, 'admin-token'), 'utf8').trim() };
    const apps = json(await ee(['apps', 'list', '--json'], admin, state));
    // The demo app, and the node launcher's app where podman let npm start run one.
    const names = apps.apps.map((a: { app_name: string }) => a.app_name);
    assert.deepEqual(
      names.filter((n: string) => n !== 'ee-launcher'),
      ['demo'],
    );
    // Flags and the environment still win over the file.
    const other = await freePort();
    failsWith(
      await ee(['health'], { EE_CONTROL_URL: `http://127.0.0.1:${other}` }, home),
      1,
      new RegExp(`127\\.0\\.0\\.1:${other}: connection refused`),
    );
  });

  test('the launcher and uptime tokens are configured: reports reach the market (not endpoint_disabled)', async () => {
    const token = (file: string) => readFileSync(join(state, file), 'utf8').trim();
    const abuse = await ee(
      ['abuse', 'report', '--node', 'node_0000000000000000', '--reason', 'test'],
      { EE_LAUNCHER_TOKEN: token('launcher-token') },
      home,
    );
    assert.equal(abuse.code, 1, show(abuse));
    assert.doesNotMatch(abuse.stderr, /endpoint_disabled|unauthorized/, show(abuse));
    assert.match(abuse.stderr, /unknown_node/, show(abuse));
    const usage = await ee(
      ['usage', 'report', '--node', 'node_0000000000000000', '--period', '0', '--missed-checks', '0'],
      { EE_UPTIME_TOKEN: token('uptime-token') },
      home,
    );
    assert.equal(usage.code, 1, show(usage));
    assert.doesNotMatch(usage.stderr, /endpoint_disabled|unauthorized/, show(usage));
  });
});
