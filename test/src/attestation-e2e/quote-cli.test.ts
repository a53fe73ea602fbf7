// `ee quote verify` as a subprocess: the real Intel-signed fixture (binary, hex and base64 copies) inside and
// outside its collateral window, --json, a policy verdict, the testing-only --root-ca override on a generated
// quote, and usage errors (exit 2).
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import {
  computeReportData,
  generateKeyset,
  newNonce,
  publicKeyset,
  REPORT_DATA_DOMAINS,
} from '@easyenclave/attestation';
import { EE_BIN, REPO_ROOT } from '../helpers/network.js';
import { tmpDir } from '../helpers/tmp.js';
import { buildQuote, GOOD, OTHER, policyJson, trustFiles } from './fixture.js';

const QUOTE = 'test/fixtures/tdx/tdx_quote.bin';
const COLLATERAL = 'test/fixtures/tdx/tdx_quote_collateral.json';
const AT = '1750329147';
const MRTD = '91eb2b44d141d4ece09f0c75c2c53d247a3c68edd7fafe8a3520c942a604a407de03ae6dc5f87f27428b2538873118b7';
const RTMR0 = '44c0197b39157fdd7a4dcc44767f9d6b0bb3977c7a8e347b8492f827fe9d9e5c48aca29b220b80b6a540cf994b9bc9c0';
const REPORT_DATA =
  '9a9d48e7f6799642d3d1b34e1e5e1742d4bb02dd6ddd551862c1211d35c304f9eca3efdbb481601c163cf52493d6e44aed55d51ec39b7e518fadb92c2b523f20';

function ee(...args: string[]): { code: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [EE_BIN, 'quote', 'verify', ...args], {
    cwd: REPO_ROOT,
    encoding: 'utf8',
    timeout: 30_000,
  });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

describe('ee quote verify', () => {
  test('the real fixture inside its window: exit 0, UpToDate, the README fields in the table', () => {
    const r = ee(QUOTE, '--collateral', COLLATERAL, '--at', AT);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.match(r.stdout, /^Result\s+OK$/m);
    assert.match(r.stdout, /^TCB status\s+UpToDate$/m);
    assert.match(r.stdout, /^Advisories\s+none$/m);
    assert.match(r.stdout, new RegExp(`^MRTD\\s+${MRTD}$`, 'm'));
    assert.match(r.stdout, new RegExp(`^RTMR0\\s+${RTMR0}$`, 'm'));
    assert.match(r.stdout, /^RTMR3\s+0{96}$/m);
    assert.match(r.stdout, new RegExp(`^REPORTDATA\\s+${REPORT_DATA}$`, 'm'));
    assert.match(r.stdout, /^FMSPC\s+B0C06F000000/m);
    assert.match(r.stdout, /^Policy\s+\(none given\)$/m);
    assert.equal(r.stderr, '');
  });

  test('--json is one parseable object with the same fields', () => {
    const r = ee(QUOTE, '--collateral', COLLATERAL, '--at', AT, '--json');
    assert.equal(r.code, 0, r.stderr);
    const j = JSON.parse(r.stdout);
    assert.equal(j.ok, true);
    assert.deepEqual(j.reasons, []);
    assert.equal(j.tcb_status, 'UpToDate');
    assert.deepEqual(j.advisory_ids, []);
    assert.equal(j.mrtd, MRTD);
    assert.equal(j.rtmr0, RTMR0);
    assert.equal(j.report_data, REPORT_DATA);
    assert.equal(j.fmspc, 'B0C06F000000');
    assert.equal(j.format, 'binary');
    assert.equal(j.at, Number(AT));
    assert.equal(j.root_ca, 'intel');
    assert.equal(j.policy, null);
  });

  test('hex (0x, line breaks) and base64 (line breaks) copies of the quote verify the same', () => {
    const bin = readFileSync(join(REPO_ROOT, QUOTE));
    const dir = tmpDir();
    const wrap = (s: string) => s.replace(/(.{76})/g, '$1\n');
    const copies = {
      hex: `0x${wrap(bin.toString('hex'))}\n`,
      'hex-upper': `  ${bin.toString('hex').toUpperCase()}  \r\n`,
      base64: wrap(bin.toString('base64')),
    };
    for (const [name, text] of Object.entries(copies)) {
      const file = join(dir, `quote.${name}`);
      writeFileSync(file, text);
      const r = ee(file, '--collateral', COLLATERAL, '--at', AT, '--json');
      assert.equal(r.code, 0, `${name}: ${r.stdout}${r.stderr}`);
      const j = JSON.parse(r.stdout);
      assert.equal(j.format, name.startsWith('hex') ? 'hex' : 'base64', name);
      assert.equal(j.mrtd, MRTD, name);
      assert.equal(j.tcb_status, 'UpToDate', name);
    }
  });

  test('after the collateral window (--at 1752919235): exit 1 with the reason', () => {
    const r = ee(QUOTE, '--collateral', COLLATERAL, '--at', '1752919235');
    assert.equal(r.code, 1, r.stdout + r.stderr);
    assert.match(r.stdout, /^Result\s+FAILED$/m);
    assert.match(r.stdout, /^Reasons:\n {2}- PCK CRL has expired/m);
    const j = JSON.parse(ee(QUOTE, '--collateral', COLLATERAL, '--at', '1752919235', '--json').stdout);
    assert.equal(j.ok, false);
    assert.ok(j.reasons.length > 0);
  });

  test('with a policy: allowed when the MRTD is listed, refused (exit 1) when it is not', () => {
    const dir = tmpDir();
    const allow = join(dir, 'allow.json');
    const deny = join(dir, 'deny.json');
    const release = { repo: 'intel/sample', release_tag: 'v1', mrtd: MRTD, rtmr0: RTMR0 };
    const base = {
      tcb: { allowed_statuses: ['UpToDate'], out_of_date_grace_days: 0 },
      advisory_deny: [],
      networks: { 'forge-1': { sealed: true } },
    };
    writeFileSync(allow, JSON.stringify({ version: 'cli-allow', measurements: [release], ...base }));
    writeFileSync(
      deny,
      JSON.stringify({ version: 'cli-deny', measurements: [{ ...release, mrtd: 'ab'.repeat(48) }], ...base }),
    );
    const ok = ee(QUOTE, '--collateral', COLLATERAL, '--at', AT, '--policy', allow);
    assert.equal(ok.code, 0, ok.stdout + ok.stderr);
    assert.match(ok.stdout, /^Policy\s+cli-allow: ALLOWED \(intel\/sample@v1\)$/m);
    const named = JSON.parse(
      ee(
        QUOTE,
        '--collateral',
        COLLATERAL,
        '--at',
        AT,
        '--policy',
        allow,
        '--repo',
        'intel/sample',
        '--release-tag',
        'v2',
        '--json',
      ).stdout,
    );
    assert.equal(named.ok, false);
    assert.ok(named.reasons.includes('release not in the allowlist: intel/sample@v2'), JSON.stringify(named.reasons));
    const no = ee(QUOTE, '--collateral', COLLATERAL, '--at', AT, '--policy', deny, '--json');
    assert.equal(no.code, 1, no.stdout + no.stderr);
    const j = JSON.parse(no.stdout);
    assert.equal(j.quote_verified, true);
    assert.equal(j.policy.allowed, false);
    assert.equal(j.policy.version, 'cli-deny');
    assert.match(j.reasons.join('\n'), /MRTD 91eb2b44.* is not in the allowlist of policy cli-deny/);
  });

  test('--root-ca (testing only): a generated quote verifies with a loud warning; without it the chain fails', async () => {
    const t = await trustFiles();
    const dir = tmpDir();
    const quoteFile = join(dir, 'gen.quote');
    const report_data = computeReportData(REPORT_DATA_DOMAINS.tunnel, newNonce(), publicKeyset(generateKeyset()));
    writeFileSync(quoteFile, t.rot.quote({ ...buildQuote(GOOD), report_data }).toString('base64'));
    const policyFile = join(dir, 'policy.json');
    writeFileSync(
      policyFile,
      JSON.stringify(policyJson('cli-gen', [{ build: GOOD }, { release_tag: 'v2', build: OTHER }])),
    );
    const at = String(t.rot.now_s);
    for (const root of [t.root_pem, t.root_der]) {
      const r = ee(quoteFile, '--collateral', t.collateral_file, '--at', at, '--root-ca', root, '--policy', policyFile);
      assert.equal(r.code, 0, r.stdout + r.stderr);
      assert.match(r.stderr, /WARNING: --root-ca .* is NOT Intel's SGX Root CA/);
      assert.match(r.stdout, /^Root CA\s+TEST OVERRIDE/m);
      assert.match(r.stdout, /^Policy\s+cli-gen: ALLOWED \(acme\/demo@v1\.0\.0\)$/m);
    }
    const intel = ee(quoteFile, '--collateral', t.collateral_file, '--at', at, '--json');
    assert.equal(intel.code, 1);
    assert.match(JSON.parse(intel.stdout).reasons.join('\n'), /certificate chain|root/i);
  });

  test('usage errors exit 2: missing file, missing --collateral, bad --at, unreadable collateral or policy, junk input', () => {
    const dir = tmpDir();
    const junk = join(dir, 'junk.txt');
    writeFileSync(junk, 'this is not a quote!\n');
    const empty = join(dir, 'empty');
    writeFileSync(empty, '');
    const cases: Array<[string[], RegExp]> = [
      [[join(dir, 'missing.bin'), '--collateral', COLLATERAL], /cannot use quote file .*ENOENT/],
      [[QUOTE], /required option '--collateral <file>'/],
      [[QUOTE, '--collateral', COLLATERAL, '--at', 'yesterday'], /--at must be unix seconds/],
      [[QUOTE, '--collateral', join(dir, 'missing.json')], /cannot use collateral file/],
      [[QUOTE, '--collateral', junk], /cannot use collateral file/],
      [[QUOTE, '--collateral', COLLATERAL, '--policy', junk], /cannot use policy file/],
      [[junk, '--collateral', COLLATERAL], /neither hex nor base64/],
      [[empty, '--collateral', COLLATERAL], /empty/],
      [[QUOTE, '--collateral', COLLATERAL, '--repo', 'a/b'], /--repo and --release-tag go together/],
      [['--collateral', COLLATERAL], /missing required argument 'quote-file'/],
    ];
    for (const [args, msg] of cases) {
      const r = ee(...args);
      assert.equal(r.code, 2, `${args.join(' ')}: ${r.stdout}${r.stderr}`);
      assert.match(r.stderr, msg, args.join(' '));
    }
  });
});
