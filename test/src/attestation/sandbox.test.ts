import { createHash } from 'node:crypto';
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import {
  computeReportData,
  EvidenceRouter,
  generateKeyset,
  isKnownNetwork,
  networkPolicy,
  newNonce,
  publicKeyset,
  REPORT_DATA_DOMAINS,
  ROUTER_REASONS,
} from '@easyenclave/attestation';
import type { EvidenceVerifier, Keyset, Verdict, VerifyRequest } from '@easyenclave/attestation';
import {
  isSandboxQuote,
  parseSandboxQuote,
  SANDBOX_QUOTE_LENGTH,
  SANDBOX_REASONS,
} from '@easyenclave/attestation/sandbox';
import { SandboxQuoteProvider, sandboxMeasurements, SandboxVerifier } from '@easyenclave/attestation/sandbox';

const subject = { agent_id: 'a1', repo: 'org/repo', release_tag: 'v0.1.3', app_name: 'myapp', network: 'sandbox-1' };
const provider = new SandboxQuoteProvider({ repo: subject.repo, release_tag: subject.release_tag });
const verifier = new SandboxVerifier();
const TUNNEL = REPORT_DATA_DOMAINS.tunnel;

async function setup(over: Partial<VerifyRequest> = {}): Promise<VerifyRequest> {
  const keyset = publicKeyset(generateKeyset());
  const nonce = newNonce();
  const quote = await provider.getQuote(computeReportData(TUNNEL, nonce, keyset));
  return { subject, domain: TUNNEL, nonce, keyset, quote, now_ms: Date.now(), sealed_required: false, ...over };
}

function reasonsOf(v: Verdict): string[] {
  assert.equal(v.ok, false, 'expected a rejection');
  return v.ok ? [] : v.reasons;
}

function flip(q: Buffer, i: number, mask: number): Buffer {
  const t = Buffer.from(q);
  t[i] = (t[i] as number) ^ mask;
  return t;
}

describe('sandbox quote provider → verifier', () => {
  it('round trip is accepted with the declared measurements', async () => {
    const req = await setup();
    const v = await verifier.verify(req);
    assert.ok(v.ok, JSON.stringify(v));
    assert.equal(v.evidence_type, 'sandbox');
    assert.deepEqual(v.measurements, sandboxMeasurements(subject.repo, subject.release_tag));
    assert.ok(v.report_data.equals(computeReportData(req.domain, req.nonce, req.keyset)));
    assert.equal(v.evidence_hash, createHash('sha256').update(req.quote).digest('hex'));
    assert.equal(v.policy_version, null);
  });

  it('round trip is accepted for any repo, tag, nonce and keyset (property)', async () => {
    const hex32 = fc.uint8Array({ minLength: 32, maxLength: 32 }).map((b) => Buffer.from(b).toString('hex'));
    await fc.assert(
      fc.asyncProperty(
        fc.string({ minLength: 1, maxLength: 40 }).filter((s) => !s.includes('@')),
        fc.string({ minLength: 1, maxLength: 40 }),
        fc.uint8Array({ minLength: 32, maxLength: 32 }),
        fc.record({ hpke_public_key: hex32, receipt_public_key: hex32 }),
        async (repo, release_tag, n, keyset) => {
          const nonce = Buffer.from(n);
          const p = new SandboxQuoteProvider({ repo, release_tag });
          const quote = await p.getQuote(computeReportData(TUNNEL, nonce, keyset));
          assert.equal(quote.length, SANDBOX_QUOTE_LENGTH);
          const v = await verifier.verify({
            subject: { ...subject, repo, release_tag },
            domain: TUNNEL,
            nonce,
            keyset,
            quote,
            now_ms: 0,
            sealed_required: false,
          });
          assert.ok(v.ok, JSON.stringify(v));
        },
      ),
      { numRuns: 50 },
    );
  });

  it('a wrong nonce or another keyset is rejected on the report_data binding only', async () => {
    const req = await setup();
    assert.deepEqual(reasonsOf(await verifier.verify({ ...req, nonce: newNonce() })), [
      SANDBOX_REASONS.reportDataMismatch,
    ]);
    const other: Keyset = publicKeyset(generateKeyset());
    assert.deepEqual(reasonsOf(await verifier.verify({ ...req, keyset: other })), [SANDBOX_REASONS.reportDataMismatch]);
  });

  it('an invalid nonce or keyset is reported, not thrown', async () => {
    const req = await setup();
    assert.deepEqual(reasonsOf(await verifier.verify({ ...req, nonce: Buffer.alloc(16) })), [
      'invalid nonce: must be 32 bytes',
    ]);
    const bad = { ...req.keyset, extra: 'x' } as unknown as Keyset;
    assert.match(
      reasonsOf(await verifier.verify({ ...req, keyset: bad })).join('|'),
      /^invalid keyset: unexpected field "extra"$/,
    );
  });

  it('measurements for another release are rejected', async () => {
    const req = await setup();
    const v = await verifier.verify({ ...req, subject: { ...subject, release_tag: 'v0.1.4' } });
    assert.deepEqual(reasonsOf(v), [SANDBOX_REASONS.measurementMismatch]);
  });

  it('flipping any single byte of a valid quote makes verification fail (every position)', async () => {
    const req = await setup();
    for (let i = 0; i < req.quote.length; i++) {
      const v = await verifier.verify({ ...req, quote: flip(req.quote, i, 0x01) });
      assert.equal(v.ok, false, `byte ${i}`);
    }
  });

  it('flipping any single byte of a valid quote makes verification fail (property)', async () => {
    const req = await setup();
    await fc.assert(
      fc.asyncProperty(fc.nat({ max: req.quote.length - 1 }), fc.integer({ min: 1, max: 255 }), async (i, mask) => {
        const reasons = reasonsOf(await verifier.verify({ ...req, quote: flip(req.quote, i, mask) }));
        assert.ok(reasons.length > 0);
        // The reason names the region that was tampered with.
        if (i < 16) assert.deepEqual(reasons, [SANDBOX_REASONS.notSandbox]);
        else if (i < 80) assert.deepEqual(reasons, [SANDBOX_REASONS.badSignature, SANDBOX_REASONS.reportDataMismatch]);
        else if (i < 320)
          assert.deepEqual(reasons, [SANDBOX_REASONS.badSignature, SANDBOX_REASONS.measurementMismatch]);
        else assert.deepEqual(reasons, [SANDBOX_REASONS.badSignature]);
      }),
      { numRuns: 500 },
    );
  });

  it('a re-signed quote with altered content is still bound by report_data and measurements', async () => {
    // Anyone can sign a sandbox quote; what stops replay is the nonce binding.
    const req = await setup();
    const other = new SandboxQuoteProvider({ repo: subject.repo, release_tag: subject.release_tag });
    const quote = await other.getQuote(computeReportData(TUNNEL, newNonce(), req.keyset));
    assert.deepEqual(reasonsOf(await verifier.verify({ ...req, quote })), [SANDBOX_REASONS.reportDataMismatch]);
  });

  it('truncated quotes are rejected with the length', async () => {
    const req = await setup();
    for (const len of [16, 17, 100, 352, 415]) {
      const v = await verifier.verify({ ...req, quote: req.quote.subarray(0, len) });
      assert.deepEqual(reasonsOf(v), [
        `malformed sandbox quote: sandbox quote has the wrong length: ${len} bytes (expected 416)`,
      ]);
    }
    for (const len of [0, 1, 15]) {
      assert.deepEqual(reasonsOf(await verifier.verify({ ...req, quote: req.quote.subarray(0, len) })), [
        SANDBOX_REASONS.notSandbox,
      ]);
    }
  });

  it('oversized quotes are rejected (trailing bytes, and over 4 KiB)', async () => {
    const req = await setup();
    const longer = Buffer.concat([req.quote, Buffer.alloc(1)]);
    const huge = Buffer.concat([req.quote, Buffer.alloc(5000)]);
    const malformed = 'malformed sandbox quote: sandbox quote';
    assert.deepEqual(reasonsOf(await verifier.verify({ ...req, quote: longer })), [
      `${malformed} has the wrong length: 417 bytes (expected 416)`,
    ]);
    assert.deepEqual(reasonsOf(await verifier.verify({ ...req, quote: huge })), [
      `${malformed} is too large: 5416 bytes (max 4096)`,
    ]);
  });

  it('a sealed network rejects sandbox evidence, even a valid one', async () => {
    const req = await setup({ sealed_required: true });
    const v = await verifier.verify(req);
    assert.equal(v.evidence_type, 'sandbox');
    assert.deepEqual(reasonsOf(v), [SANDBOX_REASONS.sealed]);
  });

  it('collects every reason when several checks fail', async () => {
    const req = await setup({ sealed_required: true });
    const v = await verifier.verify({ ...req, quote: flip(req.quote, 100, 0xff), nonce: newNonce() });
    assert.deepEqual(reasonsOf(v), [
      SANDBOX_REASONS.sealed,
      SANDBOX_REASONS.badSignature,
      SANDBOX_REASONS.reportDataMismatch,
      SANDBOX_REASONS.measurementMismatch,
    ]);
  });

  it('a non-sandbox quote is rejected as such', async () => {
    const req = await setup();
    const tdxLike = Buffer.alloc(1024);
    tdxLike.writeUInt16LE(4, 0);
    for (const quote of [tdxLike, Buffer.from('hello'), Buffer.alloc(0)]) {
      const v = await verifier.verify({ ...req, quote });
      assert.equal(v.evidence_type, 'unknown');
      assert.deepEqual(reasonsOf(v), [SANDBOX_REASONS.notSandbox]);
    }
  });
});

describe('sandbox quote format', () => {
  it('parses strictly and detects the magic cheaply', async () => {
    const rd = Buffer.alloc(64, 7);
    const quote = await provider.getQuote(rd);
    assert.ok(isSandboxQuote(quote));
    assert.equal(quote.subarray(0, 13).toString('ascii'), 'ee-sandbox-v1');
    const parsed = parseSandboxQuote(quote);
    assert.ok(parsed.report_data.equals(rd));
    assert.deepEqual(parsed.measurements, provider.measurements);
    assert.equal(parsed.signing_public_key.length, 32);
    assert.equal(parsed.signature.length, 64);
    assert.ok(parsed.signed_bytes.equals(quote.subarray(0, 352)));
    assert.throws(() => parseSandboxQuote(quote.subarray(0, 415)), /wrong length/);
    assert.throws(() => parseSandboxQuote(Buffer.alloc(4097)), /too large/);
    assert.throws(() => parseSandboxQuote(Buffer.alloc(416)), /not a sandbox quote/);
    assert.equal(isSandboxQuote(Buffer.alloc(416)), false);
    await assert.rejects(provider.getQuote(Buffer.alloc(32)), /report_data must be 64 bytes/);
  });

  it('measurements are stable, 48-byte lowercase hex, and differ per release', () => {
    const a = sandboxMeasurements('org/repo', 'v1');
    assert.deepEqual(a, sandboxMeasurements('org/repo', 'v1'));
    for (const v of Object.values(a)) assert.match(v, /^[0-9a-f]{96}$/);
    assert.equal(new Set(Object.values(a)).size, 5);
    assert.notDeepEqual(a, sandboxMeasurements('org/repo', 'v2'));
    assert.equal(a.mrtd, createHash('sha384').update('ee-sandbox-mrtdorg/repo@v1').digest('hex'));
    assert.throws(() => new SandboxQuoteProvider({ repo: 'a@b', release_tag: 'v1' }), /without "@"/);
  });
});

describe('EvidenceRouter', () => {
  const fakeTdx = (verdict: (req: VerifyRequest) => Verdict | Promise<Verdict>): EvidenceVerifier => ({
    verify: async (req) => verdict(req),
  });

  const okVerdict = (r: VerifyRequest, evidence_type: 'tdx' | 'sandbox'): Verdict => ({
    ok: true,
    evidence_type,
    measurements: sandboxMeasurements('x', 'y'),
    report_data: computeReportData(r.domain, r.nonce, r.keyset),
    evidence_hash: 'h',
    policy_version: null,
  });

  it('routes sandbox quotes to the sandbox verifier, anything else to TDX (or rejects)', async () => {
    const req = await setup();
    const router = new EvidenceRouter({ sandbox: verifier });
    const v = await router.verify(req);
    assert.ok(v.ok && v.evidence_type === 'sandbox');
    assert.deepEqual(reasonsOf(await router.verify({ ...req, quote: Buffer.alloc(600) })), [ROUTER_REASONS.noTdx]);
    assert.deepEqual(reasonsOf(await new EvidenceRouter({}).verify(req)), [ROUTER_REASONS.noSandbox]);
  });

  it('accepts a TDX verdict on a sealed network only if its report_data is bound', async () => {
    const req = await setup({ quote: Buffer.alloc(600), sealed_required: true });
    assert.ok((await new EvidenceRouter({ tdx: fakeTdx((r) => okVerdict(r, 'tdx')) }).verify(req)).ok);
    const unbound = await new EvidenceRouter({
      tdx: fakeTdx((r) => ({ ...okVerdict(r, 'tdx'), report_data: Buffer.alloc(64) })),
    }).verify(req);
    assert.deepEqual(reasonsOf(unbound), [ROUTER_REASONS.reportDataUnbound]);
  });

  it('fails closed on exceptions and reasonless rejections', async () => {
    const req = await setup();
    const throwing = new EvidenceRouter({
      sandbox: fakeTdx(() => {
        throw new Error('boom');
      }),
      tdx: fakeTdx(() => Promise.reject(new Error('kaput'))),
    });
    assert.deepEqual(reasonsOf(await throwing.verify(req)), ['verifier error: boom']);
    assert.deepEqual(reasonsOf(await throwing.verify({ ...req, quote: Buffer.alloc(8) })), ['verifier error: kaput']);
    const silent = new EvidenceRouter({ tdx: fakeTdx(() => ({ ok: false, evidence_type: 'tdx', reasons: [] })) });
    assert.deepEqual(reasonsOf(await silent.verify({ ...req, quote: Buffer.alloc(8) })), [ROUTER_REASONS.noReason]);
  });

  it('refuses sandbox evidence on a sealed network even if a verifier accepts it', async () => {
    const req = await setup({ sealed_required: true });
    const lax = fakeTdx((r) => okVerdict(r, 'sandbox'));
    assert.deepEqual(reasonsOf(await new EvidenceRouter({ sandbox: lax }).verify(req)), [SANDBOX_REASONS.sealed]);
    assert.deepEqual(reasonsOf(await new EvidenceRouter({ tdx: lax }).verify({ ...req, quote: Buffer.alloc(8) })), [
      SANDBOX_REASONS.sealed,
    ]);
    assert.deepEqual(reasonsOf(await new EvidenceRouter({ sandbox: verifier }).verify(req)), [SANDBOX_REASONS.sealed]);
  });
});

describe('networks', () => {
  it('forge-1 is sealed, sandbox-1 is not, nothing else exists', () => {
    assert.deepEqual(networkPolicy('forge-1'), { name: 'forge-1', sealed: true });
    assert.deepEqual(networkPolicy('sandbox-1'), { name: 'sandbox-1', sealed: false });
    for (const name of ['forge-2', '', '__proto__', 'constructor', 'toString']) {
      assert.equal(networkPolicy(name), undefined);
      assert.equal(isKnownNetwork(name), false);
    }
    assert.equal(isKnownNetwork('forge-1'), true);
  });
});
