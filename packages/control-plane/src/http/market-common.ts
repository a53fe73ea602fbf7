// Shared pieces of the market's HTTP routes: dependencies, error handling, body parsing, money and period views.
import type { FastifyReply, FastifyRequest } from 'fastify';
import { bearerToken, tokensEqual } from '../auth.js';
import { formatUsd } from '../ledger/amount.js';
import type { ApplyContext, LedgerOp } from '../ledger-store/batch.js';
import type { Market } from '../market/market.js';
import type { PeriodRow } from '../market/ops.js';
import { parsePeriod, periodIso } from '../market/period.js';
import type { IdempotencyKeys, IdempotentRun, StoredResponse } from './idempotency.js';
import { BadRequest } from './ledger-views.js';
import type { PrincipalDeps } from './principal.js';
import { apiError } from './routes.js';

export interface MarketRoutesOptions {
  market: Market;
  idempotency: IdempotencyKeys;
  admin_token: string | undefined;
  launcher_token: string | undefined;
  uptime_token: string | undefined;
}

export const principalDeps = (o: MarketRoutesOptions): PrincipalDeps => ({
  db: o.market.deps.ledger.db,
  admin_token: o.admin_token,
});

export { guard, parse } from './route-guard.js';

/** A service token route (launcher, uptime reporter): 403 when the token is not configured, 401 when wrong. */
export function requireServiceToken(
  req: FastifyRequest,
  reply: FastifyReply,
  expected: string | undefined,
  name: string,
): boolean {
  if (expected === undefined) {
    void apiError(reply, 403, 'endpoint_disabled', `this endpoint needs ${name}, and it is not configured`);
    return false;
  }
  const token = bearerToken(req.headers.authorization);
  if (token === null || !tokensEqual(token, expected)) {
    void apiError(reply, 401, 'unauthorized', `missing or invalid Authorization: Bearer <${name}>`);
    return false;
  }
  return true;
}

export const err = (status: number, code: string, message: string): StoredResponse => ({
  status,
  body: { error: { code, message } },
});

/** Money as `{name}_micro_usd` (JSON integer) and `{name}_usd` ("$12.50"). */
export function money(name: string, micro: bigint | number): Record<string, number | string> {
  const b = BigInt(micro);
  return { [`${name}_micro_usd`]: Number(b), [`${name}_usd`]: formatUsd(b) };
}

export const iso = (ms: number | null | undefined) =>
  ms === null || ms === undefined ? null : new Date(ms).toISOString();

export function periodParam(market: Market, text: string): number {
  const p = parsePeriod(text, market.timing.period_ms);
  if (p === undefined)
    throw new BadRequest(
      'invalid_period',
      `a period is its start in ISO-8601 (e.g. ${periodIso(1, market.timing.period_ms).replace('1970', '2026')}) aligned to EE_SETTLEMENT_PERIOD, or its index`,
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
    from: iso(p.from_ms),
    to: iso(p.to_ms),
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
    write?: (tx: import('kysely').Transaction<any>) => Promise<void>;
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

export const PRINTABLE = /^[^\p{Cc}]*$/u;
