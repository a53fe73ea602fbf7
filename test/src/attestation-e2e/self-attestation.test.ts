// GET /v1/attestation?nonce=<64 hex>: the control plane's own evidence, bound to the caller's nonce and its
// per-boot keyset by the one report_data scheme. Without TDX it is sandbox evidence, labelled as such, that
// verifies with SandboxVerifier; with configfs-tsm (a fake kernel here) it is a TDX quote that verifies with
// DcapVerifier against the test root of trust.
import assert from 'node:assert/strict';
import { afterEach, describe, test } from 'node:test';
import {
  computeReportData,
  REPORT_DATA_DOMAINS,
  DcapVerifier,
  EvidenceRouter,
  newNonce,
  SANDBOX_REASONS,
  SandboxVerifier,
  StaticCollateralSource,
  type VerifyRequest,
} from '@easyenclave/attestation';
import { closeAll, startCp } from '../helpers/network.js';
import { tmpDir } from '../helpers/tmp.js';
import { httpGet } from '../lifecycle/util.js';
import { buildQuote, FakeTsm, GOOD, trustFiles } from './fixture.js';

afterEach(() => closeAll());

function request(body: any, nonce: Buffer, sealed_required = false): VerifyRequest {
  return {
    subject: {
      agent_id: 'control-plane',
      app_name: 'control-plane',
      repo: body.repo,
      release_tag: body.release_tag,
      network: sealed_required ? 'forge-1' : 'sandbox-1',
    },
    domain: REPORT_DATA_DOMAINS.self,
    nonce,
    keyset: body.keyset,
    quote: Buffer.from(body.quote, 'base64'),
    now_ms: Date.now(),
    sealed_required,
  };
}

describe('GET /v1/attestation', () => {
  test('without TDX: sandbox evidence, labelled sandbox, bound to the nonce and the per-boot keyset', async () => {
    const cp = await startCp({ EE_TSM_PATH: `${tmpDir()}/no-tsm` });
    const nonce = newNonce();
    const res = await httpGet(`${cp.api_url}/v1/attestation?nonce=${nonce.toString('hex')}`);
    assert.equal(res.status, 200, res.text);
    assert.equal(res.headers.get('cache-control'), 'no-store');
    const body = res.json;
    assert.equal(body.evidence_type, 'sandbox');
    assert.equal(body.sandbox, true);
    assert.equal(body.nonce, nonce.toString('hex'));
    assert.deepEqual(Object.keys(body.keyset).sort(), ['hpke_public_key', 'receipt_public_key']);
    assert.equal(body.report_data, computeReportData(REPORT_DATA_DOMAINS.self, nonce, body.keyset).toString('hex'));
    assert.equal(typeof body.measurements.mrtd, 'string');

    const v = await new SandboxVerifier().verify(request(body, nonce));
    assert.ok(v.ok, JSON.stringify(v));
    assert.equal(v.evidence_type, 'sandbox');
    assert.deepEqual(v.measurements, body.measurements);
    // Bound to this nonce only, and never acceptable where hardware evidence is required.
    const other = await new SandboxVerifier().verify(request(body, newNonce()));
    assert.equal(other.ok, false);
    assert.ok(!other.ok && other.reasons.includes(SANDBOX_REASONS.reportDataMismatch));
    const sealed = await new EvidenceRouter({ sandbox: new SandboxVerifier() }).verify(request(body, nonce, true));
    assert.equal(sealed.ok, false);

    // Per boot: the same keyset for every caller; a fresh quote per nonce.
    const nonce2 = newNonce();
    const again = (await httpGet(`${cp.api_url}/v1/attestation?nonce=${nonce2.toString('hex').toUpperCase()}`)).json;
    assert.deepEqual(again.keyset, body.keyset);
    assert.equal(again.nonce, nonce2.toString('hex'));
    assert.notEqual(again.quote, body.quote);
    assert.ok((await new SandboxVerifier().verify(request(again, nonce2))).ok);

    // Another boot, another keyset.
    const cp2 = await startCp({ EE_TSM_PATH: `${tmpDir()}/no-tsm` });
    const b2 = (await httpGet(`${cp2.api_url}/v1/attestation?nonce=${nonce.toString('hex')}`)).json;
    assert.notDeepEqual(b2.keyset, body.keyset);
  });

  test('a bad nonce is a 400 JSON error', async () => {
    const cp = await startCp();
    for (const q of [
      '',
      '?nonce=',
      '?nonce=zz',
      `?nonce=${'a'.repeat(63)}`,
      `?nonce=${'a'.repeat(66)}`,
      `?nonce=0x${'a'.repeat(62)}`,
      `?nonce=${'g'.repeat(64)}`,
    ]) {
      const res = await httpGet(`${cp.api_url}/v1/attestation${q}`);
      assert.equal(res.status, 400, `${q}: ${res.text}`);
      assert.match(res.headers.get('content-type') ?? '', /application\/json/);
      assert.equal(res.json.error.code, 'invalid_nonce', q);
      assert.match(res.json.error.message, /64 hex characters|nonce/, q);
    }
  });

  test('with configfs-tsm: a TDX quote that verifies with DcapVerifier, labelled tdx', async () => {
    const t = await trustFiles();
    const kernel = new FakeTsm(t.rot, { quote: buildQuote(GOOD) });
    const cp = await startCp({ ...t.env, EE_TSM_PATH: kernel.path });
    const nonce = newNonce();
    const res = await httpGet(`${cp.api_url}/v1/attestation?nonce=${nonce.toString('hex')}`);
    assert.equal(res.status, 200, res.text);
    const body = res.json;
    assert.equal(body.evidence_type, 'tdx');
    assert.equal(body.sandbox, false);
    assert.equal(body.measurements.mrtd, GOOD.mrtd.toString('hex'));
    const dcap = DcapVerifier.newWithRootCa(t.rot.root_der, {
      collateral: new StaticCollateralSource(t.collateral),
      logger: { warn: () => undefined },
    });
    const v = await new EvidenceRouter({ tdx: dcap }).verify(request(body, nonce, true));
    assert.ok(v.ok, JSON.stringify(v));
    assert.equal(v.evidence_type, 'tdx');
    assert.equal(v.measurements.mrtd, GOOD.mrtd.toString('hex'));
    assert.deepEqual(kernel.entries(), []);
  });
});
