// The one error catalogue of the API (Fastify's `createError` style): every error code the control plane
// answers with, its HTTP status, its type (a short machine category) and a default message. Cores (ledger,
// market) refuse with codes only (ledger/refusal.ts); routes throw `apiFailure(code)`; the error handler
// (error-handler.ts) and the raw paths (http-errors.ts) turn either into `{error:{code,message,type,param?}}`.
import type { TransferRefusalCode } from '../ledger/refusal.js';
import type { MarketRefusalCode } from '../market/ops.js';
import type { JobRefusalCode } from '../jobs/ops.js';

export const ERROR_TYPES = [
  'invalid_request',
  'authentication',
  'permission',
  'not_found',
  'conflict',
  'payment_required',
  'rate_limit',
  'unavailable',
  'internal',
] as const;
export type ErrorType = (typeof ERROR_TYPES)[number];

export interface CatalogueEntry {
  readonly status: number;
  readonly type: ErrorType;
  readonly message: string;
  /**
   * Other statuses the code is answered with in one named context (e.g. `app_offline`: 403 to an external
   * proxy's auth_request, 503 + Retry-After on the relay, where waiting helps). Nothing else may override.
   */
  readonly also?: readonly number[];
}

const e = (status: number, type: ErrorType, message: string, also?: readonly number[]): CatalogueEntry =>
  also ? { status, type, message, also } : { status, type, message };

export const ERROR_CATALOGUE = {
  // 400: the request itself is wrong.
  bad_request: e(400, 'invalid_request', 'the request is malformed'),
  invalid_request: e(400, 'invalid_request', 'the request is not valid'),
  invalid_amount: e(400, 'invalid_request', 'the amount is not valid'),
  invalid_cursor: e(400, 'invalid_request', 'cursor is not one this API returned'),
  invalid_period: e(400, 'invalid_request', 'the period is not valid'),
  invalid_nonce: e(400, 'invalid_request', 'query parameter "nonce" is required: 64 hex characters (32 random bytes)'),
  invalid_agent: e(
    400,
    'invalid_request',
    'query parameter "agent" must be an agent id (8-64 characters of A-Z a-z 0-9 _ -)',
  ),
  invalid_idempotency_key: e(400, 'invalid_request', 'Idempotency-Key must be 1 to 255 printable ASCII characters'),
  idempotency_key_reused: e(
    400,
    'invalid_request',
    'this Idempotency-Key was used with a different request; use a new key',
  ),
  unknown_network: e(400, 'invalid_request', 'unknown network'),
  ppid_required: e(400, 'invalid_request', 'this network is sealed: register the node with its PPID'),
  price_too_high: e(400, 'invalid_request', 'the largest stake or lock of this price is not representable'),
  amount_too_large: e(400, 'invalid_request', 'the transfer would push an account past 2^53 - 1 micro-USD'),
  same_account: e(400, 'invalid_request', 'from and to must be different accounts'),
  transfer_refused: e(400, 'invalid_request', 'the ledger refused the transfer'),
  job_too_large: e(400, 'invalid_request', 'no node offers that many vCPUs or that much memory'),
  invalid_env_key: e(400, 'invalid_request', 'the env is sealed to a key no connected launcher holds'),
  // 401, 402, 403: who is asking, and whether they may.
  unauthorized: e(401, 'authentication', 'missing or invalid credentials'),
  insufficient_funds: e(402, 'payment_required', 'the source account does not have enough available credits'),
  forbidden: e(403, 'permission', 'these credentials may not do this'),
  admin_disabled: e(403, 'permission', 'this endpoint needs the admin token, and EE_ADMIN_TOKEN is not configured'),
  endpoint_disabled: e(403, 'permission', 'the token this endpoint needs is not configured'),
  not_a_provider: e(403, 'permission', 'nodes are registered and paid out by provider accounts'),
  not_a_user: e(403, 'permission', 'leases are paid from user accounts'),
  content_type_refused: e(403, 'permission', '/v1/proxy/{app} does not serve documents or scripts on the API origin'),
  app_unattested: e(403, 'permission', 'the app is not attested'),
  app_expired: e(403, 'permission', 'the app has an expired registration'),
  registration_expired: e(403, 'permission', "the app's registration has expired"),
  not_attested: e(403, 'permission', 'no agent of the app holds a valid attestation'),
  app_offline: e(503, 'unavailable', 'the app has no connected agent', [403]),
  app_draining: e(503, 'unavailable', 'the app has only draining agents', [403]),
  app_unhealthy: e(503, 'unavailable', 'the app is not passing health checks', [403]),
  // 404: nothing by that name (or not the caller's).
  not_found: e(404, 'not_found', 'no such route'),
  unknown_account: e(404, 'not_found', 'no such account'),
  unknown_app: e(404, 'not_found', 'no such app'),
  unknown_agent: e(404, 'not_found', 'no such connected agent of this app'),
  unknown_node: e(404, 'not_found', 'no such node'),
  unknown_lease: e(404, 'not_found', 'no such lease (or not yours)'),
  unknown_report: e(404, 'not_found', 'no such abuse report'),
  unknown_payout: e(404, 'not_found', 'no such payout'),
  unknown_job: e(404, 'not_found', 'no such job (or not yours)'),
  unknown_reservation: e(404, 'not_found', 'no such reservation (or not yours)'),
  unknown_deployment: e(404, 'not_found', 'no such deployment (or not yours)'),
  // 409: the request is fine; the state it meets refuses it.
  sandbox_clock: e(
    409,
    'conflict',
    'this control plane runs the sandbox settlement clock (EE_SANDBOX_SETTLEMENT_PERIOD_MS): sealed networks are refused',
  ),
  transfer_conflict: e(409, 'conflict', 'this transfer id was already used for a different transfer'),
  lease_conflict: e(409, 'conflict', 'this Idempotency-Key already created a different lease'),
  reservation_conflict: e(409, 'conflict', 'this Idempotency-Key already created a different reservation'),
  report_conflict: e(409, 'conflict', 'this Idempotency-Key already filed a different report'),
  idempotency_key_in_use: e(
    409,
    'conflict',
    'a request with this Idempotency-Key is still being processed; retry later',
  ),
  node_banned: e(409, 'conflict', 'the node is banned'),
  nonce_in_use: e(409, 'conflict', 'this nonce is in use'),
  ppid_taken: e(409, 'conflict', 'another node registered this PPID'),
  too_many_nodes: e(409, 'conflict', 'the provider has the most active nodes allowed'),
  open_periods: e(409, 'conflict', 'the provider has locked periods not yet settled'),
  cooldown: e(409, 'conflict', 'unstake is not possible yet (EE_UNSTAKE_COOLDOWN)'),
  nothing_staked: e(409, 'conflict', 'no stake is held'),
  insufficient_stake: e(409, 'conflict', 'the amount exceeds the stake held'),
  no_eligible_node: e(409, 'conflict', 'no eligible node serves this app', [503]),
  payout_resolved: e(409, 'conflict', 'the payout is already resolved'),
  period_not_ended: e(409, 'conflict', 'the period has not ended yet'),
  sealed_key_gone: e(409, 'conflict', 'no agent holds the key this request is sealed to: verify again and re-seal'),
  no_node_with_capacity: e(
    409,
    'conflict',
    'no eligible node has that many vCPUs and that much memory free now',
    [503],
  ),
  job_conflict: e(409, 'conflict', 'this Idempotency-Key already created a different job'),
  job_finished: e(409, 'conflict', 'the job already ended'),
  invalid_transition: e(409, 'conflict', 'the job cannot take this step in its state'),
  deployment_ended: e(409, 'conflict', 'the deployment is stopped or stopping'),
  env_not_pending: e(409, 'conflict', 'the job waits for no env (only a retried job on a new node does)'),
  logs_unavailable: e(409, 'conflict', "the job's logs are not available (it ended: its result holds the tails)"),
  // 408, 413, 415: heads and bodies.
  request_timeout: e(408, 'invalid_request', 'the request did not arrive in time'),
  body_too_large: e(413, 'invalid_request', 'the request body exceeds the limit'),
  unsupported_media_type: e(415, 'invalid_request', 'the request body must be application/json'),
  // 5xx: nothing the caller did; say whether waiting helps (Retry-After).
  internal: e(500, 'internal', 'internal error'),
  busy: e(503, 'rate_limit', 'too many requests in flight; retry later'),
  too_many_connections: e(503, 'rate_limit', 'too many open connections; retry later'),
  shutting_down: e(503, 'unavailable', 'the control plane is shutting down; retry'),
  store_unavailable: e(503, 'unavailable', 'the database is unavailable; retry later'),
  quote_unavailable: e(503, 'unavailable', 'the control plane could not produce a quote'),
  agent_unavailable: e(503, 'unavailable', 'the agent cannot answer now'),
  sealed_key_unavailable: e(503, 'unavailable', 'the agent holding the sealed key is busy or unhealthy; retry'),
  // The proxy's and the tunnel's own refusals (tunnel/router.ts reasons, proxy/refusals.ts).
  no_agent: e(503, 'unavailable', 'no agent of the app is connected'),
  agent_draining: e(503, 'unavailable', 'the agents of the app are draining'),
  unhealthy: e(503, 'unavailable', 'no agent of the app is passing health checks'),
  agent_overloaded: e(503, 'unavailable', 'no agent could take the request now'),
  too_many_handshakes: e(503, 'unavailable', 'too many agents connecting at once'),
  draining: e(503, 'unavailable', 'control plane is shutting down'),
  agent_disconnected: e(502, 'unavailable', 'the agent disconnected before answering'),
  agent_timeout: e(504, 'unavailable', 'the agent did not answer in time'),
  launcher_unavailable: e(503, 'unavailable', "the job's launcher cannot be reached now"),
} as const satisfies Record<string, CatalogueEntry>;

export type ErrorCode = keyof typeof ERROR_CATALOGUE;

// Every code a core can refuse with has an entry (a compile error names any that does not).
type MissingCoreCodes = Exclude<TransferRefusalCode | MarketRefusalCode | JobRefusalCode, ErrorCode>;
const everyCoreCodeCatalogued: [MissingCoreCodes] extends [never] ? true : MissingCoreCodes = true;
void everyCoreCodeCatalogued;

export function isErrorCode(code: string): code is ErrorCode {
  return Object.hasOwn(ERROR_CATALOGUE, code);
}

/** The type of a status outside the catalogue (the proxy's and the tunnel's own codes, fastify's errors). */
export function typeForStatus(status: number): ErrorType {
  if (status === 401) return 'authentication';
  if (status === 402) return 'payment_required';
  if (status === 403) return 'permission';
  if (status === 404) return 'not_found';
  if (status === 409) return 'conflict';
  if (status === 429) return 'rate_limit';
  if (status < 500) return 'invalid_request';
  if (status === 500) return 'internal';
  return 'unavailable';
}

/** The type of any error body the control plane writes: the catalogue's when it has the code at that status. */
export function errorTypeOf(code: string, status: number): ErrorType {
  if (isErrorCode(code)) {
    const entry: CatalogueEntry = ERROR_CATALOGUE[code];
    if (entry.status === status) return entry.type;
  }
  return typeForStatus(status);
}

export interface FailureExtra {
  /** The request field the error is about (validation errors). */
  param?: string;
  /** Sent as Retry-After: waiting this long may help. */
  retry_after_s?: number;
  /** Only a status the catalogue lists for the code (`also`). */
  status?: number;
}

/** An API error to throw from a hook or a handler; the error handler answers it. */
export class ApiFailure extends Error {
  private constructor(
    readonly code: string,
    readonly status: number,
    message: string,
    readonly extra: FailureExtra,
  ) {
    super(message);
    this.name = 'ApiFailure';
  }

  get type(): ErrorType {
    return errorTypeOf(this.code, this.status);
  }

  static of(code: ErrorCode, message?: string, extra: FailureExtra = {}): ApiFailure {
    const entry: CatalogueEntry = ERROR_CATALOGUE[code];
    const status = extra.status ?? entry.status;
    if (status !== entry.status && !entry.also?.includes(status))
      throw new Error(`error catalogue: ${code} is never answered with status ${status}`);
    return new ApiFailure(code, status, message ?? entry.message, extra);
  }

  /** An error another layer (the tunnel's relay) already decided, with its own status and code. */
  static passThrough(e: { status: number; code: string; message: string; retry_after_s?: number }): ApiFailure {
    return new ApiFailure(
      e.code,
      e.status,
      e.message,
      e.retry_after_s === undefined ? {} : { retry_after_s: e.retry_after_s },
    );
  }
}

export const apiFailure = (code: ErrorCode, message?: string, extra?: FailureExtra): ApiFailure =>
  ApiFailure.of(code, message, extra);

export interface ErrorBody {
  error: { code: string; message: string; type: ErrorType; param?: string };
}

export function errorBodyOf(code: string, message: string, status: number, param?: string): ErrorBody {
  const type = errorTypeOf(code, status);
  return { error: param === undefined ? { code, message, type } : { code, message, type, param } };
}
