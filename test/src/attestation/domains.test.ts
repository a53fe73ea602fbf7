// report_data domains: evidence made for one purpose (the control plane's challenge of an agent, a client's
// relayed challenge, the control plane's own evidence) never verifies for another, whatever verifier checks it.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import {
  canonicalJson,
  computeReportData,
  EvidenceRouter,
  generateKeyset,
  isReportDataDomain,
  newNonce,
  publicKeyset,
  REPORT_DATA_DOMAINS,
  reportDataMatches,
  ROUTER_REASONS,
  SANDBOX_REASONS,
  SandboxQuoteProvider,
  sandboxMeasurements,
  SandboxVerifier,
  type Keyset,
  type ReportDataDomain,
  type Verdict,
  type VerifyRequest,
} from '@easyenclave/attestation';

const DOMAINS: ReportDataDomain[] = Object.values(REPORT_DATA_DOMAINS);
const hex32 = fc.uint8Array({ minLength: 32, maxLength: 32 }).map((b) => Buffer.from(b).toString('hex'));
const keysetArb: fc.Arbitrary<Keyset> = fc.record({ hpke_public_key: hex32, receipt_public_key: hex32 });
const nonceArb = fc.uint8Array({ minLength: 32, maxLength: 32 }).map((b) => Buffer.from(b));
const subject = { agent_id: 'agent-1', repo: 'org/repo', release_tag: 'v1', app_name: 'app', network: 'sandbox-1' };

function reasonsOf(v: Verdict): string[] {
  assert.equal(v.ok, false, 'expected a rejection');
  return v.ok ? [] : v.reasons;
}

describe('report_data domains', () => {
  const ks = { hpke_public_key: '11'.repeat(32), receipt_public_key: '22'.repeat(32) };
  const nonce = Buffer.from(Array.from({ length: 32 }, (_, i) => i));

  it('are exactly the three written-down labels', () => {
    assert.deepEqual(REPORT_DATA_DOMAINS, { tunnel: 'ee-tunnel-v1', relay: 'ee-relay-v1', self: 'ee-self-v1' });
    for (const d of DOMAINS) assert.ok(isReportDataDomain(d));
    for (const d of ['ee-tunnel-v2', 'EE-TUNNEL-V1', '', 'ee-pop-v1', 'tunnel', undefined, 1, null])
      assert.equal(isReportDataDomain(d), false, String(d));
  });

  it('each matches the scheme (known answers, cross-checked in Python)', () => {
    const known: Record<ReportDataDomain, string> = {
      'ee-tunnel-v1':
        'c952caae0814fe5abfafb53d3b299ccdd7eb69ad2e57b4565e739cce187a6b52e68383ff181d232c79edea1daf0ec044c3cd9238ed48309cbc1eafc42ef9d8aa',
      'ee-relay-v1':
        'a123ed1470de92c349d4f9448166a524be7570b305eacc9e14972f3863938d9339f073a1286e1d06e11b4fe29edf263ce285364e60dd364fc6be7abf01174ab8',
      'ee-self-v1':
        '6c7b5c2a7a0b5298f77f3a1478f2da92c4f2b3720a8a4dc8f0da4e31bd21d59f2ec51ffed8137af391758fa2dec2f1517cd0b2427f76d7fc50972e62f05e6333',
    };
    for (const d of DOMAINS) {
      const expected = createHash('sha512')
        .update(d)
        .update(nonce)
        .update(createHash('sha256').update(canonicalJson(ks)).digest())
        .digest();
      const rd = computeReportData(d, nonce, ks);
      assert.ok(rd.equals(expected), d);
      assert.equal(rd.toString('hex'), known[d], d);
    }
  });

  it('differ from each other for every nonce and keyset (property)', () => {
    fc.assert(
      fc.property(nonceArb, keysetArb, (n, k) => {
        const values = DOMAINS.map((d) => computeReportData(d, n, k));
        for (let i = 0; i < values.length; i++)
          for (let j = i + 1; j < values.length; j++) assert.ok(!reportDataMatches(values[i]!, values[j]!));
      }),
    );
  });

  it('an unknown domain is refused, never hashed', () => {
    for (const d of ['ee-tunnel-v2', '', 'ee-pop-v1', undefined]) {
      assert.throws(() => computeReportData(d as ReportDataDomain, nonce, ks), /unknown report_data domain/, String(d));
    }
  });
});

describe('cross-use of evidence between domains', () => {
  const provider = new SandboxQuoteProvider({ repo: subject.repo, release_tag: subject.release_tag });

  /** Sandbox evidence made in `made`, to be checked in each domain. */
  async function sandboxEvidence(made: ReportDataDomain): Promise<Omit<VerifyRequest, 'domain'>> {
    const keyset = publicKeyset(generateKeyset());
    const nonce = newNonce();
    const quote = await provider.getQuote(computeReportData(made, nonce, keyset));
    return { subject, nonce, keyset, quote, now_ms: Date.now(), sealed_required: false };
  }

  it('SandboxVerifier and EvidenceRouter accept evidence only in the domain it was made for', async () => {
    const router = new EvidenceRouter({ sandbox: new SandboxVerifier() });
    for (const made of DOMAINS) {
      const ev = await sandboxEvidence(made);
      for (const checked of DOMAINS) {
        const req: VerifyRequest = { ...ev, domain: checked };
        const direct = await new SandboxVerifier().verify(req);
        const routed = await router.verify(req);
        if (made === checked) {
          assert.ok(direct.ok, `${made}: ${JSON.stringify(direct)}`);
          assert.ok(routed.ok, `${made} (router): ${JSON.stringify(routed)}`);
        } else {
          assert.deepEqual(reasonsOf(direct), [SANDBOX_REASONS.reportDataMismatch], `${made} as ${checked}`);
          assert.deepEqual(reasonsOf(routed), [SANDBOX_REASONS.reportDataMismatch], `${made} as ${checked} (router)`);
        }
      }
    }
  });

  it('the router re-checks the domain even when a verifier wrongly accepts (fails closed)', async () => {
    // A TDX verifier that accepts anything and reports the report_data of the tunnel domain.
    const lax = {
      verify: async (r: VerifyRequest): Promise<Verdict> => ({
        ok: true,
        evidence_type: 'tdx',
        measurements: sandboxMeasurements('x', 'y'),
        report_data: computeReportData(REPORT_DATA_DOMAINS.tunnel, r.nonce, r.keyset),
        evidence_hash: 'h',
        policy_version: null,
      }),
    };
    const router = new EvidenceRouter({ tdx: lax });
    const keyset = publicKeyset(generateKeyset());
    const base = { subject, nonce: newNonce(), keyset, quote: Buffer.alloc(600), now_ms: 0, sealed_required: true };
    assert.ok((await router.verify({ ...base, domain: REPORT_DATA_DOMAINS.tunnel })).ok);
    for (const domain of [REPORT_DATA_DOMAINS.relay, REPORT_DATA_DOMAINS.self]) {
      assert.deepEqual(reasonsOf(await router.verify({ ...base, domain })), [ROUTER_REASONS.reportDataUnbound], domain);
    }
    const undomained = { ...base, domain: 'ee-other-v1' } as unknown as VerifyRequest;
    assert.match(reasonsOf(await router.verify(undomained))[0]!, /unknown report_data domain/);
  });
});
