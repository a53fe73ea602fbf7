// Provider payouts over HTTP (admin): a payout locks earnings until it is confirmed (paid out) or cancelled.
import { randomBytes } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { createPayoutOp, resolvePayoutOp } from '../market/ops-penalty.js';
import { getPayout } from '../market/store/reads.js';
import { mayActFor, principalOf } from './auth-hooks.js';
import { apiFailure } from './error-catalogue.js';
import { errorResponse } from './idempotency.js';
import { marketAuth, payoutView, tags, type MarketRoutesOptions } from './market-common.js';
import { IdParams, PayoutBody, PayoutView } from './market-schemas.js';
import { BEARER, errorResponses, IdempotencyHeaders } from './schemas.js';

export async function marketPayoutRoutes(base: FastifyInstance, opts: MarketRoutesOptions): Promise<void> {
  const app = base.withTypeProvider<ZodTypeProvider>();
  const { market, idempotency } = opts;
  const auth = marketAuth(opts);

  app.post(
    '/v1/payouts',
    {
      onRequest: auth.admin,
      schema: {
        tags,
        summary: "Start a payout of a provider's earnings (admin)",
        security: BEARER,
        headers: IdempotencyHeaders,
        body: PayoutBody,
        response: { 201: PayoutView, ...errorResponses(400, 401, 402, 403) },
      },
    },
    async (req, reply) => {
      const body = req.body;
      if (!body.provider.startsWith('provider:'))
        throw apiFailure('not_a_provider', 'payouts are paid from provider earnings', { param: 'provider' });
      const amount = body.micro!;
      return idempotency.handle(req, reply, principalOf(req).id, (run) => {
        const id = run.derivedId('po_', () => `po_${randomBytes(8).toString('hex')}`).slice(0, 19);
        return market.deps.ledger.submit(
          createPayoutOp(id, body.provider, amount, body.reference ?? null, (r, ctx) => {
            const out = r.ok
              ? {
                  status: 201,
                  body: payoutView({
                    id,
                    provider: body.provider,
                    amount: Number(amount),
                    status: 'pending',
                    reference: body.reference ?? null,
                    created_ms: ctx.now_ms,
                    resolved_ms: null,
                  }),
                }
              : errorResponse(r);
            run.record(ctx.writes, ctx.now_ms, out);
            return out;
          }),
          req.id,
        );
      });
    },
  );

  const resolveRoute = (confirm: boolean) =>
    app.post(
      `/v1/payouts/:id/${confirm ? 'confirm' : 'cancel'}`,
      {
        onRequest: auth.admin,
        schema: {
          tags,
          summary: confirm ? 'Confirm a payout: the money left (admin)' : 'Cancel a payout: earnings back (admin)',
          security: BEARER,
          headers: IdempotencyHeaders,
          params: IdParams,
          response: { 200: PayoutView, ...errorResponses(400, 401, 403, 404, 409) },
        },
      },
      async (req, reply) => {
        const id = req.params.id;
        const row = await getPayout(market.db, id);
        if (!row) throw apiFailure('unknown_payout');
        return idempotency.handle(req, reply, principalOf(req).id, (run) =>
          market.deps.ledger.submit(
            resolvePayoutOp(id, row.provider, confirm, (r, ctx) => {
              const out = r.ok
                ? {
                    status: 200,
                    body: payoutView({ ...row, status: r.status, resolved_ms: row.resolved_ms ?? ctx.now_ms }),
                  }
                : errorResponse(r);
              run.record(ctx.writes, ctx.now_ms, out);
              return out;
            }),
            req.id,
          ),
        );
      },
    );
  resolveRoute(true);
  resolveRoute(false);

  app.get(
    '/v1/payouts/:id',
    {
      onRequest: auth.caller,
      schema: {
        tags,
        summary: "A payout (admin, or the provider's own)",
        security: BEARER,
        params: IdParams,
        response: { 200: PayoutView, ...errorResponses(400, 401, 403, 404) },
      },
    },
    async (req) => {
      const row = await getPayout(market.db, req.params.id);
      // Another provider's payout does not exist for this caller (no 403 that would confirm the id).
      if (!row || !mayActFor(principalOf(req), row.provider)) throw apiFailure('unknown_payout');
      return payoutView(row);
    },
  );
}
