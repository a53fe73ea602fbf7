// TDX quote verification with Intel DCAP (DESIGN §3). Order of checks, cheapest first; every step fails
// closed and every reason is collected where later steps can still run:
//   1. size and header (quote.ts): ≤ 64 KiB, v4/v5, ECDSA-P256, TDX, Intel QE vendor id; TD attributes
//      (debug TD, reserved bits, SEPT_VE_DISABLE), MRSERVICETD
//   2. report_data binding: computeReportData(domain, nonce, keyset) equals the quote's report_data (constant time)
//   3. measurement allowlist (policy.ts), if a policy is set
//   4. DCAP signature chain with collateral: @phala/dcap-qvl (PCK chain to the root, TCB info and QE
//      identity signatures and dates, QE report signature and hash, QE identity policy, quote signature,
//      TCB level) — plus our own check of the quote signature with node:crypto
//   5. our own chain-shape and CRL checks (crl.ts), which dcap-qvl 0.3.9 skips or gets wrong
//   6. TCB: TDX module identity (also skipped by dcap-qvl), then the policy's allowed statuses, OutOfDate
//      grace window and advisory deny-list
//   → accept, with evidence_hash = SHA-256(quote ‖ collateral digest) for the audit log.
//
// The pipeline is shared by the stateless verifyQuote below (a fresh DcapCore per call) and by DcapVerifier
// (dcap-verifier.ts), which keeps one DcapCore and its caches (dcap-core.ts) for its lifetime.
import type { AttestationSubject } from './evidence.js';
import { normalizeCollateral } from './collateral-normalize.js';
import type { Collateral } from './collateral-normalize.js';
import type { DcapCollateral } from './collateral-schema.js';
import { checkRoot, DcapCore } from './dcap-core.js';
import type { VerifyQuoteOptions } from './dcap-options.js';
import { DCAP_REASONS } from './dcap-reasons.js';
import { tcbStep } from './dcap-tcb.js';
import { errorText, sha256 } from './hash-and-errors.js';
import type { Keyset } from './keyset.js';
import type { PckInfo } from './pck.js';
import { evaluateMeasurements, evaluateTcb, tcbPolicyOf } from './policy.js';
import type { Policy } from './policy.js';
import { parseTdxQuote, QuoteParseError, tdReportReasons } from './quote.js';
import type { TdxQuote } from './quote.js';
import { emptyReport } from './quote-report.js';
import type { QuoteReport } from './quote-report.js';
import { computeReportData, reportDataMatches } from './report-data.js';
import type { ReportDataDomain } from './report-data.js';

export interface PipelineContext {
  policy?: Policy;
  subject?: AttestationSubject;
  /** What the evidence must be for; without it a binding check fails (closed). */
  domain?: ReportDataDomain;
  nonce?: Buffer;
  keyset?: Keyset;
  /** True when the caller requires the binding (the verifier always does). */
  bind: boolean;
}

export async function pipeline(
  core: DcapCore,
  quote: Buffer,
  getCollateral: (pck: PckInfo) => Promise<Collateral>,
  now_ms: number,
  ctx: PipelineContext,
): Promise<QuoteReport> {
  const report = emptyReport(ctx.policy);
  const reasons: string[] = [];
  const finish = (): QuoteReport => {
    report.reasons = [...new Set(reasons)];
    if (report.reasons.length === 0 && report.evidence_type !== 'tdx') report.reasons = ['quote was not verified'];
    report.ok = report.reasons.length === 0;
    return report;
  };

  // 1. Size and header.
  let q: TdxQuote;
  try {
    q = parseTdxQuote(quote);
  } catch (err) {
    if (err instanceof QuoteParseError) {
      reasons.push(...err.reasons);
      report.evidence_type = err.tdx ? 'tdx' : 'unknown';
    } else {
      reasons.push(`malformed quote: ${errorText(err)}`);
    }
    return finish();
  }
  report.evidence_type = 'tdx';
  report.quote_version = q.version;
  const hex = (b: Buffer): string => b.toString('hex');
  Object.assign(report, {
    mrtd: hex(q.td.mrtd),
    rtmr0: hex(q.td.rtmr0),
    rtmr1: hex(q.td.rtmr1),
    rtmr2: hex(q.td.rtmr2),
    rtmr3: hex(q.td.rtmr3),
    report_data: hex(q.td.report_data),
    mrseam: hex(q.td.mrseam),
    mrsignerseam: hex(q.td.mrsignerseam),
    tee_tcb_svn: hex(q.td.tee_tcb_svn),
    td_attributes: hex(q.td.td_attributes),
    xfam: hex(q.td.xfam),
  });
  reasons.push(...tdReportReasons(q.td));

  // 2. report_data binding.
  if (ctx.bind || ctx.nonce !== undefined || ctx.keyset !== undefined || ctx.domain !== undefined) {
    try {
      const expected = computeReportData(ctx.domain as ReportDataDomain, ctx.nonce as Buffer, ctx.keyset as Keyset);
      if (!reportDataMatches(expected, q.td.report_data)) reasons.push(DCAP_REASONS.reportData);
    } catch (err) {
      reasons.push(`cannot check the report_data binding: ${errorText(err)}`);
    }
  }

  // 3. Measurement allowlist.
  if (ctx.policy !== undefined && ctx.subject !== undefined)
    reasons.push(...evaluateMeasurements(ctx.policy, report, ctx.subject));

  // 4. DCAP signature chain with collateral.
  let pck: PckInfo;
  try {
    pck = core.pck(q);
  } catch (err) {
    reasons.push(DCAP_REASONS.pck(errorText(err)));
    return finish();
  }
  Object.assign(report, {
    fmspc: pck.fmspc.toString('hex').toUpperCase(),
    ppid: hex(pck.ppid),
    pce_id: hex(pck.pce_id),
    pcesvn: pck.pcesvn,
    pck_ca: pck.ca,
  });
  let collateral: Collateral;
  try {
    collateral = await getCollateral(pck);
  } catch (err) {
    reasons.push(DCAP_REASONS.collateral(errorText(err)));
    return finish();
  }
  report.collateral_digest = collateral.digest;
  report.evidence_hash = sha256(quote, Buffer.from(collateral.digest, 'hex')).toString('hex');
  const dcap = core.dcap(quote, q, collateral, now_ms);
  reasons.push(...dcap.reasons);

  // 5. Our own chain-shape and CRL checks.
  try {
    reasons.push(...(await core.revocation(q, collateral, now_ms)));
  } catch (err) {
    reasons.push(`CRL check failed: ${errorText(err)}`);
  }

  // 6. TCB status and policy.
  if (dcap.status !== null) {
    const tcb = tcbStep(q, pck, collateral, { status: dcap.status, advisory_ids: dcap.advisory_ids });
    reasons.push(...tcb.reasons);
    report.tcb_status = tcb.status;
    report.advisory_ids = tcb.advisory_ids;
    report.tdx_module_tcb_status = tcb.tdx_module_status;
    report.tcb_grace_start = tcb.grace_start;
    reasons.push(...evaluateTcb(tcbPolicyOf(ctx.policy), report, now_ms));
  }
  return finish();
}

/** Fail closed: an unexpected exception anywhere in the pipeline becomes a rejection with its message. */
export async function guarded(policy: Policy | undefined, run: () => Promise<QuoteReport>): Promise<QuoteReport> {
  try {
    return await run();
  } catch (err) {
    const report = emptyReport(policy);
    report.reasons = [`verifier error: ${errorText(err)}`];
    return report;
  }
}

/**
 * Verifies one quote against the given collateral at `now_s` (unix seconds) and returns the detailed report.
 * Self-contained: no state survives the call (the offline CLI's entry point).
 */
export async function verifyQuote(
  quote: Buffer,
  collateral: DcapCollateral | Collateral,
  now_s: number,
  opts: VerifyQuoteOptions = {},
): Promise<QuoteReport> {
  const core = new DcapCore(checkRoot(opts), 16);
  const ctx: PipelineContext = { bind: false };
  if (opts.policy !== undefined) ctx.policy = opts.policy;
  if (opts.subject !== undefined) ctx.subject = opts.subject;
  if (opts.domain !== undefined) ctx.domain = opts.domain;
  if (opts.nonce !== undefined) ctx.nonce = opts.nonce;
  if (opts.keyset !== undefined) ctx.keyset = opts.keyset;
  return guarded(opts.policy, () =>
    pipeline(core, quote, async () => normalizeCollateral(collateral), now_s * 1000, ctx),
  );
}
