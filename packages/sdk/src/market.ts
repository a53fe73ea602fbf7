// Market calls against the control plane's contract (docs/market.md, http/market-*.ts):
//   POST   /v1/nodes/register                 (provider key; the admin with `provider`) → 201 node + node_token once
//   GET    /v1/nodes                          (admin: every node; a provider key: its own)
//   GET    /v1/nodes/{node}                   (admin or the node's provider)
//   POST   /v1/nodes/{node}/stake | unstake   {amount | amount_micro_usd}  (unstake: default everything)
//   POST   /v1/leases                         (user key; the admin with `user`) {app, vcpus, periods?}
//   GET    /v1/leases/{id}, DELETE /v1/leases/{id}   (the user or the admin)
//   GET    /v1/leases, /v1/payouts, /v1/abuse/reports   cursor-paged lists, newest first (see each function)
//   GET    /v1/settlements/{period}, POST /v1/settlements/{period}/finalize   (admin)
//   POST   /v1/abuse/reports                  (EE_LAUNCHER_TOKEN); GET /v1/abuse/reports/{id}, POST …/authorize (admin)
//   POST   /v1/payouts, POST /v1/payouts/{id}/confirm | cancel (admin); GET /v1/payouts/{id} (admin or provider)
// Every POST carries one Idempotency-Key for all the SDK's attempts (calls.ts); amounts as in ledger.ts. As there,
// bad arguments and a missing credential throw a TypeError synchronously, before any request.
import {
  bearer,
  defined,
  get,
  ownedResource,
  post,
  paged,
  principal,
  segment,
  type Auth,
  type IdempotentOptions,
  type Replayable,
} from './calls.js';
import type { CallOptions, Transport } from './http.js';
import { amountFields, type Amount } from './ledger.js';
import {
  AbuseReportPageSchema,
  AbuseReportSchema,
  LeasePageSchema,
  PayoutPageSchema,
  CreatedLeaseSchema,
  FinalizeSchema,
  LeaseSchema,
  NodeDetailSchema,
  NodeListSchema,
  PayoutSchema,
  RegisteredNodeSchema,
  SettlementSchema,
  StakeResultSchema,
  type AbuseReport,
  type CreatedLease,
  type Finalized,
  type Lease,
  type NodeDetail,
  type NodeSummary,
  type Payout,
  type RegisteredNode,
  type Settlement,
  type StakeResult,
} from './market-schemas.js';

export type Tier = 'premium' | 'standard' | 'economy';

/** A settlement period: its start (ISO-8601 string or Date, aligned to EE_SETTLEMENT_PERIOD) or its index. */
export type Period = string | number | Date;

export interface RegisterNodeParams {
  region: string;
  tier: Tier;
  vcpus: number;
  /** The posted price, fixed for every lease made while it is posted: "$0.10" or micro-USD. */
  price_per_vcpu_hour: Amount;
  /** Default 1 (machine-months = vCPUs × months). */
  capacity_months?: number;
  /** Default sandbox-1 (agents bound by the node token); sealed networks need `ppid`. */
  network?: string;
  /** The platform's PPID (32 hex), on sealed networks. */
  ppid?: string;
  name?: string;
  /** Only with the admin token: the provider account the node belongs to. */
  provider?: string;
}

export interface CreateLeaseParams {
  app: string;
  vcpus: number;
  /** Total periods, the prorated first one included; omitted = renewed until cancelled or unfunded. */
  periods?: number;
  /** Only with the admin token: the user account that pays. */
  user?: string;
}

export interface AbuseReportParams {
  node: string;
  /** Must be a lease on that node. */
  lease?: string;
  /** Default: the current period. */
  period?: Period;
  reason: string;
}

const admin = (auth: Auth) => bearer(auth.admin_token, 'adminToken');
const launcher = (auth: Auth) => bearer(auth.launcher_token, 'launcherToken');

function checkPeriod(p: Period): string | number {
  if (p instanceof Date) {
    if (Number.isNaN(p.getTime())) throw new TypeError('period is an invalid Date');
    return p.toISOString();
  }
  if (typeof p === 'number') {
    if (!Number.isSafeInteger(p) || p < 0) throw new TypeError('a period index must be a non-negative integer');
    return p;
  }
  if (typeof p !== 'string' || p === '')
    throw new TypeError('period must be an ISO-8601 period start, a Date or an index');
  return p;
}

const periodPath = (p: Period) => `/v1/settlements/${encodeURIComponent(String(checkPeriod(p)))}`;
const nodePath = (node: string) => `/v1/nodes/${segment(node, 'node')}`;
const leaseById = ownedResource((id) => `/v1/leases/${segment(id, 'lease id')}`, LeaseSchema);
const reportPath = (id: string) => `/v1/abuse/reports/${segment(id, 'report id')}`;
const payoutPath = (id: string) => `/v1/payouts/${segment(id, 'payout id')}`;

// ---- Nodes and stake ----

/** The answer's `node_token` is shown this once (null on sealed networks, and in an idempotent replay). */
export function registerNode(
  t: Transport,
  auth: Auth,
  p: RegisterNodeParams,
  o: IdempotentOptions = {},
): Promise<Replayable<RegisteredNode>> {
  const { price_per_vcpu_hour, ...rest } = p;
  return post(
    t,
    '/v1/nodes/register',
    { ...rest, ...amountFields(price_per_vcpu_hour, 'price_per_vcpu_hour') },
    principal(auth),
    o,
    RegisteredNodeSchema,
  );
}

export function node(t: Transport, auth: Auth, id: string, o: CallOptions = {}): Promise<NodeDetail> {
  return get(t, nodePath(id), principal(auth), o, NodeDetailSchema);
}

/** Nodes, newest first, every page: all (admin token), or with `mine` the provider's own (its API key). */
export function nodes(
  t: Transport,
  auth: Auth,
  p: { limit?: number; mine?: boolean } = {},
  o: CallOptions = {},
): AsyncGenerator<NodeSummary, void, undefined> {
  const { mine, ...page } = p;
  return paged(t, '/v1/nodes', mine === true ? principal(auth) : admin(auth), page, o, NodeListSchema, (r) => ({
    rows: r.nodes,
    next_cursor: r.next_cursor,
  }));
}

/** Leases, newest first: the caller's own (a user's; a provider's are those on its nodes), or all (admin). */
export function leases(t: Transport, auth: Auth, p: { limit?: number } = {}, o: CallOptions = {}) {
  return paged(t, '/v1/leases', principal(auth), p, o, LeasePageSchema, (r) => ({
    rows: r.leases,
    next_cursor: r.next_cursor,
  }));
}

/** Payouts, newest first: a provider's own (its API key), or all (admin). */
export function payouts(t: Transport, auth: Auth, p: { limit?: number } = {}, o: CallOptions = {}) {
  return paged(t, '/v1/payouts', principal(auth), p, o, PayoutPageSchema, (r) => ({
    rows: r.payouts,
    next_cursor: r.next_cursor,
  }));
}

/** Abuse reports, newest first, optionally of one node (admin). */
export function abuseReports(t: Transport, auth: Auth, p: { limit?: number; node?: string } = {}, o: CallOptions = {}) {
  const query: Record<string, string> = p.node === undefined ? {} : { node: p.node };
  return paged(t, '/v1/abuse/reports', admin(auth), { ...p, query }, o, AbuseReportPageSchema, (r) => ({
    rows: r.reports,
    next_cursor: r.next_cursor,
  }));
}

/** Moves `amount` from the provider's earnings to its stake (held per provider, covering all its nodes). */
export function stake(
  t: Transport,
  auth: Auth,
  node_id: string,
  amount: Amount,
  o: IdempotentOptions = {},
): Promise<Replayable<StakeResult>> {
  return post(t, `${nodePath(node_id)}/stake`, amountFields(amount), principal(auth), o, StakeResultSchema);
}

/** Back to earnings; `amount` omitted = everything staked. */
export function unstake(
  t: Transport,
  auth: Auth,
  node_id: string,
  amount?: Amount,
  o: IdempotentOptions = {},
): Promise<Replayable<StakeResult>> {
  return post(
    t,
    `${nodePath(node_id)}/unstake`,
    amount === undefined ? {} : amountFields(amount),
    principal(auth),
    o,
    StakeResultSchema,
  );
}

// ---- Leases ----

export function createLease(
  t: Transport,
  auth: Auth,
  p: CreateLeaseParams,
  o: IdempotentOptions = {},
): Promise<Replayable<CreatedLease>> {
  const body = defined({ app: p.app, vcpus: p.vcpus, periods: p.periods, user: p.user });
  return post(t, '/v1/leases', body, principal(auth), o, CreatedLeaseSchema);
}

export function lease(t: Transport, auth: Auth, id: string, o: CallOptions = {}): Promise<Lease> {
  return leaseById.read(t, auth, id, o);
}

/** Stops renewals; the period already locked settles as usual. */
export function cancelLease(t: Transport, auth: Auth, id: string, o: CallOptions = {}): Promise<Lease> {
  // Cancelling is idempotent on the server (a second DELETE returns the ended lease).
  return leaseById.end(t, auth, id, o);
}

// ---- Settlement (admin) ----

export function settlement(t: Transport, auth: Auth, period: Period, o: CallOptions = {}): Promise<Settlement> {
  return get(t, periodPath(period), admin(auth), o, SettlementSchema);
}

/** Finalizes every locked lease-period of an ended period (409 `period_not_ended` before); safe to repeat. */
export function finalizeSettlement(
  t: Transport,
  auth: Auth,
  period: Period,
  o: IdempotentOptions = {},
): Promise<Replayable<Finalized>> {
  return post(t, `${periodPath(period)}/finalize`, undefined, admin(auth), o, FinalizeSchema);
}

// ---- Abuse reports ----

/** Files a report (launcher token); it fails periods and lowers trust only once the admin authorises it. */
export function reportAbuse(
  t: Transport,
  auth: Auth,
  p: AbuseReportParams,
  o: IdempotentOptions = {},
): Promise<Replayable<AbuseReport>> {
  const body = {
    node: p.node,
    reason: p.reason,
    ...(p.lease !== undefined ? { lease: p.lease } : {}),
    ...(p.period !== undefined ? { period: checkPeriod(p.period) } : {}),
  };
  return post(t, '/v1/abuse/reports', body, launcher(auth), o, AbuseReportSchema);
}

export function abuseReport(t: Transport, auth: Auth, id: string, o: CallOptions = {}): Promise<AbuseReport> {
  return get(t, reportPath(id), admin(auth), o, AbuseReportSchema);
}

export function authorizeAbuseReport(
  t: Transport,
  auth: Auth,
  id: string,
  o: IdempotentOptions = {},
): Promise<Replayable<AbuseReport>> {
  return post(t, `${reportPath(id)}/authorize`, undefined, admin(auth), o, AbuseReportSchema);
}

// ---- Payouts (admin): provider earnings held PENDING until confirmed (paid out) or cancelled (back) ----

export function createPayout(
  t: Transport,
  auth: Auth,
  p: { provider: string; amount: Amount; reference?: string },
  o: IdempotentOptions = {},
): Promise<Replayable<Payout>> {
  const body = {
    provider: p.provider,
    ...amountFields(p.amount),
    ...(p.reference !== undefined ? { reference: p.reference } : {}),
  };
  return post(t, '/v1/payouts', body, admin(auth), o, PayoutSchema);
}

/** A payout: the admin's, or a provider's own (its API key). */
export function payout(t: Transport, auth: Auth, id: string, o: CallOptions = {}): Promise<Payout> {
  return get(t, payoutPath(id), principal(auth), o, PayoutSchema);
}

export function resolvePayout(
  t: Transport,
  auth: Auth,
  id: string,
  confirm: boolean,
  o: IdempotentOptions = {},
): Promise<Replayable<Payout>> {
  return post(t, `${payoutPath(id)}/${confirm ? 'confirm' : 'cancel'}`, undefined, admin(auth), o, PayoutSchema);
}
