// Start-up configuration of the real `ee` processes: an invalid value stops start-up quickly with exit code 2
// and a message naming the variable (never echoing a secret); `npx ee --help` works.

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { after, describe, test } from 'node:test';
import { agentEnv, closeAll, cpEnv, REPO_ROOT, spawnEe, type CpEnv } from '../helpers/network.js';
import { within } from './util.js';

// The tests run concurrently (each is mostly a process start-up), so cleanup waits for the end of the file.
after(() => closeAll());

async function expectConfigExit(args: string[], env: CpEnv, variable: string, secret?: string): Promise<void> {
  const started = Date.now();
  const h = spawnEe(args, env);
  const code = await within(h.exited, 15_000, `ee ${args.join(' ')} with a bad ${variable} to exit (it kept running)`);
  const took = Date.now() - started;
  assert.equal(code, 2, `ee ${args.join(' ')} with a bad ${variable}: exit code; output:\n${h.output()}`);
  assert.ok(h.output().includes(variable), `the message names ${variable}:\n${h.output()}`);
  // Quickly: about a bare node start-up (seconds on a loaded 2-core machine), no connecting or retrying.
  assert.ok(took < 10_000, `exit took ${took} ms`);
  if (secret !== undefined)
    assert.ok(!h.output().includes(secret), `the secret value must not be echoed:\n${h.output()}`);
}

describe('ee configuration errors', { concurrency: true }, () => {
  test('control plane: EE_CONTROL_PORT=abc, EE_ATTEST_DEADLINE_SEC=0, EE_DATABASE_URL=mysql://… exit 2 naming the variable', async () => {
    await Promise.all([
      expectConfigExit(['control-plane'], cpEnv({ EE_CONTROL_PORT: 'abc' }), 'EE_CONTROL_PORT'),
      expectConfigExit(['control-plane'], cpEnv({ EE_ATTEST_DEADLINE_SEC: '0' }), 'EE_ATTEST_DEADLINE_SEC'),
      expectConfigExit(
        ['control-plane'],
        cpEnv({ EE_DATABASE_URL: 'mysql://ee:hunter2-secret@db/x' }),
        'EE_DATABASE_URL',
        'hunter2-secret',
      ),
    ]);
  });

  test('agent: a missing EE_APP_NAME exits 2 naming the variable', async () => {
    const env = agentEnv({ control_ws: 'ws://127.0.0.1:9/v1/tunnel', backend_url: 'http://127.0.0.1:9' });
    delete env.EE_APP_NAME;
    await expectConfigExit(['agent'], env, 'EE_APP_NAME');
  });

  test('npx ee --help lists the commands and exits 0', async () => {
    const child = spawn('npx', ['--no-install', 'ee', '--help'], {
      cwd: REPO_ROOT,
      env: { PATH: process.env.PATH, HOME: process.env.HOME },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (out += d.toString()));
    const code = await within(
      new Promise<number | null>((r) => child.on('exit', (c) => r(c))),
      20_000,
      'npx ee --help',
    ).finally(() => child.kill('SIGKILL'));
    assert.equal(code, 0, out);
    assert.match(out, /Usage: ee/);
    assert.match(out, /control-plane/);
    assert.match(out, /agent/);
  });
});
