// Public API of @easyenclave/sdk (browser-safe; verification loads ./verify.js lazily, Node-only).
export { EasyEnclave, type ConnectOptions, type EasyEnclaveOptions } from './client.js';
export { AppClient, type AppBody, type AppFetchInit, type AppRequestOptions } from './app-client.js';
export type { CallOptions, BodyLike } from './http.js';
export { DEFAULT_MAX_RETRIES, DEFAULT_TIMEOUT_MS } from './http.js';
export type { TrustOptions, VerifiedEvidence, CollateralSourceLike } from './trust.js';
export type { AppAttestation, SelfAttestation, Resolved, AppSummary, Keyset } from './schemas.js';
export type { Amount, Balance, CreatedAccount, IdempotentOptions, Purchase, Replayable, Transfer } from './ledger.js';
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
  type Placement,
  type PrivateJobOutcome,
  type PrivateJobParams,
  type SubmittedJob,
} from './jobs.js';
