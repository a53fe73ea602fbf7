// What a client trusts when it verifies evidence itself (types only, so the core stays browser-safe; the
// checks are in verify.ts, loaded on first use).

/** A CollateralSource of @easyenclave/attestation (e.g. a PccsCollateralSource you configured yourself). */
export interface CollateralSourceLike {
  get(fmspc: string, ca: string): Promise<unknown>;
}

export interface TrustOptions {
  /**
   * The attestation policy, in the control plane's format (EE_ALLOWLIST_ASSET: version, measurements per
   * repo@release_tag, tcb, advisory_deny, networks). Required for TDX evidence; applied to sandbox evidence's
   * measurements too when given.
   */
  policy?: unknown;
  /** DCAP collateral JSON (dcap-qvl getCollateral shape), for offline verification; or a collateral source. */
  collateral?: unknown;
  /** PCCS to fetch collateral from (default Intel's PCS). Ignored when `collateral` is given. */
  pccs_url?: string;
  /** Root CA (DER bytes or a PEM string) instead of Intel's SGX Root CA. Tests only: needs allow_non_intel_root. */
  root_ca?: Uint8Array | string;
  allow_non_intel_root?: boolean;
  /**
   * Accept sandbox (software, development-only) evidence. Default: only when the client was configured with a
   * sandbox network (`network: 'sandbox-1'`); never inferred from what the control plane says.
   */
  allow_sandbox?: boolean;
  /** Pin what the evidence must be for (the control plane reports these; pinning checks them). */
  expect?: { repo?: string; release_tag?: string; agent_id?: string };
  /** Verification time (TCB dates, CRLs), default Date.now(). */
  now_ms?: () => number;
}

/** What verification established. */
export interface VerifiedEvidence {
  evidence_type: 'tdx' | 'sandbox';
  /** The agent verified (absent for the control plane itself). */
  agent_id?: string;
  app?: string;
  repo: string;
  release_tag: string;
  network: string;
  /** From the verified quote. */
  measurements: { mrtd: string; rtmr0: string; rtmr1: string; rtmr2: string; rtmr3: string };
  /** The per-boot keys the quote vouches for (bound into report_data). */
  keyset: { hpke_public_key: string; receipt_public_key: string };
  policy_version: string | null;
  tcb_status?: string;
  evidence_hash: string;
  nonce: string;
  verified_at_ms: number;
}
