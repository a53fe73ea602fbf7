// What a newcomer meets in the first hour with `ee`: shell completion that knows every command, and an error
// for a stake a new provider cannot cover that names the account the stake comes from and the fix.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { after, before, describe, test } from 'node:test';
import { ADMIN_TOKEN, closeAll, startCp } from '../helpers/network.js';
import { EE_SHIM, ee, failsWith, json, show } from './util.js';

/** What bash completes after `ee <words>` (the last word being completed), with the generated script. */
function bashComplete(words: string[]): string[] {
  const script = [
    `source <("${process.execPath}" "${EE_SHIM}" completion bash)`,
    `COMP_WORDS=(ee ${words.map((w) => `'${w}'`).join(' ')})`,
    `COMP_CWORD=${words.length}`,
    '_ee_complete',
    'printf "%s\\n" "${COMPREPLY[@]}"',
  ].join('\n');
  const r = spawnSync('bash', ['-c', script], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  return r.stdout.split('\n').filter((l) => l !== '');
}

describe('ee completion', () => {
  test('bash completes commands, subcommands, options and the shells', () => {
    assert.deepEqual(bashComplete(['cre']), ['credits']);
    const apps = bashComplete(['apps', '']);
    for (const w of ['list', 'show', 'resolve', '--help']) assert.ok(apps.includes(w), `${w} in ${apps.join(' ')}`);
    assert.ok(!apps.includes('credits'), 'only the subcommands of apps');
    assert.deepEqual(bashComplete(['credits', 'transfer', '--to', 'user:x', '--idem']), ['--idempotency-key']);
    assert.deepEqual(bashComplete(['completion', '']), ['bash', 'zsh', 'fish', '--help']);
  });

  test('zsh and fish scripts name every top-level command; an unknown shell is a usage error', async () => {
    const top = ['health', 'apps', 'credits', 'nodes', 'leases', 'settle', 'completion'];
    for (const shell of ['zsh', 'fish']) {
      const r = await ee(['completion', shell]);
      assert.equal(r.code, 0, show(r));
      for (const c of top) assert.ok(r.stdout.includes(c), `${shell}: ${c}`);
    }
    assert.match((await ee(['completion', 'fish'])).stdout, /^complete -c ee -n '__fish_use_subcommand' -a '.*health/m);
    const bad = await ee(['completion', 'ksh']);
    assert.equal(bad.code, 2, show(bad));
  });
});

describe('ee nodes stake by a new provider', () => {
  let url: string;
  before(async () => {
    url = (await startCp()).api_url;
  });
  after(closeAll);

  test('not enough credits: the error names the earnings account, what it holds and how to fund it', async () => {
    const admin = { EE_CONTROL_URL: url, EE_ADMIN_TOKEN: ADMIN_TOKEN };
    const p = json(await ee(['accounts', 'create', '--kind', 'provider', '--name', 'New', '--json'], admin));
    const asProvider = { EE_CONTROL_URL: url, EE_API_KEY: p.api_key };
    const reg = await ee(
      ['nodes', 'register', '--region', 'eu-west', '--tier', 'standard', '--vcpus', '4', '--price', '$0.10', '--json'],
      asProvider,
    );
    const node = json(reg).node_id as string;
    const r = await ee(['nodes', 'stake', node, '--amount', '$9.60'], asProvider);
    failsWith(r, 1, /^ee: insufficient_funds: /);
    assert.ok(r.stderr.includes(`earnings account ${p.account_id}:earnings, which has $0.00 available`), show(r));
    assert.ok(r.stderr.includes(`ee credits purchase --account ${p.account_id} --amount '$9.60'`), show(r));
    assert.ok(!r.stderr.includes(p.api_key), 'the API key is never printed');
  });
});
