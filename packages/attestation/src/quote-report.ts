// The detailed outcome of verifying one quote, and the empty report every verification starts from.
import type { PckCa } from './pck.js';
import type { Policy } from './policy.js';

/** The detailed outcome of verifying one quote (the offline CLI prints this). Hex is lowercase, FMSPC upper. */
export interface QuoteReport {
  ok: boolean;
  /** Every reason found; empty iff ok. */
  reasons: string[];
  evidence_type: 'tdx' | 'unknown';
  quote_version: number | null;
  tcb_status: string | null;
  advisory_ids: string[];
  tdx_module_tcb_status: string | null;
  /** Start of the OutOfDate grace window (see policy.ts), when the status is OutOfDate. */
  tcb_grace_start: string | null;
  mrtd: string | null;
  rtmr0: string | null;
  rtmr1: string | null;
  rtmr2: string | null;
  rtmr3: string | null;
  report_data: string | null;
  mrseam: string | null;
  mrsignerseam: string | null;
  tee_tcb_svn: string | null;
  td_attributes: string | null;
  xfam: string | null;
  fmspc: string | null;
  ppid: string | null;
  pce_id: string | null;
  pcesvn: number | null;
  pck_ca: PckCa | null;
  collateral_digest: string | null;
  evidence_hash: string | null;
  policy_version: string | null;
}

export function emptyReport(policy: Policy | undefined): QuoteReport {
  return {
    ok: false,
    reasons: [],
    evidence_type: 'unknown',
    quote_version: null,
    tcb_status: null,
    advisory_ids: [],
    tdx_module_tcb_status: null,
    tcb_grace_start: null,
    mrtd: null,
    rtmr0: null,
    rtmr1: null,
    rtmr2: null,
    rtmr3: null,
    report_data: null,
    mrseam: null,
    mrsignerseam: null,
    tee_tcb_svn: null,
    td_attributes: null,
    xfam: null,
    fmspc: null,
    ppid: null,
    pce_id: null,
    pcesvn: null,
    pck_ca: null,
    collateral_digest: null,
    evidence_hash: null,
    policy_version: policy?.version ?? null,
  };
}
