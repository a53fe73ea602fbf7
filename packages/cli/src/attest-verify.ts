// Local verification of attestation evidence (the control plane's own, or an app agent's), for
// `ee attestation verify`. Nothing the server says is trusted; each check is reported on its own:
//
//   nonce        the evidence answers the nonce we generated (not a replay of another answer)
//   report_data  SHA-512(domain ‖ nonce ‖ SHA-256(keyset)) equals the report_data inside the quote (and the
//                one the server reported beside it): the quote vouches for this keyset, now, for this purpose
//                (domain "ee-relay-v1" for an app's agent, "ee-self-v1" for the control plane itself)
//   quote        the quote itself: a TDX quote through the DCAP pipeline `ee quote verify` uses (chain to
//                Intel's root, collateral, CRLs, TCB status and the policy's TCB rules), or a sandbox quote
//                through SandboxVerifier (signature, declared measurements) — refused where TDX is required
//   policy       the measurements are in the policy's allowlist for the claimed repo@release_tag and network
import {
  computeReportData,
  DcapVerifier,
  evaluateMeasurements,
  isSandboxQuote,
  networkPolicy,
  parseKeyset,
  parseSandboxQuote,
  SANDBOX_REASONS,
  SandboxVerifier,
  type AttestationSubject,
  type CollateralSource,
  type Keyset,
  type Measurements,
  type Policy,
  type PolicyInput,
  type ReportDataDomain,
} from '@easyenclave/attestation';
import type { Evidence } from '@easyenclave/sdk';
import type { RootOverride } from './root-ca.js';

export interface VerifyEvidenceInput {
  evidence: Evidence;
  /** What the evidence must be for: an app's agent answering a relayed nonce, or the control plane itself. */
  domain: ReportDataDomain;
  /** The nonce we sent (or, for a saved file, the one the user vouches for). */
  nonce: Buffer;
  policy: Policy;
  /** The network the evidence is checked for: its policy entry, and whether hardware evidence is required. */
  network: string;
  /** Refuse sandbox evidence even on an unsealed network. */
  require_tdx: boolean;
  /** Collateral for TDX quotes (a file or a PCCS); unused for sandbox evidence. */
  collateral: () => CollateralSource;
  root: RootOverride | undefined;
  now_ms: number;
}

export interface Check {
  ok: boolean;
  /** Empty when ok. */
  reasons: string[];
}

export interface EvidenceVerdict {
  ok: boolean;
  evidence_type: 'tdx' | 'sandbox';
  /** True for sandbox evidence: a software key signed it; it proves nothing about the machine. */
  sandbox: boolean;
  subject: AttestationSubject;
  sealed_required: boolean;
  nonce: string;
  /** The measurements read from the quote (null if it could not be parsed). */
  measurements: Measurements | null;
  tcb_status: string | null;
  advisory_ids: string[];
  policy_version: string;
  evidence_hash: string | null;
  checks: { nonce: Check; report_data: Check; quote: Check; policy: Check };
  reasons: string[];
  warnings: string[];
}

const check = (reasons: string[]): Check => ({ ok: reasons.length === 0, reasons: [...new Set(reasons)] });

export const SANDBOX_WARNING =
  'SANDBOX evidence: signed by a software key, it proves nothing about the hardware (development only)';

export async function verifyEvidence(input: VerifyEvidenceInput): Promise<EvidenceVerdict> {
  const { evidence: ev, nonce, policy } = input;
  const quote = Buffer.from(ev.quote, 'base64');
  const sealed_required = input.require_tdx || (networkPolicy(input.network)?.sealed ?? true);
  const subject: AttestationSubject = {
    agent_id: ev.agent_id ?? 'control-plane',
    app_name: ev.app ?? 'control-plane',
    repo: ev.repo,
    release_tag: ev.release_tag,
    network: input.network,
  };

  const nonceReasons =
    ev.nonce.toLowerCase() === nonce.toString('hex')
      ? []
      : ['the evidence answers another nonce than the one sent (a replayed or mixed-up answer)'];

  const bindReasons: string[] = [];
  let keyset: Keyset | undefined;
  try {
    keyset = parseKeyset(ev.keyset);
  } catch (err) {
    bindReasons.push((err as Error).message);
  }
  const expected = keyset === undefined ? undefined : computeReportData(input.domain, nonce, keyset).toString('hex');
  if (expected !== undefined && expected !== ev.report_data.toLowerCase())
    bindReasons.push('report_data reported beside the quote does not match the nonce and keyset');

  const quoteReasons: string[] = [];
  const claimedSandbox = ev.evidence_type === 'sandbox' || ev.sandbox;
  if (claimedSandbox !== isSandboxQuote(quote))
    quoteReasons.push(
      `evidence_type says ${ev.evidence_type} (sandbox: ${ev.sandbox}) but the quote is ${isSandboxQuote(quote) ? 'a sandbox quote' : 'not a sandbox quote'}`,
    );

  let measurements: Measurements | null = null;
  let policyInput: PolicyInput | null = null;
  let quoteReportData: string | null = null;
  let tcb_status: string | null = null;
  let advisory_ids: string[] = [];
  let evidence_hash: string | null = null;
  // The verifiers need a keyset to run; without one the binding check above has already failed.
  const ks: Keyset = keyset ?? { hpke_public_key: '', receipt_public_key: '' };

  if (isSandboxQuote(quote)) {
    const v = await new SandboxVerifier().verify({
      subject,
      domain: input.domain,
      nonce,
      keyset: ks,
      quote,
      now_ms: input.now_ms,
      sealed_required,
    });
    try {
      const q = parseSandboxQuote(quote);
      measurements = q.measurements;
      quoteReportData = q.report_data.toString('hex');
    } catch {
      // reported by the verifier
    }
    if (!v.ok) quoteReasons.push(...v.reasons.filter((r) => r !== SANDBOX_REASONS.reportDataMismatch));
    else evidence_hash = v.evidence_hash;
    if (measurements !== null) {
      policyInput = {
        ...measurements,
        td_attributes: null,
        xfam: null,
        tcb_status: null,
        advisory_ids: [],
        tcb_grace_start: null,
      };
    }
  } else {
    const dcap = new DcapVerifier({ collateral: input.collateral(), policy, ...(input.root?.verifier_options ?? {}) });
    const report = await dcap.report(quote, input.now_ms, { subject, domain: input.domain, nonce, keyset: ks });
    quoteReportData = report.report_data;
    tcb_status = report.tcb_status;
    advisory_ids = report.advisory_ids;
    evidence_hash = report.evidence_hash;
    if (report.mrtd !== null) {
      measurements = {
        mrtd: report.mrtd,
        rtmr0: report.rtmr0 ?? '',
        rtmr1: report.rtmr1 ?? '',
        rtmr2: report.rtmr2 ?? '',
        rtmr3: report.rtmr3 ?? '',
      };
      policyInput = report;
    }
    // The pipeline's reasons include the binding and the allowlist; those are reported under their own checks.
    quoteReasons.push(...report.reasons);
  }

  if (quoteReportData !== null && expected !== undefined && quoteReportData.toLowerCase() !== expected) {
    bindReasons.push('report_data in the quote does not match the nonce and keyset');
  } else if (quoteReportData === null && expected !== undefined) {
    bindReasons.push('report_data could not be read from the quote');
  }
  if (
    measurements !== null &&
    ev.measurements !== undefined &&
    JSON.stringify(ev.measurements) !== JSON.stringify(measurements)
  ) {
    quoteReasons.push('measurements reported beside the quote differ from the ones in the quote');
  }

  const policyReasons =
    policyInput === null
      ? ['no measurements: the quote could not be parsed']
      : evaluateMeasurements(policy, policyInput, subject);
  const separate = new Set([...policyReasons, ...bindReasons]);
  const checks = {
    nonce: check(nonceReasons),
    report_data: check(bindReasons),
    quote: check(quoteReasons.filter((r) => !separate.has(r) && !/report_data/i.test(r))),
    policy: check(policyReasons),
  };
  const reasons = [
    ...new Set([
      ...checks.nonce.reasons,
      ...checks.report_data.reasons,
      ...checks.quote.reasons,
      ...checks.policy.reasons,
    ]),
  ];
  return {
    ok: reasons.length === 0,
    evidence_type: isSandboxQuote(quote) ? 'sandbox' : 'tdx',
    sandbox: isSandboxQuote(quote),
    subject,
    sealed_required,
    nonce: nonce.toString('hex'),
    measurements,
    tcb_status,
    advisory_ids,
    policy_version: policy.version,
    evidence_hash,
    checks,
    reasons,
    warnings: isSandboxQuote(quote) ? [SANDBOX_WARNING] : [],
  };
}
