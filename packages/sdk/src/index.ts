// Public API of @easyenclave/sdk (browser-safe; verification loads ./verify.js lazily, Node-only).
export { EasyEnclave, type ConnectOptions, type EasyEnclaveOptions } from './client.js';
export { AppClient, type AppBody, type AppFetchInit, type AppRequestOptions } from './app-client.js';
export type { ConfidentialAppClient } from './confidential.js';
// Usage receipts of confidential requests, checked offline (shape, amount, signature): what `ee receipts verify` runs.
export { checkReceipt, type ReceiptCheck, type SignedReceipt, type UsageReceipt } from '@easyenclave/protocol/receipt';
export {
  CreatedReservationSchema,
  ReservationSchema,
  type CreateReservationParams,
  type CreatedReservation,
  type Reservation,
} from './reservations.js';
export type { CallOptions, BodyLike, SendRequest, TransportOptions } from './http.js';
export { DEFAULT_MAX_RETRIES, DEFAULT_TIMEOUT_MS, Transport } from './http.js';
// The low-level call every method is made of (for tools that speak the API directly, such as `ee`), and the
// wire schemas it validates answers with: one set for every client.
export { callJson, MicroUsd, type JsonRequest, type JsonResult } from './json.js';
export {
  AppAttestationSchema,
  AppDetailSchema,
  AppsSchema,
  AppSummarySchema,
  EvidenceSchema,
  HealthSchema,
  ResolveSchema,
  SelfAttestationSchema,
  type AppDetail,
  type AppList,
  type Evidence,
  type Health,
} from './schemas.js';
export {
  AccountPageSchema,
  AccountSummarySchema,
  type AccountSummary,
  AccountSchema,
  BalanceSchema,
  HistoryEntrySchema,
  HistoryPageSchema,
  PurchaseSchema,
  RotatedKeySchema,
  TransferSchema,
  type HistoryPage,
  type RotatedKey,
} from './ledger.js';
export {
  AbuseReportSchema,
  CreatedLeaseSchema,
  FinalizeSchema,
  LeasePeriodSchema,
  LeaseSchema,
  NodeDetailSchema,
  NodeListSchema,
  NodeSummarySchema,
  PayoutSchema,
  RegisteredNodeSchema,
  SettlementSchema,
  StakeResultSchema,
  UsageReportSchema,
  LeaseSummarySchema,
  LeasePageSchema,
  PayoutPageSchema,
  AbuseReportPageSchema,
  type NodeList,
  type UsageReport,
  type LeaseSummary,
  type LeasePage,
  type PayoutPage,
  type AbuseReportPage,
} from './market-schemas.js';
export type { TrustOptions, VerifiedEvidence, CollateralSourceLike } from './trust.js';
export type { AppAttestation, SelfAttestation, Resolved, AppSummary, Keyset } from './schemas.js';
export type {
  Amount,
  Balance,
  CreatedAccount,
  HistoryEntry,
  IdempotentOptions,
  Purchase,
  Replayable,
  Transfer,
} from './ledger.js';
export type { AbuseReportParams, CreateLeaseParams, Period, RegisterNodeParams, Tier } from './market.js';
export type {
  AbuseReport,
  CreatedLease,
  Finalized,
  Lease,
  LeasePeriod,
  NodeDetail,
  NodeSummary,
  Payout,
  RegisteredNode,
  Settlement,
  StakeResult,
} from './market-schemas.js';
export { MAX_JSON_BODY_BYTES, parseJsonExact, stringifyJson } from './json.js';
export {
  AttestationError,
  BadRequestError,
  ConflictError,
  ConnectionError,
  EasyEnclaveError,
  errorFromResponse,
  ForbiddenError,
  GatewayTimeoutError,
  InvalidResponseError,
  MAX_ERROR_BODY_BYTES,
  NotFoundError,
  type ResponseIssue,
  PaymentRequiredError,
  TimeoutError,
  UnauthorizedError,
  UnavailableError,
  type ErrorKind,
} from './errors.js';
export {
  openJobResult,
  newJobId,
  type Job,
  type JobResult,
  type JobOutput,
  type Placement,
  type PrivateJobOutcome,
  type PrivateJobParams,
  type SubmittedJob,
} from './jobs.js';
export { newDeploymentId, type Deployment, type DeployParams } from './deployments.js';
