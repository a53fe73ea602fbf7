// TDX quote verification with Intel DCAP (DESIGN §3). This module keeps the `@easyenclave/attestation/dcap`
// import path; the code lives in focused modules:
//   dcap-pipeline.ts  the ordered checks, and the stateless verifyQuote (the offline CLI's entry point)
//   dcap-verifier.ts  DcapVerifier, the EvidenceVerifier with long-lived caches
//   dcap-core.ts      per-root state: dcap-qvl, the verdict and CRL caches, the root CA check
//   dcap-tcb.ts       TCB level matching and the TDX module identity
//   dcap-reasons.ts, dcap-options.ts, quote-report.ts, intel-root-ca.ts
export type { DcapLogger, DcapVerifierOptions, VerifyQuoteOptions } from './dcap-options.js';
export { DCAP_REASONS } from './dcap-reasons.js';
export { verifyQuote } from './dcap-pipeline.js';
export { matchIsvTcbLevel, matchPlatformTcbLevel } from './dcap-tcb.js';
export { DcapVerifier } from './dcap-verifier.js';
export { INTEL_SGX_ROOT_CA_DER } from './intel-root-ca.js';
export type { QuoteReport } from './quote-report.js';
