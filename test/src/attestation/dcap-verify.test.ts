// DcapVerifier end to end on quotes from a test root of trust generated for this run, verified through the
// real code path (dcap-qvl's QuoteVerifier.newWithRootCa plus our own checks): the accepted case and the
// negative matrix, each rejection with its specific reason.
import { createHash } from 'node:crypto';
import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import { QuoteVerifier, constants as qvlConstants } from '@phala/dcap-qvl';
import {
  checkRevocation,
  computeReportData,
  CRL_REASONS,
  DCAP_REASONS,
  DcapVerifier,
  EvidenceRouter,
  generateKeyset,
  INTEL_SGX_ROOT_CA_DER,
  newNonce,
  normalizeCollateral,
  parsePolicy,
  POLICY_REASONS,
  publicKeyset,
  QUOTE_MAX_BYTES,
  QUOTE_REASONS,
  REPORT_DATA_DOMAINS,
  StaticCollateralSource,
} from '@easyenclave/attestation';
import type { CollateralSource, DcapCollateral, Policy, Verdict, VerifyRequest } from '@easyenclave/attestation';
import { TEST_PLATFORM, TestRootOfTrust } from '@easyenclave/attestation/testing/root-of-trust';
import type { QuoteOptions } from '@easyenclave/attestation/testing/root-of-trust';

const DAY = 86_400_000;
const subject = { agent_id: 'agent-1', repo: 'org/app', release_tag: 'v1.2.3', app_name: 'app', network: 'forge-1' };
const m48 = (s: string): Buffer => createHash('sha384').update(s).digest();
const MRTD = m48('mrtd v1.2.3');
const RTMR = [m48('rtmr0'), m48('rtmr1'), m48('rtmr2'), Buffer.alloc(48)] as const;

/** Collects warnings instead of printing them (the non-Intel root warning is expected in these tests). */
class Logs {
  readonly lines: string[] = [];
  warn(msg: string): void {
    this.lines.push(msg);
  }
}

function makePolicy(over: Record<string, unknown> = {}): Policy {
  return parsePolicy({
    version: 'test-2026.1',
    measurements: [
      {
        repo: subject.repo,
        release_tag: subject.release_tag,
        mrtd: MRTD.toString('hex'),
        rtmr0: (RTMR[0] as Buffer).toString('hex'),
        rtmr1: (RTMR[1] as Buffer).toString('hex'),
        rtmr2: (RTMR[2] as Buffer).toString('hex'),
      },
    ],
    tcb: { allowed_statuses: ['UpToDate', 'SWHardeningNeeded', 'OutOfDate'], out_of_date_grace_days: 30 },
    advisory_deny: ['INTEL-SA-00999'],
    networks: { 'forge-1': { sealed: true }, 'sandbox-1': { sealed: false } },
    ...over,
  });
}

function reasonsOf(v: Verdict): string[] {
  assert.equal(v.ok, false, `expected a rejection, got ${JSON.stringify(v)}`);
  return v.ok ? [] : v.reasons;
}

describe('DcapVerifier with a generated root of trust', () => {
  let rot: TestRootOfTrust;
  let collateral: DcapCollateral;
  let policy: Policy;
  let logs: Logs;
  let verifier: DcapVerifier;

  const make = (
    opts: { collateral?: DcapCollateral | CollateralSource; policy?: Policy | null; root?: Buffer } = {},
  ): DcapVerifier => {
    const source =
      opts.collateral === undefined
        ? new StaticCollateralSource(collateral)
        : 'get' in opts.collateral
          ? opts.collateral
          : new StaticCollateralSource(opts.collateral);
    const p = opts.policy === null ? undefined : (opts.policy ?? policy);
    return DcapVerifier.newWithRootCa(opts.root ?? rot.root_der, {
      collateral: source,
      ...(p !== undefined ? { policy: p } : {}),
      logger: logs,
    });
  };

  /** A request whose quote is bound to a fresh nonce and keyset, with the allowlisted measurements. */
  const request = (q: QuoteOptions = {}, over: Partial<VerifyRequest> = {}): VerifyRequest => {
    const keyset = publicKeyset(generateKeyset());
    const nonce = newNonce();
    const quote = rot.quote({
      mrtd: MRTD,
      rtmr0: RTMR[0],
      rtmr1: RTMR[1],
      rtmr2: RTMR[2],
      rtmr3: RTMR[3],
      report_data: computeReportData(REPORT_DATA_DOMAINS.tunnel, nonce, keyset),
      ...q,
    });
    return {
      subject,
      domain: REPORT_DATA_DOMAINS.tunnel,
      nonce,
      keyset,
      quote,
      now_ms: rot.now_ms,
      sealed_required: true,
      ...over,
    };
  };

  before(async () => {
    rot = await TestRootOfTrust.create();
    collateral = await rot.collateral();
    policy = makePolicy();
    logs = new Logs();
    verifier = make();
  });

  it('generated quotes verify through dcap-qvl itself (QuoteVerifier.newWithRootCa)', () => {
    const qvl = QuoteVerifier.newWithRootCa(rot.root_der);
    for (const q of [
      rot.quote(),
      rot.quote({ version: 5 }),
      rot.quote({ version: 5, body_type: 3 }),
      rot.quote({ pck: 'processor' }),
    ]) {
      const r = qvl.verify(q, normalizeCollateral(collateral).qvl, rot.now_s);
      assert.equal(r.status, 'UpToDate');
      assert.deepEqual(r.advisory_ids, []);
    }
    assert.equal(
      qvl.verify(
        rot.quote({ tee_tcb_svn: TEST_PLATFORM.tee_tcb_svn_out_of_date }),
        normalizeCollateral(collateral).qvl,
        rot.now_s,
      ).status,
      'OutOfDate',
    );
  });

  it('accepts a good quote: measurements, report_data, evidence hash, policy version, TCB status', async () => {
    const req = request();
    const v = await verifier.verify(req);
    assert.ok(v.ok, JSON.stringify(v));
    assert.equal(v.evidence_type, 'tdx');
    assert.deepEqual(v.measurements, {
      mrtd: MRTD.toString('hex'),
      rtmr0: (RTMR[0] as Buffer).toString('hex'),
      rtmr1: (RTMR[1] as Buffer).toString('hex'),
      rtmr2: (RTMR[2] as Buffer).toString('hex'),
      rtmr3: '0'.repeat(96),
    });
    assert.ok(v.report_data.equals(computeReportData(req.domain, req.nonce, req.keyset)));
    const digest = Buffer.from(normalizeCollateral(collateral).digest, 'hex');
    assert.equal(v.evidence_hash, createHash('sha256').update(req.quote).update(digest).digest('hex'));
    assert.equal(v.policy_version, 'test-2026.1');
    assert.equal(v.tcb_status, 'UpToDate');
    // And through the router, on a sealed network.
    const routed = await new EvidenceRouter({ tdx: verifier }).verify(request());
    assert.ok(routed.ok, JSON.stringify(routed));
  });

  it('accepts v5 quotes (TD 1.0 and TD 1.5 bodies) and a PCK from the Processor CA with its own CRL', async () => {
    assert.ok((await verifier.verify(request({ version: 5 }))).ok);
    assert.ok((await verifier.verify(request({ version: 5, body_type: 3 }))).ok);
    const processor = make({ collateral: await rot.collateral({ pck_crl_ca: 'processor' }) });
    const v = await processor.verify(request({ pck: 'processor' }));
    assert.ok(v.ok, JSON.stringify(v));
  });

  it('the detailed report names the platform', async () => {
    const r = await verifier.report(request().quote, rot.now_ms, { subject });
    assert.equal(r.ok, true, r.reasons.join('; '));
    assert.equal(r.fmspc, rot.fmspc);
    assert.equal(r.pck_ca, 'platform');
    assert.equal(r.ppid, rot.ppid.toString('hex'));
    assert.equal(r.pcesvn, 11);
    assert.equal(r.tdx_module_tcb_status, 'UpToDate');
    assert.equal(r.td_attributes, '0000001000000000');
  });

  describe('negative matrix', () => {
    it('wrong root: the chain does not reach the trusted root', async () => {
      const other = await TestRootOfTrust.create();
      const reasons = reasonsOf(await make({ root: other.root_der }).verify(request()));
      assert.ok(reasons.includes(CRL_REASONS.chainRoot), reasons.join('\n'));
      assert.ok(
        reasons.some((r) => r.startsWith('DCAP verification failed: Failed to verify certificate chain')),
        reasons.join('\n'),
      );
      // Same names as our root (both are generated test roots), different keys.
      assert.ok(reasons.includes(CRL_REASONS.rootCrlSignature), reasons.join('\n'));
    });

    it('tampered header, TD report or quote signature: the quote signature fails (cold and cached)', async () => {
      for (const v of [make(), verifier]) {
        // `verifier` has verified quotes from this platform before, so its DCAP verdict is cached.
        const header = request();
        header.quote[30] = (header.quote[30] as number) ^ 1; // QE user data
        assert.deepEqual(reasonsOf(await v.verify(header)), [DCAP_REASONS.quoteSignature]);
        const report = request();
        report.quote[48 + 184] = (report.quote[48 + 184] as number) ^ 1; // MRCONFIGID
        assert.deepEqual(reasonsOf(await v.verify(report)), [DCAP_REASONS.quoteSignature]);
        const sig = request();
        sig.quote[48 + 584 + 4 + 10] = (sig.quote[48 + 584 + 4 + 10] as number) ^ 1;
        assert.deepEqual(reasonsOf(await v.verify(sig)), [DCAP_REASONS.quoteSignature]);
        assert.deepEqual(reasonsOf(await v.verify(request({ quote_signer: rot.strayKey.private }))), [
          DCAP_REASONS.quoteSignature,
        ]);
      }
    });

    it('tampered QE report, QE report signed by the wrong key, broken QE hash', async () => {
      const qe = request();
      const qeOff = 48 + 584 + 4 + 128 + 6;
      qe.quote[qeOff + 100] = (qe.quote[qeOff + 100] as number) ^ 1; // reserved bytes inside the signed QE report
      assert.deepEqual(reasonsOf(await verifier.verify(qe)), [
        DCAP_REASONS.dcap('Signature is invalid for qe_report in quote'),
      ]);
      assert.deepEqual(reasonsOf(await verifier.verify(request({ qe_report_signer: rot.strayKey.private }))), [
        DCAP_REASONS.dcap('Signature is invalid for qe_report in quote'),
      ]);
      assert.deepEqual(reasonsOf(await verifier.verify(request({ bad_qe_hash: true }))), [
        DCAP_REASONS.dcap('QE report hash mismatch'),
      ]);
    });

    it('expired collateral', async () => {
      const late = rot.now_ms + 30 * DAY;
      const reasons = reasonsOf(await verifier.verify(request({}, { now_ms: late })));
      assert.ok(reasons.includes(DCAP_REASONS.dcap('TCBInfo expired')), reasons.join('\n'));
      assert.ok(
        reasons.some((r) => r.startsWith('PCK CRL has expired')),
        reasons.join('\n'),
      );
      assert.ok(
        reasons.some((r) => r.startsWith('root CA CRL has expired')),
        reasons.join('\n'),
      );
      // Only the CRLs expired: dcap-qvl does not notice, we do.
      const crlsOnly = make({
        collateral: await rot.collateral({ crl_next_ms: rot.now_ms - 1000, crl_this_ms: rot.now_ms - 2 * DAY }),
      });
      const r2 = reasonsOf(await crlsOnly.verify(request()));
      assert.deepEqual(r2, [
        CRL_REASONS.expired('root CA CRL', new Date(rot.now_ms - 1000).toISOString()),
        CRL_REASONS.expired('PCK CRL', new Date(rot.now_ms - 1000).toISOString()),
      ]);
      // The QE identity alone.
      const qeOld = make({ collateral: await rot.collateral({ qe_next_ms: rot.now_ms - 1000 }) });
      assert.deepEqual(reasonsOf(await qeOld.verify(request())), [DCAP_REASONS.dcap('QE Identity expired')]);
    });

    it('not-yet-valid collateral', async () => {
      const early = make({ collateral: await rot.collateral({ tcb_issue_ms: rot.now_ms + 3_600_000 }) });
      assert.deepEqual(reasonsOf(await early.verify(request())), [
        DCAP_REASONS.dcap('TCBInfo issue date is in the future'),
      ]);
      const crlEarly = make({ collateral: await rot.collateral({ crl_this_ms: rot.now_ms + 3_600_000 }) });
      const r = reasonsOf(await crlEarly.verify(request()));
      assert.ok(
        r.some((x) => x.startsWith('PCK CRL is not yet valid')),
        r.join('\n'),
      );
      assert.ok(
        r.some((x) => x.startsWith('root CA CRL is not yet valid')),
        r.join('\n'),
      );
    });

    it('revoked PCK certificate, revoked PCK CA', async () => {
      const revoked = make({ collateral: await rot.collateral({ revoked_pck_serials: [rot.pckPlatform.serial] }) });
      const r = reasonsOf(await revoked.verify(request()));
      assert.ok(r.includes(CRL_REASONS.pckRevoked(rot.pckPlatform.serial)), r.join('\n'));
      const caRevoked = make({ collateral: await rot.collateral({ revoked_root_serials: [rot.platformCa.serial] }) });
      const r2 = reasonsOf(await caRevoked.verify(request()));
      assert.ok(r2.includes(CRL_REASONS.pckCaRevoked(rot.platformCa.serial)), r2.join('\n'));
      const signerRevoked = make({
        collateral: await rot.collateral({ revoked_root_serials: [rot.tcbSigning.serial] }),
      });
      const r3 = reasonsOf(await signerRevoked.verify(request()));
      assert.ok(r3.includes(CRL_REASONS.signingRevoked(rot.tcbSigning.serial)), r3.join('\n'));
    });

    it('a CRL signed by the wrong key (dcap-qvl alone accepts it)', async () => {
      const bad = await rot.collateral({ pck_crl: 'wrong-key' });
      assert.equal(
        QuoteVerifier.newWithRootCa(rot.root_der).verify(rot.quote(), normalizeCollateral(bad).qvl, rot.now_s).status,
        'UpToDate',
      );
      assert.deepEqual(reasonsOf(await make({ collateral: bad }).verify(request())), [CRL_REASONS.pckCrlSignature]);
      const badRoot = await rot.collateral({ root_crl: 'wrong-key' });
      assert.deepEqual(reasonsOf(await make({ collateral: badRoot }).verify(request())), [
        CRL_REASONS.rootCrlSignature,
      ]);
    });

    it('a garbage CRL (dcap-qvl alone ignores it)', async () => {
      const bad = await rot.collateral({ pck_crl: 'garbage' });
      assert.equal(
        QuoteVerifier.newWithRootCa(rot.root_der).verify(rot.quote(), normalizeCollateral(bad).qvl, rot.now_s).status,
        'UpToDate',
      );
      const r = reasonsOf(await make({ collateral: bad }).verify(request()));
      assert.equal(r.length, 1);
      assert.match(r[0] as string, /^PCK CRL is malformed: /);
      const badRoot = reasonsOf(
        await make({ collateral: await rot.collateral({ root_crl: 'garbage' }) }).verify(request()),
      );
      assert.equal(badRoot.length, 1);
      assert.match(badRoot[0] as string, /^root CA CRL is malformed: /);
    });

    it("the wrong CA's CRL (dcap-qvl alone accepts it)", async () => {
      const wrong = await rot.collateral({ pck_crl_ca: 'processor' }); // PCK is from the Platform CA
      assert.equal(
        QuoteVerifier.newWithRootCa(rot.root_der).verify(rot.quote(), normalizeCollateral(wrong).qvl, rot.now_s).status,
        'UpToDate',
      );
      assert.deepEqual(reasonsOf(await make({ collateral: wrong }).verify(request())), [
        CRL_REASONS.pckCrlWrongCa('Intel SGX PCK Processor CA', 'Intel SGX PCK Platform CA'),
      ]);
      // The right CRL, but an issuer chain naming the other CA.
      const good = await rot.collateral();
      const mixed = { ...good, pck_crl_issuer_chain: rot.processorCa.pem + rot.root.pem };
      assert.deepEqual(reasonsOf(await make({ collateral: mixed }).verify(request())), [CRL_REASONS.pckCrlIssuerChain]);
      // The PCK revoked on its own CA's CRL while the collateral carries the other CA's CRL: still refused.
      const dodge = await rot.collateral({ pck_crl_ca: 'processor', revoked_pck_serials: [rot.pckPlatform.serial] });
      assert.ok(
        reasonsOf(await make({ collateral: dodge }).verify(request())).includes(
          CRL_REASONS.pckCrlWrongCa('Intel SGX PCK Processor CA', 'Intel SGX PCK Platform CA'),
        ),
      );
    });

    it('PCK chain shape: missing root, extra certificate, garbage certificate', async () => {
      const short = reasonsOf(
        await verifier.verify(request({ pck_chain_pem: rot.pckPlatform.pem + rot.platformCa.pem })),
      );
      assert.deepEqual(short, [CRL_REASONS.chainLength(2), CRL_REASONS.chainRoot]);
      const long = reasonsOf(await verifier.verify(request({ pck_chain_pem: rot.pckChainPem() + rot.root.pem })));
      assert.ok(long.includes(CRL_REASONS.chainLength(4)), long.join('\n'));
      // Someone holding one platform's PCK key "issues" a PCK certificate of their own under it (any FMSPC,
      // any TCB): dcap-qvl only checks the signatures along the chain and accepts it; the chain shape does not.
      const forged = await rot.issuePck(rot.pckPlatform, {
        ppid: Buffer.alloc(16, 1),
        cpusvn: [...TEST_PLATFORM.cpusvn],
        pcesvn: TEST_PLATFORM.pcesvn,
        pce_id: Buffer.alloc(2),
        fmspc: Buffer.from(rot.fmspc, 'hex'),
      });
      const forgedQuote: QuoteOptions = {
        pck_chain_pem: forged.pem + rot.pckChainPem(),
        qe_report_signer: forged.private,
      };
      assert.equal(
        QuoteVerifier.newWithRootCa(rot.root_der).verify(
          rot.quote(forgedQuote),
          normalizeCollateral(collateral).qvl,
          rot.now_s,
        ).status,
        'UpToDate',
      );
      const r = reasonsOf(await verifier.verify(request(forgedQuote)));
      // Our PCK parse already refuses a leaf whose issuer is not one of Intel's two PCK CAs (and the chain-shape
      // check would refuse the chain: 4 certificates, names not chaining to the root, a non-CA in the middle).
      assert.deepEqual(r, [
        DCAP_REASONS.pck(
          'PCK certificate issuer "Intel SGX PCK Certificate" is neither "Intel SGX PCK Platform CA" nor "Intel SGX PCK Processor CA"',
        ),
      ]);
      const shape = await checkRevocation(
        rot.root_der,
        [forged.der, rot.pckPlatform.der, rot.platformCa.der, rot.root.der],
        normalizeCollateral(collateral),
      );
      assert.deepEqual(shape.reasons, [
        CRL_REASONS.chainLength(4),
        CRL_REASONS.chainNames,
        CRL_REASONS.notPckCa,
        CRL_REASONS.pckCrlWrongCa('Intel SGX PCK Platform CA', 'Intel SGX PCK Certificate'),
      ]);
      const junk = '-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n';
      const garbage = reasonsOf(
        await verifier.verify(request({ pck_chain_pem: rot.pckPlatform.pem + junk + rot.root.pem })),
      );
      assert.ok(
        garbage.some((r) => r.startsWith('DCAP verification failed: ')),
        garbage.join('\n'),
      );
      assert.ok(
        garbage.some((r) => r.startsWith('CRL check failed: ')),
        garbage.join('\n'),
      );
    });

    it('debug TD', async () => {
      const r = reasonsOf(await verifier.verify(request({ td_attributes: Buffer.from('0100001000000000', 'hex') })));
      assert.ok(r.includes(QUOTE_REASONS.debug), r.join('\n'));
    });

    it('unknown MRTD, RTMR mismatch, release not in the allowlist', async () => {
      const mrtd = m48('something else');
      assert.deepEqual(reasonsOf(await verifier.verify(request({ mrtd }))), [
        POLICY_REASONS.unknownMrtd(mrtd.toString('hex'), subject.repo, subject.release_tag),
      ]);
      const rtmr1 = m48('tampered kernel');
      assert.deepEqual(reasonsOf(await verifier.verify(request({ rtmr1 }))), [
        POLICY_REASONS.rtmrMismatch(
          'RTMR1',
          subject.repo,
          subject.release_tag,
          (RTMR[1] as Buffer).toString('hex'),
          rtmr1.toString('hex'),
        ),
      ]);
      const other = { ...subject, release_tag: 'v9.9.9' };
      assert.deepEqual(reasonsOf(await verifier.verify(request({}, { subject: other }))), [
        POLICY_REASONS.releaseNotAllowed(subject.repo, 'v9.9.9'),
      ]);
      // RTMR3 is not pinned by the policy: any value is fine.
      assert.ok((await verifier.verify(request({ rtmr3: m48('runtime event') }))).ok);
    });

    it('OutOfDate inside and outside the grace window; the advisory deny-list', async () => {
      const ood = { tee_tcb_svn: TEST_PLATFORM.tee_tcb_svn_out_of_date };
      // The newer (UpToDate) level is dated 10 days before now: 30 days of grace still cover it.
      const v = await verifier.verify(request(ood));
      assert.ok(v.ok, JSON.stringify(v));
      assert.equal(v.tcb_status, 'OutOfDate');
      const r = await verifier.report(request(ood).quote, rot.now_ms);
      assert.equal(r.tcb_grace_start, new Date(Date.parse(rot.defaultTcbLevels()[0]?.tcbDate as string)).toISOString());
      assert.deepEqual(r.advisory_ids, ['INTEL-SA-00106', 'INTEL-SA-00837']);
      // 5 days of grace are over.
      const strict = make({
        policy: makePolicy({ tcb: { allowed_statuses: ['UpToDate', 'OutOfDate'], out_of_date_grace_days: 5 } }),
      });
      assert.deepEqual(reasonsOf(await strict.verify(request(ood))), [
        POLICY_REASONS.outOfGrace('OutOfDate', r.tcb_grace_start as string, 5),
      ]);
      // 30 days of grace, but 25 days later.
      const later = reasonsOf(await verifier.verify(request(ood, { now_ms: rot.now_ms + 25 * DAY })));
      assert.deepEqual(later, [POLICY_REASONS.outOfGrace('OutOfDate', r.tcb_grace_start as string, 30)]);
      // No policy: OutOfDate is not allowed at all.
      assert.deepEqual(reasonsOf(await make({ policy: null }).verify(request(ood))), [
        POLICY_REASONS.tcbNotAllowed('OutOfDate'),
      ]);
      // A denied advisory.
      const deny = make({ policy: makePolicy({ advisory_deny: ['INTEL-SA-00837'] }) });
      assert.deepEqual(reasonsOf(await deny.verify(request(ood))), [POLICY_REASONS.advisoryDenied('INTEL-SA-00837')]);
    });

    it('report_data bound to other keys or another nonce', async () => {
      const req = request();
      const otherKeys = { ...req, keyset: publicKeyset(generateKeyset()) };
      assert.deepEqual(reasonsOf(await verifier.verify(otherKeys)), [DCAP_REASONS.reportData]);
      const otherNonce = { ...req, nonce: newNonce() };
      assert.deepEqual(reasonsOf(await verifier.verify(otherNonce)), [DCAP_REASONS.reportData]);
      const badNonce = reasonsOf(await verifier.verify({ ...req, nonce: Buffer.alloc(3) }));
      assert.deepEqual(badNonce, ['cannot check the report_data binding: nonce must be 32 bytes']);
    });

    it('report_data made for one purpose (domain) never verifies for another, directly or through the router', async () => {
      const domains = Object.values(REPORT_DATA_DOMAINS);
      const router = new EvidenceRouter({ tdx: verifier });
      for (const made of domains) {
        const base = request();
        const quote = rot.quote({
          mrtd: MRTD,
          rtmr0: RTMR[0],
          rtmr1: RTMR[1],
          rtmr2: RTMR[2],
          rtmr3: RTMR[3],
          report_data: computeReportData(made, base.nonce, base.keyset),
        });
        for (const checked of domains) {
          const req = { ...base, quote, domain: checked };
          const direct = await verifier.verify(req);
          const routed = await router.verify(req);
          if (made === checked) {
            assert.ok(direct.ok && routed.ok, `${made}: ${JSON.stringify(direct)} ${JSON.stringify(routed)}`);
          } else {
            assert.deepEqual(reasonsOf(direct), [DCAP_REASONS.reportData], `${made} as ${checked}`);
            assert.deepEqual(reasonsOf(routed), [DCAP_REASONS.reportData], `${made} as ${checked} (router)`);
          }
        }
      }
      // No domain at all (a caller bug) is a failure, never a skipped check.
      const undomained = { ...request(), domain: undefined } as unknown as VerifyRequest;
      const r = reasonsOf(await verifier.verify(undomained));
      assert.deepEqual(r, ['cannot check the report_data binding: unknown report_data domain "undefined"']);
    });

    it('SGX quote where a TDX quote is required; truncated and oversized quotes', async () => {
      const sgx = await verifier.verify(request({ tee_type: 0 }));
      assert.deepEqual(reasonsOf(sgx), [QUOTE_REASONS.sgx]);
      assert.equal(sgx.evidence_type, 'unknown');
      const req = request();
      const truncated = reasonsOf(await verifier.verify({ ...req, quote: req.quote.subarray(0, 1000) }));
      assert.equal(truncated.length, 1);
      assert.match(truncated[0] as string, /^quote is truncated/);
      const big = Buffer.concat([req.quote, Buffer.alloc(QUOTE_MAX_BYTES)]);
      assert.deepEqual(reasonsOf(await verifier.verify({ ...req, quote: big })), [
        `quote is too large: ${big.length} bytes (max ${QUOTE_MAX_BYTES})`,
      ]);
    });

    it('collects every reason, not just the first', async () => {
      const r = reasonsOf(
        await make({ collateral: await rot.collateral({ pck_crl: 'garbage' }) }).verify(
          request(
            { td_attributes: Buffer.from('0100001000000000', 'hex'), mrtd: m48('x') },
            { keyset: publicKeyset(generateKeyset()) },
          ),
        ),
      );
      assert.ok(r.includes(QUOTE_REASONS.debug));
      assert.ok(r.includes(DCAP_REASONS.reportData));
      assert.ok(r.includes(POLICY_REASONS.unknownMrtd(m48('x').toString('hex'), subject.repo, subject.release_tag)));
      assert.ok(r.some((x) => x.startsWith('PCK CRL is malformed')));
      assert.ok(r.includes(DCAP_REASONS.dcap('Debug mode is enabled')));
      assert.ok(r.length >= 5, r.join('\n'));
    });

    it('collateral problems: the source fails, wrong FMSPC, malformed collateral', async () => {
      const failing: CollateralSource = { get: async () => Promise.reject(new Error('PCCS down')) };
      assert.deepEqual(reasonsOf(await make({ collateral: failing }).verify(request())), [
        DCAP_REASONS.collateral('PCCS down'),
      ]);
      const otherFmspc = await rot.collateral({ fmspc: '00906ED50000' });
      assert.deepEqual(reasonsOf(await make({ collateral: otherFmspc }).verify(request())), [
        DCAP_REASONS.collateral(`collateral is for FMSPC 00906ED50000, the quote's platform is ${rot.fmspc}`),
      ]);
      const tampered = await rot.collateral({
        tamper_tcb_info: (s) => s.replace('"tcbEvaluationDataNumber":17', '"tcbEvaluationDataNumber":18'),
      });
      assert.deepEqual(reasonsOf(await make({ collateral: tampered }).verify(request())), [
        DCAP_REASONS.dcap('Signature is invalid for tcb_info'),
      ]);
      const wrongSigner = await rot.collateral({ qe_identity_signer: rot.strayKey.private });
      assert.deepEqual(reasonsOf(await make({ collateral: wrongSigner }).verify(request())), [
        DCAP_REASONS.dcap('Signature is invalid for qe_identity'),
      ]);
    });

    it('the cached DCAP verdict is only used inside its validity window', async () => {
      const v = make();
      assert.ok((await v.verify(request())).ok);
      // Same platform, same collateral, but after the TCB info's nextUpdate: re-evaluated, and rejected.
      const r = reasonsOf(await v.verify(request({}, { now_ms: rot.now_ms + 29 * DAY + 1000 })));
      assert.ok(r.includes(DCAP_REASONS.dcap('TCBInfo expired')), r.join('\n'));
      // Back inside the window: accepted again.
      assert.ok((await v.verify(request())).ok);
    });

    it('repeated quotes from one platform are much faster than dcap-qvl', async (t) => {
      const v = make();
      const reqs = Array.from({ length: 40 }, () => request());
      assert.ok((await v.verify(reqs[0] as VerifyRequest)).ok);
      let t0 = performance.now();
      for (const req of reqs) assert.ok((await v.verify(req)).ok);
      const ours = (performance.now() - t0) / reqs.length;
      const qvl = QuoteVerifier.newWithRootCa(rot.root_der);
      t0 = performance.now();
      for (const req of reqs.slice(0, 10)) qvl.verify(req.quote, normalizeCollateral(collateral).qvl, rot.now_s);
      const theirs = (performance.now() - t0) / 10;
      t.diagnostic(`per quote: ours ${ours.toFixed(3)} ms (all checks, cached), dcap-qvl ${theirs.toFixed(3)} ms`);
      assert.ok(ours * 2 < theirs, `expected the cached path to be well ahead: ours ${ours} ms, dcap-qvl ${theirs} ms`);
    });
  });

  describe('production guard: the root of trust', () => {
    it("embeds Intel's SGX Root CA, the same one dcap-qvl ships", () => {
      assert.ok(INTEL_SGX_ROOT_CA_DER.equals(Buffer.from(qvlConstants.TRUSTED_ROOT_CA_DER)));
    });

    it('refuses a non-Intel root unless the override is set, and then logs loudly', () => {
      const source = new StaticCollateralSource(collateral);
      assert.throws(() => new DcapVerifier({ root_ca_der: rot.root_der, collateral: source }), {
        message: DCAP_REASONS.nonIntelRoot,
      });
      assert.throws(
        () => new DcapVerifier({ root_ca_der: rot.root_der, collateral: source, allow_non_intel_root: false }),
        { message: DCAP_REASONS.nonIntelRoot },
      );
      const l = new Logs();
      new DcapVerifier({ root_ca_der: rot.root_der, collateral: source, allow_non_intel_root: true, logger: l });
      assert.equal(l.lines.length, 1);
      assert.match(l.lines[0] as string, /NON-INTEL ROOT CA/);
      const l2 = new Logs();
      DcapVerifier.newWithRootCa(rot.root_der, { collateral: source, logger: l2 });
      assert.match(l2.lines[0] as string, /NON-INTEL ROOT CA/);
    });

    it('without a logger the warning goes to console.warn', (t) => {
      const warn = t.mock.method(console, 'warn', () => undefined);
      DcapVerifier.newWithRootCa(rot.root_der, { collateral: new StaticCollateralSource(collateral) });
      assert.equal(warn.mock.callCount(), 1);
      assert.match(String(warn.mock.calls[0]?.arguments[0]), /NON-INTEL ROOT CA/);
    });

    it("Intel's root (the default) needs no override and logs nothing; test quotes fail against it", async () => {
      const l = new Logs();
      const v = new DcapVerifier({ collateral: new StaticCollateralSource(collateral), logger: l });
      assert.ok(v.root_ca_der.equals(INTEL_SGX_ROOT_CA_DER));
      assert.equal(
        new DcapVerifier({
          root_ca_der: Buffer.from(INTEL_SGX_ROOT_CA_DER),
          collateral: new StaticCollateralSource(collateral),
          logger: l,
        }).root_ca_der.length > 0,
        true,
      );
      assert.deepEqual(l.lines, []);
      const r = reasonsOf(await v.verify(request({}, { subject: { ...subject, network: 'forge-1' } })));
      assert.ok(r.includes(CRL_REASONS.chainRoot), r.join('\n'));
      assert.ok(
        r.some((x) => x.startsWith('DCAP verification failed: ')),
        r.join('\n'),
      );
    });

    it('a root that is not a certificate is refused', () => {
      assert.throws(
        () => DcapVerifier.newWithRootCa(Buffer.from('nope'), { collateral: new StaticCollateralSource(collateral) }),
        /not an X.509 certificate/,
      );
    });
  });
});
