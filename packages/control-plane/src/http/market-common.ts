// Shared pieces of the market's HTTP routes: dependencies, money and period views, row-writing operations.
import { formatUsd } from '../ledger/amount.js';
import type { ApplyContext, LedgerOp } from '../ledger-store/batch.js';
import type { Market } from '../market/market.js';
import type { Reservations } from '../market/reservations.js';
import type { LeaseRow, PeriodRow } from '../market/ops.js';
import type { MarketAbuseReportsTable, MarketPayoutsTable } from '../market/store/schema.js';
import { parsePeriod, periodIso } from '../market/period.js';
import { authHooks, type AuthHooks } from './auth-hooks.js';
import { apiFailure } from './error-catalogue.js';
import type { Tx } from '../store/database.js';
import type { IdempotencyKeys, IdempotentRun, StoredResponse } from './idempotency.js';

export interface MarketRoutesOptions {
  market: Market;
  idempotency: IdempotencyKeys;
  admin_token: string | undefined;
  launcher_token: string | undefined;
  uptime_token: string | undefined;
  /** Reservations (docs/confidential.md); an authorised abuse report ends the node's open ones at once. */
  reservations?: Reservations;
}

export const marketAuth = (o: MarketRoutesOptions): AuthHooks =>
  authHooks({ db: o.market.deps.ledger.db, now: o.market.deps.ledger.now, admin_token: o.admin_token });

export const tags = ['market'];

/** Money as `{name}_micro_usd` (JSON integer) and `{name}_usd` ("$12.50"). */
export function money<N extends string>(
  name: N,
  micro: bigint | number,
): Record<`${N}_micro_usd`, number> & Record<`${N}_usd`, string> {
  const b = BigInt(micro);
  const out = {} as Record<`${N}_micro_usd`, number> & Record<`${N}_usd`, string>;
  Object.assign(out, { [`${name}_micro_usd`]: Number(b), [`${name}_usd`]: formatUsd(b) });
  return out;
}

/** GET /v1/payouts/{id} and the payouts list. */
export const payoutView = (p: MarketPayoutsTable) => ({
  payout_id: p.id,
  provider: p.provider,
  ...money('amount', p.amount),
  status: p.status,
  reference: p.reference,
  created_at: iso(p.created_ms)!,
  resolved_at: iso(p.resolved_ms),
});

/** An abuse report, in its own answers and in the list. */
export const abuseView = (a: MarketAbuseReportsTable, period_ms: number) => ({
  report_id: a.id,
  node_id: a.node_id,
  lease_id: a.lease_id,
  period: periodIso(a.period, period_ms),
  period_index: a.period,
  reason: a.reason,
  status: a.status,
  filed_at: iso(a.filed_ms)!,
  authorized_at: iso(a.authorized_ms),
});

export const iso = (ms: number | null | undefined) =>
  ms === null || ms === undefined ? null : new Date(ms).toISOString();

/** A period named by its start (ISO-8601) or its index; `param` names the field in the error. */
export function periodParam(market: Market, text: string, param = 'period'): number {
  const p = parsePeriod(text, market.timing.period_ms);
  if (p === undefined)
    throw apiFailure(
      'invalid_period',
      `a period is its start in ISO-8601 (e.g. ${periodIso(1, market.timing.period_ms).replace('1970', '2026')}) aligned to EE_SETTLEMENT_PERIOD, or its index`,
      { param },
    );
  return p;
}

export function periodView(p: PeriodRow, period_ms: number) {
  return {
    lease_id: p.lease_id,
    period: periodIso(p.period, period_ms),
    period_index: p.period,
    node_id: p.node_id,
    provider: p.provider,
    user: p.user_id,
    app: p.app_name,
    from: new Date(p.from_ms).toISOString(),
    to: new Date(p.to_ms).toISOString(),
    ...money('amount', p.amount),
    status: p.status,
    reasons: p.reasons === null ? [] : (JSON.parse(p.reasons) as string[]),
    finalized_at: iso(p.finalized_ms),
  };
}

/** A ledger operation that only writes market rows (no money), so its idempotency record commits with them. */
export function rowsOp(
  run: IdempotentRun,
  build: (ctx: ApplyContext) => {
    response: StoredResponse;
    write?: (tx: Tx) => Promise<void>;
  },
): LedgerOp<StoredResponse> {
  return {
    accounts: [],
    transfers: [],
    apply(ctx) {
      const { response, write } = build(ctx);
      if (write) ctx.writes.after.push(write);
      run.record(ctx.writes, ctx.now_ms, response);
      return response;
    },
  };
}

/** A lease as the lists show it; the lease's own view adds its first period, periods and money totals. */
export function leaseSummary(l: LeaseRow, period_ms: number) {
  return {
    lease_id: l.id,
    user: l.user_id,
    app: l.app_name,
    node_id: l.node_id,
    vcpus: l.vcpus,
    ...money('price_per_vcpu_hour', l.price_micro),
    periods: l.periods,
    periods_locked: l.periods_locked,
    current_period: periodIso(l.last_period, period_ms),
    status: l.status,
    end_reason: l.end_reason,
    created_at: iso(l.created_ms)!,
    ended_at: iso(l.ended_ms),
  };
}
