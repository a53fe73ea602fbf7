// Attestation configuration of the control plane: Intel's root by default; a non-Intel root only with the
// explicit override EE_ATTEST_ALLOW_NON_INTEL_ROOT=1, logged loudly at every start; collateral from one source;
// a bad policy or collateral file refuses start-up with an error naming the variable.
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, test } from 'node:test';
import { INTEL_SGX_ROOT_CA_DER } from '@easyenclave/attestation';
import { ConfigError, loadControlPlaneConfig } from '@easyenclave/control-plane/config';
import { closeAll, cpEnv, spawnCp, spawnEe, startCp, type CpEnv } from '../helpers/network.js';
import { tmpDir } from '../helpers/tmp.js';
import { memoryLogger, trustFiles } from './fixture.js';

afterEach(() => closeAll());

async function refusedAtStart(env: CpEnv, variable: string, message?: RegExp): Promise<ConfigError> {
  try {
    await startCp(env);
  } catch (err) {
    assert.ok(err instanceof ConfigError, `expected a ConfigError, got ${String(err)}`);
    assert.equal(err.variable, variable);
    assert.ok(err.message.includes(variable), err.message);
    if (message) assert.match(err.message, message);
    return err;
  }
  assert.fail(`${JSON.stringify(env)} started`);
}

describe('attestation configuration', () => {
  test('new variables are validated, each error naming its variable', () => {
    const cfg = loadControlPlaneConfig({
      EE_COLLATERAL_FILE: '/c.json',
      EE_ATTEST_ROOT_CA_FILE: '/r.pem',
      EE_ATTEST_ALLOW_NON_INTEL_ROOT: '1',
      EE_TSM_PATH: '/x/tsm',
    });
    assert.equal(cfg.collateral_file, '/c.json');
    assert.equal(cfg.attest_root_ca_file, '/r.pem');
    assert.equal(cfg.attest_allow_non_intel_root, true);
    assert.equal(cfg.tsm_path, '/x/tsm');
    const refused = (env: Record<string, string>, variable: string) =>
      assert.throws(
        () => loadControlPlaneConfig(env),
        (e: unknown) =>
          e instanceof ConfigError && e.variable === variable && e.message.startsWith(`${variable} must be`),
      );
    for (const bad of ['yes', 'true', '2', ' 1'])
      refused({ EE_ATTEST_ALLOW_NON_INTEL_ROOT: bad }, 'EE_ATTEST_ALLOW_NON_INTEL_ROOT');
    refused({ EE_ATTEST_ALLOW_NON_INTEL_ROOT: '1' }, 'EE_ATTEST_ALLOW_NON_INTEL_ROOT'); // the override needs a root to allow
    refused({ EE_COLLATERAL_FILE: '/c.json', EE_PCCS_URL: 'https://pccs.example.com' }, 'EE_COLLATERAL_FILE');
    refused({ EE_TSM_PATH: 'relative/tsm' }, 'EE_TSM_PATH');
  });

  test('production refuses a non-Intel root CA without EE_ATTEST_ALLOW_NON_INTEL_ROOT=1', async () => {
    const t = await trustFiles();
    const env = { ...t.env, EE_ATTEST_ALLOW_NON_INTEL_ROOT: '' };
    const err = await refusedAtStart(env, 'EE_ATTEST_ALLOW_NON_INTEL_ROOT', /not Intel's SGX Root CA/);
    assert.match(err.message, /EE_ATTEST_ROOT_CA_FILE/);
    await refusedAtStart(
      { ...env, EE_ATTEST_ALLOW_NON_INTEL_ROOT: '0', EE_ATTEST_ROOT_CA_FILE: t.root_der },
      'EE_ATTEST_ALLOW_NON_INTEL_ROOT',
    );

    // `ee control-plane`: exit 2, the message names the variable.
    const h = spawnEe(['control-plane'], cpEnv(env));
    assert.equal(await h.exited, 2, h.output());
    assert.match(h.output(), /invalid configuration: EE_ATTEST_ALLOW_NON_INTEL_ROOT must be 1/);
  });

  test("Intel's own root given as a file needs no override; bad files refuse start-up naming their variable", async () => {
    const dir = tmpDir();
    const intel = join(dir, 'intel-root.der');
    writeFileSync(intel, INTEL_SGX_ROOT_CA_DER);
    const logs = memoryLogger('warn');
    await startCp({ EE_ATTEST_ROOT_CA_FILE: intel }, { logger: logs.logger });
    assert.doesNotMatch(logs.text(), /NOT Intel/);

    const t = await trustFiles();
    const garbage = join(dir, 'garbage');
    writeFileSync(garbage, 'not a certificate');
    await refusedAtStart({ ...t.env, EE_ATTEST_ROOT_CA_FILE: garbage }, 'EE_ATTEST_ROOT_CA_FILE');
    await refusedAtStart({ ...t.env, EE_ATTEST_ROOT_CA_FILE: join(dir, 'missing.pem') }, 'EE_ATTEST_ROOT_CA_FILE');
    await refusedAtStart({ ...t.env, EE_COLLATERAL_FILE: join(dir, 'missing.json') }, 'EE_COLLATERAL_FILE');
    await refusedAtStart({ ...t.env, EE_COLLATERAL_FILE: garbage }, 'EE_COLLATERAL_FILE');
    writeFileSync(t.policy_file, JSON.stringify({ version: 'x' }));
    await refusedAtStart(t.env, 'EE_ALLOWLIST_ASSET', /invalid attestation policy/);
  });

  test('the override is logged loudly (pino warn) at every start', async () => {
    const t = await trustFiles();
    for (let i = 0; i < 2; i++) {
      const logs = memoryLogger('warn');
      const cp = await startCp(t.env, { logger: logs.logger });
      const warns = logs.lines().filter((l) => l.level === 40 && /ATTESTATION OVERRIDE/.test(String(l.msg)));
      assert.equal(warns.length, 1, logs.text());
      assert.equal(warns[0]!.root_ca_file, t.root_pem);
      await cp.shutdown(0);
    }
    const p = await spawnCp(t.env);
    assert.match(p.output(), /ATTESTATION OVERRIDE/);
  });

  test('no policy file: a warning at start-up, and the control plane runs', async () => {
    const logs = memoryLogger('warn');
    await startCp({ EE_ALLOWLIST_ASSET: join(tmpDir(), 'absent.json') }, { logger: logs.logger });
    assert.ok(
      logs.lines().some((l) => l.level === 40 && /no allowlist policy loaded/.test(String(l.msg))),
      logs.text(),
    );
  });
});
