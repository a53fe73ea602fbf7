// The attestation interface. Every kind of evidence (sandbox today, TDX/DCAP next) is produced by a
// QuoteProvider on the agent and checked by an EvidenceVerifier on the control plane/SDK, so callers never
// branch on the evidence type themselves.
import type { Keyset } from './keyset.js';
import type { ReportDataDomain } from './report-data.js';

export type EvidenceType = 'tdx' | 'sandbox';

/** TDX measurement registers, lowercase hex, 48 bytes (96 hex chars) each. */
export interface Measurements {
  mrtd: string;
  rtmr0: string;
  rtmr1: string;
  rtmr2: string;
  rtmr3: string;
}

/** What the agent claims to be (from its `register` message); verifiers check evidence against it. */
export interface AttestationSubject {
  agent_id: string;
  repo: string;
  release_tag: string;
  app_name: string;
  network: string;
}

export interface VerifyRequest {
  subject: AttestationSubject;
  /** What the evidence must have been made for (report-data.ts): evidence of another domain never verifies. */
  domain: ReportDataDomain;
  /** The 32-byte nonce the verifier issued (never one echoed back by the agent). */
  nonce: Buffer;
  keyset: Keyset;
  quote: Buffer;
  /** Verification time, injected so policy (TCB dates, grace windows) is testable and replayable. */
  now_ms: number;
  /** True on sealed networks: only hardware evidence may be accepted. */
  sealed_required: boolean;
}

export type Verdict =
  | {
      ok: true;
      evidence_type: EvidenceType;
      measurements: Measurements;
      /** report_data taken from the verified quote. */
      report_data: Buffer;
      /** Hex SHA-256 of the quote (later: ‖ collateral digest), for the audit log. */
      evidence_hash: string;
      policy_version: string | null;
      tcb_status?: string;
      /** TDX: the platform's PPID (hex) from the PCK certificate, which identifies the machine (market node binding). */
      ppid?: string;
    }
  | {
      ok: false;
      evidence_type: EvidenceType | 'unknown';
      /** Every reason found, never empty. */
      reasons: string[];
    };

export interface EvidenceVerifier {
  verify(req: VerifyRequest): Promise<Verdict>;
}

export interface QuoteProvider {
  readonly evidence_type: EvidenceType;
  getQuote(report_data: Buffer): Promise<Buffer>;
}
