// Options of the DCAP verifier and of the stateless verifyQuote.
import type { AttestationSubject } from './evidence.js';
import type { CollateralSource } from './collateral-source.js';
import type { Keyset } from './keyset.js';
import type { Policy } from './policy.js';
import type { ReportDataDomain } from './report-data.js';

export interface DcapLogger {
  warn(msg: string): void;
}

export interface RootOptions {
  root_ca_der?: Buffer;
  /** Accept a root other than Intel's. For tests only; logged loudly. */
  allow_non_intel_root?: boolean;
  logger?: DcapLogger;
  /** Entries per cache (default 1024). */
  cache_size?: number;
}

export interface DcapVerifierOptions extends RootOptions {
  collateral: CollateralSource;
  policy?: Policy;
}

export interface VerifyQuoteOptions extends RootOptions {
  policy?: Policy;
  /** With a policy: the measurement allowlist is checked only when the subject is given. */
  subject?: AttestationSubject;
  /** With any of domain, nonce and keyset, the report_data binding is checked (and needs all three). */
  domain?: ReportDataDomain;
  nonce?: Buffer;
  keyset?: Keyset;
}
