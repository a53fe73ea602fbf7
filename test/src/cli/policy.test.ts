// `ee policy init` writes an attestation policy from evidence (an app's agent through the control plane, a
// saved evidence file, a raw TDX quote) that the attestation package's parser accepts and that `ee attestation
// verify` then passes with; and the sample policy in examples/policy/ verifies the agent `npm start` runs.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { parsePolicy, parseTdxQuote, sandboxMeasurements } from '@easyenclave/attestation';
import {
  closeAll,
  REPO_ROOT,
  spawnCp,
  startAgent,
  startBackend,
  waitRoutable,
  type CpProcess,
} from '../helpers/network.js';
import { tmpDir } from '../helpers/tmp.js';
import { ee, failsWith, json, show } from './util.js';

const DEMO = { repo: 'easyenclave/demo', release_tag: 'v0.1.0' };
const SAMPLE = 'examples/policy/agent-attestation-allowlist.json';
const INTEL_QUOTE = join(REPO_ROOT, 'test/fixtures/tdx/tdx_quote.bin');

describe('ee policy init and the sample policy', () => {
  let cp: CpProcess;
  let env: Record<string, string>;
  let dir: string;
  before(async () => {
    cp = await spawnCp({});
    env = { EE_CONTROL_URL: cp.api_url };
    dir = tmpDir();
    const backend = await startBackend();
    startAgent({ control_ws: cp.ws_url, backend_url: backend.url, app_name: 'demo', ...DEMO });
    await waitRoutable(cp, 'demo', 10_000);
  });
  after(closeAll);

  test('the sample policy verifies the demo agent of npm start', async () => {
    const r = await ee(['attestation', 'verify', '--app', 'demo', '--policy', SAMPLE, '--json'], env);
    assert.equal(json(r).ok, true, show(r));
  });

  test('--from-app: the agent measurements, a policy that parses and verifies; no overwrite without a flag', async () => {
    const out = join(dir, 'from-app.json');
    const r = await ee(['policy', 'init', '--from-app', 'demo', '--out', out], env);
    assert.equal(r.code, 0, show(r));
    assert.match(r.stdout, /Trust on first use/);
    const policy = parsePolicy(JSON.parse(readFileSync(out, 'utf8')));
    assert.deepEqual(policy.measurements, [{ ...DEMO, ...sandboxMeasurements(DEMO.repo, DEMO.release_tag) }]);
    assert.deepEqual(policy.networks, { 'sandbox-1': { sealed: false } });
    const v = await ee(['attestation', 'verify', '--app', 'demo', '--policy', out, '--json'], env);
    assert.equal(json(v).ok, true, show(v));
    failsWith(await ee(['policy', 'init', '--from-app', 'demo', '--out', out], env), 2, /exists: --add .* --force/);

    // --add: the control plane's own release, from evidence saved by `ee attestation fetch --out`.
    const evidence = join(dir, 'cp-evidence.json');
    assert.equal((await ee(['attestation', 'fetch', '--out', evidence], env)).code, 0);
    const added = await ee(['policy', 'init', '--from-quote', evidence, '--out', out, '--add'], env);
    assert.equal(added.code, 0, show(added));
    const both = parsePolicy(JSON.parse(readFileSync(out, 'utf8')));
    assert.deepEqual(
      both.measurements.map((m) => m.repo),
      ['easyenclave/demo', 'easyenclave/control-plane'],
    );
  });

  test('--from-quote with a raw TDX quote: its MRTD and RTMRs, for the named release and network', async () => {
    const out = join(dir, 'tdx.json');
    const args = ['policy', 'init', '--from-quote', INTEL_QUOTE, '--out', out];
    failsWith(await ee(args), 2, /--repo <owner\/name> and --release-tag/);
    failsWith(await ee([...args, '--repo', 'intel/sample', '--release-tag', 'v1']), 2, /give --network/);
    const r = await ee([...args, '--repo', 'intel/sample', '--release-tag', 'v1', '--network', 'forge-1']);
    assert.equal(r.code, 0, show(r));
    const td = parseTdxQuote(readFileSync(INTEL_QUOTE)).td;
    const [m] = parsePolicy(JSON.parse(readFileSync(out, 'utf8'))).measurements;
    assert.equal(m?.mrtd, td.mrtd.toString('hex'));
    assert.equal(m?.rtmr3, td.rtmr3.toString('hex'));
    // Sandbox evidence proves nothing on a sealed network: refused.
    failsWith(
      await ee(['policy', 'init', '--from-app', 'demo', '--network', 'forge-1', '--out', join(dir, 'x.json')], env),
      2,
      /sandbox evidence proves nothing on the sealed network forge-1/,
    );
  });
});
