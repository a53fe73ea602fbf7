// The real Intel-signed TDX quote from test/fixtures/tdx, verified against Intel's SGX Root CA with its
// collateral: UpToDate inside its window (unix 1750329147 … 1752919234), rejected with a reason outside it.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, it } from 'node:test';
import { QuoteVerifier } from '@phala/dcap-qvl';
import {
  computeReportData,
  CRL_REASONS,
  DCAP_REASONS,
  DcapVerifier,
  FileCollateralSource,
  generateKeyset,
  newNonce,
  normalizeCollateral,
  parsePolicy,
  POLICY_REASONS,
  publicKeyset,
  REPORT_DATA_DOMAINS,
  verifyQuote,
} from '@easyenclave/attestation';
import type { DcapCollateral } from '@easyenclave/attestation';
import { TestRootOfTrust } from '@easyenclave/attestation/testing/root-of-trust';

const FIXTURES = fileURLToPath(new URL('../../fixtures/tdx/', import.meta.url));
const quote = readFileSync(`${FIXTURES}tdx_quote.bin`);
const collateralPath = `${FIXTURES}tdx_quote_collateral.json`;
const collateral = JSON.parse(readFileSync(collateralPath, 'utf8')) as DcapCollateral;

const FIRST = 1750329147; // 2025-06-19T10:32:27Z, the QE identity's issueDate
const LAST = 1752919234; // 2025-07-19T10:00:34Z, one second before the PCK CRL's nextUpdate

const EXPECTED = {
  mrtd: '91eb2b44d141d4ece09f0c75c2c53d247a3c68edd7fafe8a3520c942a604a407de03ae6dc5f87f27428b2538873118b7',
  rtmr0: '44c0197b39157fdd7a4dcc44767f9d6b0bb3977c7a8e347b8492f827fe9d9e5c48aca29b220b80b6a540cf994b9bc9c0',
  rtmr1: '0084452c01668329d4bc06acdf58a7205c26743304509973949e5619bf81a6a7aea8c323c173019b3093d54e579e9378',
  rtmr2: 'd833feef2cd945148aa38ead2c53e9b7f138190aaaebfc551dccd829fc207aa3ba80b70870d7330733642e01d48c3132',
  rtmr3: '0'.repeat(96),
  report_data:
    '9a9d48e7f6799642d3d1b34e1e5e1742d4bb02dd6ddd551862c1211d35c304f9eca3efdbb481601c163cf52493d6e44aed55d51ec39b7e518fadb92c2b523f20',
  td_attributes: '0000001000000000',
  xfam: 'e702060000000000',
  fmspc: 'B0C06F000000',
  pck_ca: 'platform',
};

class Logs {
  readonly lines: string[] = [];
  warn(msg: string): void {
    this.lines.push(msg);
  }
}

describe("the real Intel TDX quote, against Intel's root", () => {
  it('verifies UpToDate at both ends of its window, with the README fields', async () => {
    for (const t of [FIRST, FIRST + 86_400, LAST]) {
      const r = await verifyQuote(quote, collateral, t);
      assert.equal(r.ok, true, `at ${t}: ${r.reasons.join('; ')}`);
      assert.equal(r.tcb_status, 'UpToDate');
      assert.deepEqual(r.advisory_ids, []);
      assert.equal(r.quote_version, 4);
      for (const [k, v] of Object.entries(EXPECTED)) assert.equal(r[k as keyof typeof r], v, k);
      assert.equal(r.tdx_module_tcb_status, 'UpToDate');
      assert.equal(r.ppid, '811dca2a26b952e85bb6448b097ba4fd');
    }
  });

  it('is rejected one second before the window: the QE identity is issued in the future', async () => {
    const r = await verifyQuote(quote, collateral, FIRST - 1);
    assert.equal(r.ok, false);
    assert.deepEqual(r.reasons, [DCAP_REASONS.dcap('QE Identity issue date is in the future')]);
  });

  it('is rejected one second after the window: the PCK CRL has expired (dcap-qvl alone does not notice)', async () => {
    const r = await verifyQuote(quote, collateral, LAST + 1);
    assert.equal(r.ok, false);
    assert.deepEqual(r.reasons, [CRL_REASONS.expired('PCK CRL', '2025-07-19T10:00:35.000Z')]);
    assert.equal(new QuoteVerifier().verify(quote, normalizeCollateral(collateral).qvl, LAST + 1).status, 'UpToDate');
    // And later, when the TCB info has expired too.
    const later = await verifyQuote(quote, collateral, 1752920164);
    assert.ok(later.reasons.includes(DCAP_REASONS.dcap('TCBInfo expired')), later.reasons.join('\n'));
  });

  it('a flipped bit anywhere in the signed part is caught', async () => {
    for (const off of [0x20, 48 + 136, 48 + 520, 48 + 583]) {
      const t = Buffer.from(quote);
      t[off] = (t[off] as number) ^ 0x01;
      const r = await verifyQuote(t, collateral, FIRST);
      assert.equal(r.ok, false);
      assert.ok(r.reasons.includes(DCAP_REASONS.quoteSignature), `offset ${off}: ${r.reasons.join('; ')}`);
    }
  });

  it('DcapVerifier with the default (Intel) root and the collateral file: only the report_data binding fails', async () => {
    const logs = new Logs();
    const v = new DcapVerifier({ collateral: new FileCollateralSource(collateralPath), logger: logs });
    assert.deepEqual(logs.lines, []);
    const keyset = publicKeyset(generateKeyset());
    const nonce = newNonce();
    const subject = { agent_id: 'a', repo: 'org/app', release_tag: 'v1', app_name: 'app', network: 'forge-1' };
    const domain = REPORT_DATA_DOMAINS.tunnel;
    const verdict = await v.verify({
      subject,
      domain,
      nonce,
      keyset,
      quote,
      now_ms: FIRST * 1000,
      sealed_required: true,
    });
    assert.deepEqual(verdict.ok ? [] : verdict.reasons, [DCAP_REASONS.reportData]);
    assert.notDeepEqual(computeReportData(domain, nonce, keyset).toString('hex'), EXPECTED.report_data);
    const report = await v.report(quote, FIRST * 1000);
    assert.equal(report.ok, true, report.reasons.join('; '));
    assert.equal(report.evidence_type, 'tdx');
  });

  it('with a policy: allowlisted MRTD passes, another release does not', async () => {
    const policy = parsePolicy({
      version: 'fixture-1',
      measurements: [
        {
          repo: 'org/app',
          release_tag: 'v1',
          mrtd: EXPECTED.mrtd,
          rtmr0: EXPECTED.rtmr0,
          rtmr1: EXPECTED.rtmr1,
          rtmr2: EXPECTED.rtmr2,
        },
      ],
      tcb: { allowed_statuses: ['UpToDate'], out_of_date_grace_days: 0 },
      advisory_deny: [],
      networks: { 'forge-1': { sealed: true } },
    });
    const subject = { agent_id: 'a', repo: 'org/app', release_tag: 'v1', app_name: 'app', network: 'forge-1' };
    const ok = await verifyQuote(quote, collateral, FIRST, { policy, subject });
    assert.equal(ok.ok, true, ok.reasons.join('; '));
    assert.equal(ok.policy_version, 'fixture-1');
    const other = await verifyQuote(quote, collateral, FIRST, { policy, subject: { ...subject, release_tag: 'v2' } });
    assert.deepEqual(other.reasons, [POLICY_REASONS.releaseNotAllowed('org/app', 'v2')]);
    const sandbox = await verifyQuote(quote, collateral, FIRST, {
      policy,
      subject: { ...subject, network: 'sandbox-1' },
    });
    assert.deepEqual(sandbox.reasons, [POLICY_REASONS.networkNotInPolicy('sandbox-1', 'fixture-1')]);
  });

  it('against the wrong root (a test root) it is rejected, with the reasons', async () => {
    const rot = await TestRootOfTrust.create();
    const logs = new Logs();
    const r = await verifyQuote(quote, collateral, FIRST, {
      root_ca_der: rot.root_der,
      allow_non_intel_root: true,
      logger: logs,
    });
    assert.equal(r.ok, false);
    assert.ok(r.reasons.includes(CRL_REASONS.chainRoot), r.reasons.join('\n'));
    assert.ok(
      r.reasons.some((x) => x.startsWith('root CA CRL is not issued by the trusted root CA')),
      r.reasons.join('\n'),
    );
    assert.ok(
      r.reasons.some((x) => x.startsWith('DCAP verification failed: ')),
      r.reasons.join('\n'),
    );
    assert.equal(logs.lines.length, 1);
    // And verifyQuote refuses a non-Intel root without the override.
    await assert.rejects(verifyQuote(quote, collateral, FIRST, { root_ca_der: rot.root_der }), {
      message: DCAP_REASONS.nonIntelRoot,
    });
  });
});
