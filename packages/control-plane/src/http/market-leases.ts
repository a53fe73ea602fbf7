// Leases over HTTP (user key): create (routed to the cheapest eligible node, first period locked), show, cancel.
import { randomBytes } from 'node:crypto';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { networkPolicy } from '@easyenclave/attestation';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import type { Market } from '../market/market.js';
import { createLeaseOp, type LeaseRow } from '../market/ops.js';
import { periodIso } from '../market/period.js';
import { getLease, leasePeriods, leaseTotals } from '../market/store/reads.js';
import { cancelLease } from '../market/store/writes.js';
import { mayActFor, principalOf } from './auth-hooks.js';
import { apiFailure } from './error-catalogue.js';
import { errorResponse } from './idempotency.js';
import { leaseSummary, marketAuth, money, periodView, tags, type MarketRoutesOptions } from './market-common.js';
import { CreatedLeaseView, IdParams, LeaseBody, LeaseView } from './market-schemas.js';
import { BEARER, errorResponses, IdempotencyHeaders } from './schemas.js';

/** Lease-periods listed in a lease's view (the newest); the totals always cover every period. */
export const MAX_LEASE_PERIODS_SHOWN = 500;
/** Candidate nodes a lease creation re-checks under their row locks, best first. */
const MAX_LEASE_CANDIDATES = 16;

export async function leaseView(market: Market, l: LeaseRow) {
  const [periods, sums] = await Promise.all([
    leasePeriods(market.db, l.id, MAX_LEASE_PERIODS_SHOWN),
    leaseTotals(market.db, l.id),
  ]);
  const total = (...statuses: string[]) =>
    sums.filter((r) => statuses.includes(r.status)).reduce((a, r) => a + r.amount, 0n);
  const pm = market.timing.period_ms;
  return {
    ...leaseSummary(l, pm),
    first_period: periodIso(l.first_period, pm),
    ...money('locked', total('locked')),
    ...money('paid', total('posted')),
    ...money('refunded', total('voided', 'expired')),
    lease_periods_total: sums.reduce((a, r) => a + r.count, 0),
    lease_periods: periods.map((p) => periodView(p, pm)),
  };
}

export async function marketLeaseRoutes(base: FastifyInstance, opts: MarketRoutesOptions): Promise<void> {
  const app = base.withTypeProvider<ZodTypeProvider>();
  const { market, idempotency } = opts;
  const auth = marketAuth(opts);

  /** The lease named in the path, if it is the caller's (or the caller is the admin); 404 otherwise. */
  const ownLease = async (req: FastifyRequest, id: string): Promise<LeaseRow> => {
    const lease = await getLease(market.db, id);
    if (!lease || !mayActFor(principalOf(req), lease.user_id)) throw apiFailure('unknown_lease');
    return lease;
  };

  app.post(
    '/v1/leases',
    {
      onRequest: auth.caller,
      schema: {
        tags,
        summary: 'Create a lease on the cheapest eligible node and lock its first (prorated) period',
        security: BEARER,
        headers: IdempotencyHeaders,
        body: LeaseBody,
        response: { 201: CreatedLeaseView, ...errorResponses(400, 401, 402, 403, 404, 409) },
      },
    },
    async (req, reply) => {
      const p = principalOf(req);
      const body = req.body;
      const user = p.kind === 'admin' ? body.user : p.id;
      if (user === undefined)
        throw apiFailure('invalid_request', 'user is required when the admin token creates a lease', {
          param: 'user',
        });
      if (p.kind === 'identity' && body.user !== undefined && body.user !== p.id)
        throw apiFailure('forbidden', 'an API key can only create leases for itself');
      if (!user.startsWith('user:')) throw apiFailure('not_a_user');
      return idempotency.handle(req, reply, p.id, async (run) => {
        const lease_id = run.derivedId('lease_', () => `lease_${randomBytes(8).toString('hex')}`).slice(0, 22);
        // Routing runs after a stored response would have been replayed; with no candidate the operation still
        // runs, so a retry whose key record has expired finds its lease instead of "no eligible node".
        const all = await market.candidates(body.app);
        // Under the sandbox clock no lease lands on a sealed network's node (one registered before it was on).
        const ranked =
          market.deps.config.sandbox_settlement_period_ms === undefined
            ? all
            : all.filter((n) => networkPolicy(n.network)?.sealed === false);
        return market.deps.ledger.submit(
          createLeaseOp(
            {
              lease_id,
              user_id: user,
              app_name: body.app,
              vcpus: body.vcpus,
              periods: body.periods ?? null,
              candidates: ranked.slice(0, MAX_LEASE_CANDIDATES).map((n) => ({ id: n.id, provider: n.provider })),
            },
            market.timing,
            (node_id) => market.liveEligible(node_id, body.app),
            (r, ctx) => {
              const out = r.ok
                ? {
                    status: 201,
                    body: {
                      lease_id,
                      user,
                      app: body.app,
                      node_id: r.lease.node_id,
                      vcpus: body.vcpus,
                      periods: r.lease.periods,
                      status: 'active',
                      ...money('price_per_vcpu_hour', r.lease.price_micro),
                      lock: periodView(r.period, market.timing.period_ms),
                    },
                  }
                : errorResponse(r);
              run.record(ctx.writes, ctx.now_ms, out);
              return out;
            },
          ),
          req.id,
        );
      });
    },
  );

  const leaseSchema = (summary: string) => ({
    tags,
    summary,
    security: BEARER,
    params: IdParams,
    response: { 200: LeaseView, ...errorResponses(400, 401, 404) },
  });

  app.get(
    '/v1/leases/:id',
    { onRequest: auth.caller, schema: leaseSchema('A lease with its newest lease-periods and money totals') },
    async (req) => leaseView(market, await ownLease(req, req.params.id)),
  );

  /** Stops renewals. The period already locked settles as usual (the service runs until it ends). */
  app.delete(
    '/v1/leases/:id',
    { onRequest: auth.caller, schema: leaseSchema('Cancel a lease: renewals stop; the locked period settles') },
    async (req) => {
      const lease = await ownLease(req, req.params.id);
      if (lease.status === 'active') await cancelLease(market.db, lease.id, market.now);
      return leaseView(market, (await getLease(market.db, lease.id))!);
    },
  );
}
