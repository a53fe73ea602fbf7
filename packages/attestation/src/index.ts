// Public API of @easyenclave/attestation.
export { certificateDer } from './x509.js';
export type {
  AttestationSubject,
  EvidenceType,
  EvidenceVerifier,
  Measurements,
  QuoteProvider,
  Verdict,
  VerifyRequest,
} from './evidence.js';
export type { AgentKeys, Keyset } from './keyset.js';
export { canonicalJson, generateKeyset, keysetDigest, parseKeyset, publicKeyset, rawPublicKey } from './keyset.js';
export type { NetworkName, NetworkPolicy } from './network.js';
export { isKnownNetwork, NETWORKS, networkPolicy } from './network.js';
export type { ReportDataDomain } from './report-data.js';
export {
  computeReportData,
  isReportDataDomain,
  newNonce,
  NONCE_LENGTH,
  parseNonceHex,
  REPORT_DATA_DOMAINS,
  REPORT_DATA_LENGTH,
  reportDataMatches,
} from './report-data.js';
export type { Bytes32 } from './possession.js';
export {
  newSessionId,
  POP_DOMAIN,
  POP_MESSAGE_LENGTH,
  POP_SIGNATURE_LENGTH,
  popMessage,
  POSSESSION_REASONS,
  SESSION_ID_LENGTH,
  signPossession,
  verifyPossession,
} from './possession.js';
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
// TDX / DCAP verification (issue 3).
export type { CrlDates, RevocationCheck } from './crl.js';
export { checkRevocation, CRL_REASONS, crlTimeReasons } from './crl.js';
export type {
  Collateral,
  CollateralSource,
  DcapCollateral,
  IsvTcbLevel,
  PccsCollateralSourceOptions,
  PccsLogger,
  QeIdentity,
  QvlCollateral,
  TcbInfo,
  TcbLevel,
} from './collateral.js';
export {
  collateralToJson,
  FileCollateralSource,
  INTEL_PCS_URL,
  isCollateral,
  normalizeCollateral,
  PccsCollateralSource,
  rawJsonMembers,
  StaticCollateralSource,
} from './collateral.js';
export type { DcapLogger, DcapVerifierOptions, QuoteReport, VerifyQuoteOptions } from './dcap.js';
export {
  DCAP_REASONS,
  DcapVerifier,
  INTEL_SGX_ROOT_CA_DER,
  matchIsvTcbLevel,
  matchPlatformTcbLevel,
  verifyQuote,
} from './dcap.js';
export type { PckCa, PckInfo, SgxExtension } from './pck.js';
export {
  parsePckCertificate,
  parseSgxExtension,
  PCK_PLATFORM_CA_CN,
  PCK_PROCESSOR_CA_CN,
  SGX_EXTENSION_OID,
  SGX_OIDS,
} from './pck.js';
export type { AcceptableTcbStatus, Policy, PolicyInput, TcbPolicy } from './policy.js';
export {
  DEFAULT_TCB_POLICY,
  evaluateMeasurements,
  evaluatePolicy,
  evaluateTcb,
  loadPolicy,
  OUT_OF_DATE_STATUSES,
  parsePolicy,
  POLICY_REASONS,
  PolicySchema,
  TCB_STATUSES,
} from './policy.js';
export type { QeReport, QuoteSignatureData, TdReport, TdxQuote } from './quote.js';
export {
  headerReasons,
  INTEL_QE_VENDOR_ID,
  isDebugTd,
  parseQeReport,
  parseTdxQuote,
  QUOTE_MAX_BYTES,
  QUOTE_REASONS,
  QuoteParseError,
  tdReportReasons,
} from './quote.js';
// configfs-tsm quote provider (agents and the control plane on TDX).
export type { ConfigfsQuoteProviderOptions } from './configfs-tsm.js';
export { ConfigfsQuoteProvider, DEFAULT_TSM_REPORT_PATH, hasConfigfsTsm, TSM_TDX_PROVIDER } from './configfs-tsm.js';
