// The composite verifier the control plane and SDK use: routes a quote to the verifier for its format and
// guards the result, so a bug or exception in any one verifier fails closed instead of admitting an agent.
import type { EvidenceType, EvidenceVerifier, Verdict, VerifyRequest } from './evidence.js';
import { computeReportData, reportDataMatches } from './report-data.js';
import { isSandboxQuote, SANDBOX_REASONS } from './sandbox.js';

export interface EvidenceRouterOptions {
  /** Omit on production control planes that serve only sealed networks. */
  sandbox?: EvidenceVerifier;
  tdx?: EvidenceVerifier;
}

export const ROUTER_REASONS = {
  noTdx: 'no TDX verifier configured',
  noSandbox: 'no sandbox verifier configured',
  noReason: 'verifier rejected the evidence without giving a reason',
  malformedVerdict: 'verifier returned a malformed verdict',
  reportDataUnbound: 'verified report_data does not match the nonce and keyset',
} as const;

export class EvidenceRouter implements EvidenceVerifier {
  readonly #sandbox: EvidenceVerifier | undefined;
  readonly #tdx: EvidenceVerifier | undefined;

  constructor(opts: EvidenceRouterOptions) {
    this.#sandbox = opts.sandbox;
    this.#tdx = opts.tdx;
  }

  async verify(req: VerifyRequest): Promise<Verdict> {
    // Anything that is not a sandbox quote goes to TDX; the TDX verifier does its own header checks.
    const sandbox = isSandboxQuote(req.quote);
    const routed: EvidenceType | 'unknown' = sandbox ? 'sandbox' : 'unknown';
    const verifier = sandbox ? this.#sandbox : this.#tdx;
    if (verifier === undefined) {
      const reasons: string[] = [];
      if (sandbox && req.sealed_required) reasons.push(SANDBOX_REASONS.sealed);
      reasons.push(sandbox ? ROUTER_REASONS.noSandbox : ROUTER_REASONS.noTdx);
      return { ok: false, evidence_type: routed, reasons };
    }
    let verdict: Verdict;
    try {
      verdict = await verifier.verify(req);
    } catch (err) {
      return { ok: false, evidence_type: routed, reasons: [`verifier error: ${errorMessage(err)}`] };
    }
    return guard(req, verdict, routed);
  }
}

/** Re-checks the invariants every accepted verdict must satisfy, whichever verifier produced it. */
function guard(req: VerifyRequest, verdict: Verdict, routed: EvidenceType | 'unknown'): Verdict {
  if (typeof verdict !== 'object' || verdict === null || typeof verdict.ok !== 'boolean') {
    return { ok: false, evidence_type: routed, reasons: [ROUTER_REASONS.malformedVerdict] };
  }
  if (!verdict.ok) {
    const reasons = Array.isArray(verdict.reasons)
      ? verdict.reasons.filter((r) => typeof r === 'string' && r !== '')
      : [];
    return {
      ok: false,
      evidence_type: verdict.evidence_type,
      reasons: reasons.length > 0 ? reasons : [ROUTER_REASONS.noReason],
    };
  }
  // Sandbox evidence on a sealed network is refused here too, whatever the sandbox verifier said.
  if (req.sealed_required && (verdict.evidence_type !== 'tdx' || routed === 'sandbox')) {
    return { ok: false, evidence_type: verdict.evidence_type, reasons: [SANDBOX_REASONS.sealed] };
  }
  // The binding is checked against the value from the verified quote, never one the agent sent beside it.
  let bound: boolean;
  try {
    bound =
      Buffer.isBuffer(verdict.report_data) &&
      reportDataMatches(computeReportData(req.domain, req.nonce, req.keyset), verdict.report_data);
  } catch (err) {
    return { ok: false, evidence_type: verdict.evidence_type, reasons: [`verifier error: ${errorMessage(err)}`] };
  }
  if (!bound) return { ok: false, evidence_type: verdict.evidence_type, reasons: [ROUTER_REASONS.reportDataUnbound] };
  return verdict;
}

function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
