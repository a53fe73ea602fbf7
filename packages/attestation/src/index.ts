// Public API of @easyenclave/attestation.
export type { AttestationSubject, EvidenceType, EvidenceVerifier, Measurements, QuoteProvider, Verdict, VerifyRequest } from './evidence.js';
export type { AgentKeys, Keyset } from './keyset.js';
export { canonicalJson, generateKeyset, keysetDigest, parseKeyset, publicKeyset, rawPublicKey } from './keyset.js';
export type { NetworkName, NetworkPolicy } from './network.js';
export { isKnownNetwork, NETWORKS, networkPolicy } from './network.js';
export {
  computeReportData,
  newNonce,
  NONCE_LENGTH,
  parseNonceHex,
  REPORT_DATA_DOMAIN,
  REPORT_DATA_LENGTH,
  reportDataMatches,
} from './report-data.js';
export type { SandboxQuote, SandboxQuoteProviderOptions } from './sandbox.js';
export {
  isSandboxQuote,
  parseSandboxQuote,
  SANDBOX_FORMAT,
  SANDBOX_MAGIC,
  SANDBOX_QUOTE_LENGTH,
  SANDBOX_QUOTE_MAX_BYTES,
  SANDBOX_REASONS,
  SandboxQuoteProvider,
  sandboxMeasurements,
  SandboxVerifier,
} from './sandbox.js';
export type { EvidenceRouterOptions } from './verifier.js';
export { EvidenceRouter, ROUTER_REASONS } from './verifier.js';
