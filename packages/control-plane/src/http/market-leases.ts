// Leases over HTTP (user key): create (routed to the cheapest eligible node, first period locked), show, cancel.
import { randomBytes } from 'node:crypto';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { z } from 'zod';
import { AppName } from '@easyenclave/protocol';
import { IDENTITY_ID_PATTERN } from '../ledger/chart.js';
import type { Market } from '../market/market.js';
import { createLeaseOp, type LeaseRow, type PeriodRow } from '../market/ops.js';
import { periodIso } from '../market/period.js';
import { BadRequest } from './ledger-views.js';
import { err, guard, iso, money, parse, periodView, principalDeps, type MarketRoutesOptions } from './market-common.js';
import { mayActFor, principalOf, type Principal } from './principal.js';
import { apiError } from './routes.js';

const LeaseBody = z.strictObject({
  /** The app (or workload) the lease pays for: its traffic goes to the lease's node. */
  app: AppName,
  vcpus: z.number().int().min(1).max(4096),
  /** Periods to run (the prorated first one included); omitted = renew until cancelled or unfunded. */
  periods: z.number().int().min(1).max(100_000).optional(),
  /** The admin creates leases on behalf of a user. */
  user: z.string().regex(IDENTITY_ID_PATTERN).optional(),
});

/** Lease-periods listed in a lease's view (the newest); the totals always cover every period. */
export const MAX_LEASE_PERIODS_SHOWN = 500;

async function leaseView(market: Market, l: LeaseRow) {
  const periods = (
    (await market.db
      .selectFrom('market_lease_periods')
      .selectAll()
      .where('lease_id', '=', l.id)
      .orderBy('period', 'desc')
      .limit(MAX_LEASE_PERIODS_SHOWN)
      .execute()) as PeriodRow[]
  ).reverse();
  const sums = await market.db
    .selectFrom('market_lease_periods')
    .select(['status', (eb) => eb.fn.sum<number>('amount').as('amount'), (eb) => eb.fn.countAll<number>().as('n')])
    .where('lease_id', '=', l.id)
    .groupBy('status')
    .execute();
  const total = (...statuses: string[]) =>
    sums.filter((r) => statuses.includes(r.status)).reduce((a, r) => a + BigInt(r.amount ?? 0), 0n);
  const pm = market.timing.period_ms;
  return {
    lease_id: l.id,
    user: l.user_id,
    app: l.app_name,
    node_id: l.node_id,
    vcpus: l.vcpus,
    ...money('price_per_vcpu_hour', l.price_micro),
    periods: l.periods,
    periods_locked: l.periods_locked,
    first_period: periodIso(l.first_period, pm),
    current_period: periodIso(l.last_period, pm),
    status: l.status,
    end_reason: l.end_reason,
    created_at: iso(l.created_ms),
    ended_at: iso(l.ended_ms),
    ...money('locked', total('locked')),
    ...money('paid', total('posted')),
    ...money('refunded', total('voided', 'expired')),
    lease_periods_total: sums.reduce((a, r) => a + Number(r.n), 0),
    lease_periods: periods.map((p) => periodView(p, pm)),
  };
}

export async function marketLeaseRoutes(app: FastifyInstance, opts: MarketRoutesOptions): Promise<void> {
  const { market, idempotency } = opts;
  const deps = principalDeps(opts);

  const ownLease = async (
    req: FastifyRequest,
    reply: FastifyReply,
  ): Promise<{ p: Principal; lease: LeaseRow } | null> => {
    const p = await principalOf(req, reply, deps);
    if (!p) return null;
    const lease = (await market.db
      .selectFrom('market_leases')
      .selectAll()
      .where('id', '=', (req.params as { id: string }).id)
      .executeTakeFirst()) as LeaseRow | undefined;
    if (!lease || !mayActFor(p, lease.user_id)) {
      void apiError(reply, 404, 'unknown_lease', 'no such lease (or not yours)');
      return null;
    }
    return { p, lease };
  };

  app.post('/v1/leases', async (req, reply) =>
    guard(reply, async () => {
      const p = await principalOf(req, reply, deps);
      if (!p) return reply;
      const body = parse(LeaseBody, req.body);
      const user = p.kind === 'admin' ? body.user : p.id;
      if (user === undefined)
        throw new BadRequest('invalid_request', 'user is required when the admin token creates a lease');
      if (p.kind === 'identity' && body.user !== undefined && body.user !== p.id)
        return apiError(reply, 403, 'forbidden', 'an API key can only create leases for itself');
      if (!user.startsWith('user:')) return apiError(reply, 403, 'not_a_user', 'leases are paid from user accounts');
      return idempotency.handle(req, reply, p.id, async (run) => {
        const lease_id = run.derivedId('lease_', () => `lease_${randomBytes(8).toString('hex')}`).slice(0, 22);
        // Routing runs after a stored response would have been replayed; with no candidate the operation still
        // runs, so a retry whose key record has expired finds its lease instead of "no eligible node".
        const ranked = await market.candidates(body.app);
        const response = await market.deps.ledger.submit(
          createLeaseOp(
            {
              lease_id,
              user_id: user,
              app_name: body.app,
              vcpus: body.vcpus,
              periods: body.periods ?? null,
              candidates: ranked.slice(0, 16).map((n) => ({ id: n.id, provider: n.provider })),
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
                : err(r.status, r.code, r.message);
              run.record(ctx.writes, ctx.now_ms, out);
              return out;
            },
          ),
        );
        return response;
      });
    }),
  );

  app.get('/v1/leases/:id', async (req, reply) =>
    guard(reply, async () => {
      const r = await ownLease(req, reply);
      if (!r) return reply;
      return leaseView(market, r.lease);
    }),
  );

  /** Stops renewals. The period already locked settles as usual (the service runs until it ends). */
  app.delete('/v1/leases/:id', async (req, reply) =>
    guard(reply, async () => {
      const r = await ownLease(req, reply);
      if (!r) return reply;
      if (r.lease.status === 'active') {
        await market.db
          .updateTable('market_leases')
          .set({ status: 'ended', end_reason: 'cancelled', ended_ms: market.now })
          .where('id', '=', r.lease.id)
          .where('status', '=', 'active')
          .execute();
      }
      const lease = (await market.db
        .selectFrom('market_leases')
        .selectAll()
        .where('id', '=', r.lease.id)
        .executeTakeFirstOrThrow()) as LeaseRow;
      return leaseView(market, lease);
    }),
  );
}
