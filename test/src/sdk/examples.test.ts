// examples/private-api end to end over loopback: the example backend as its own process behind a real agent,
// a real control plane, and the example client (the SDK) as its own process, as a user would run them.
import assert from 'node:assert/strict';
import { afterEach, describe, test } from 'node:test';
import { runExample } from '../helpers/examples.js';
import { closeAll, startAgent, startCp, waitRoutable, wsUrl } from '../helpers/network.js';

afterEach(() => closeAll());

// stderr goes into `out`, as the client's error report is checked there.
const run = (script: string, env: Record<string, string>) =>
  runExample('private-api', script, env, { merge_stderr: true });

const lines = (out: string) =>
  out
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as Record<string, unknown>);

describe('examples/private-api', () => {
  test('backend behind an agent, reached with connect() from the SDK', async () => {
    const cp = await startCp();
    const backend = run('backend.mjs', { PORT: '0' });
    const port = /^listening (\d+)$/.exec(await backend.firstLine)?.[1];
    assert.ok(port, 'backend started');
    startAgent({
      control_ws: wsUrl(cp),
      backend_url: `http://127.0.0.1:${port}`,
      app_name: 'private-api',
      repo: 'acme/private-api',
    });
    await waitRoutable(cp, 'private-api');

    const client = await run('client.mjs', { EE_URL: cp.api_url }).done;
    assert.equal(client.code, 0, client.out);
    const steps = lines(client.out);
    assert.deepEqual(
      steps.map((s) => s.step),
      ['connected', 'private', 'created', 'notes'],
    );
    assert.equal(steps[0]!.verified, null, 'sandbox network: not verified by default');
    assert.equal(steps[1]!.served_by, 'private-api');
    assert.deepEqual(steps[2], { step: 'created', id: 1, text: 'hello from the SDK' });
    assert.deepEqual(steps[3]!.notes, [{ id: 1, text: 'hello from the SDK' }]);

    // A client that expects the sealed network refuses the sandbox agent before sending anything.
    const strict = await run('client.mjs', { EE_URL: cp.api_url, EE_NETWORK: 'forge-1' }).done;
    assert.equal(strict.code, 1, strict.out);
    const [refused] = lines(strict.out);
    assert.equal(refused!.step, 'refused');
    assert.ok(
      (refused!.reasons as string[]).includes('the agent is on network "sandbox-1", not "forge-1"'),
      strict.out,
    );
    const after = await (await fetch(`${cp.api_url}/v1/proxy/private-api/api/notes`)).json();
    assert.equal((after as { notes: unknown[] }).notes.length, 1, 'the refused client created nothing');
  });
});
