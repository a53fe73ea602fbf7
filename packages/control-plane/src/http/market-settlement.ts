// Settlement, evidence and money out over HTTP: finalize a period (admin), uptime reports (EE_UPTIME_TOKEN),
// abuse reports (EE_LAUNCHER_TOKEN files, the admin authorises), provider payouts (admin).
import { randomBytes } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { IDENTITY_ID_PATTERN } from '../ledger/chart.js';
import { createPayoutOp, resolvePayoutOp } from '../market/ops-penalty.js';
import type { PeriodRow } from '../market/ops.js';
import { periodEnd, periodIndex, periodIso } from '../market/period.js';
import { getNode } from '../market/store/queries.js';
import { amountOf } from './ledger-views.js';
import {
  err,
  guard,
  iso,
  money,
  parse,
  periodParam,
  periodView,
  principalDeps,
  PRINTABLE,
  requireServiceToken,
  rowsOp,
  type MarketRoutesOptions,
} from './market-common.js';
import { requireAdminPrincipal } from './principal.js';
import { apiError } from './routes.js';

const PeriodField = z.union([z.string().max(40), z.number().int().min(0)]);
const UsageBody = z.strictObject({
  node: z.string().max(64),
  period: PeriodField,
  units: z.number().int().min(0).max(1e12).default(0),
  missed_checks: z.number().int().min(0).max(1e9),
  detail: z.string().max(500).regex(PRINTABLE).optional(),
});
const AbuseBody = z.strictObject({
  node: z.string().max(64),
  lease: z.string().max(64).optional(),
  period: PeriodField.optional(),
  reason: z.string().min(1).max(1000).regex(PRINTABLE),
});
const PayoutBody = z.strictObject({
  provider: z.string().regex(IDENTITY_ID_PATTERN),
  amount: z.string().max(40).optional(),
  amount_micro_usd: z.number().optional(),
  reference: z
    .string()
    .max(128)
    .regex(/^[A-Za-z0-9:_.@/-]+$/)
    .optional(),
});

interface AbuseRow {
  id: string;
  node_id: string;
  lease_id: string | null;
  period: number;
  reason: string;
  status: string;
  filed_ms: number;
  authorized_ms: number | null;
}
interface PayoutRow {
  id: string;
  provider: string;
  amount: number;
  status: string;
  reference: string | null;
  created_ms: number;
  resolved_ms: number | null;
}

export async function marketSettlementRoutes(app: FastifyInstance, opts: MarketRoutesOptions): Promise<void> {
  const { market, idempotency } = opts;
  const deps = principalDeps(opts);
  const pm = () => market.timing.period_ms;
  const abuseView = (a: AbuseRow) => ({
    report_id: a.id,
    node_id: a.node_id,
    lease_id: a.lease_id,
    period: periodIso(a.period, pm()),
    period_index: a.period,
    reason: a.reason,
    status: a.status,
    filed_at: iso(a.filed_ms),
    authorized_at: iso(a.authorized_ms),
  });
  const payoutView = (p: PayoutRow) => ({
    payout_id: p.id,
    provider: p.provider,
    ...money('amount', p.amount),
    status: p.status,
    reference: p.reference,
    created_at: iso(p.created_ms),
    resolved_at: iso(p.resolved_ms),
  });

  app.post('/v1/settlements/:period/finalize', async (req, reply) =>
    guard(reply, async () => {
      const p = await requireAdminPrincipal(req, reply, deps);
      if (!p) return reply;
      const index = periodParam(market, (req.params as { period: string }).period);
      if (market.now < periodEnd(index, pm()))
        return apiError(reply, 409, 'period_not_ended', `period ${periodIso(index, pm())} has not ended yet`);
      return idempotency.handle(req, reply, p.id, async (run) => {
        const results = await market.finalizePeriod(index);
        const count = (s: string) => results.filter((r) => r.status === s).length;
        // Stored after every lease-period committed; finalize is idempotent by its transfer ids, so a lost record
        // only means a retry answers with already_finalized counts.
        return market.deps.ledger.submit(
          rowsOp(run, () => ({
            response: {
              status: 200,
              body: {
                period: periodIso(index, pm()),
                period_index: index,
                lease_periods: results.length,
                posted: count('posted'),
                voided: count('voided'),
                expired: count('expired'),
                already_finalized: results.filter((r) => 'already' in r && r.already).length,
                results: results.map((r) => ({
                  lease_id: r.lease_id,
                  status: r.status,
                  reasons: 'reasons' in r ? r.reasons : [],
                  already: 'already' in r ? r.already : false,
                })),
              },
            },
          })),
        );
      });
    }),
  );

  app.get('/v1/settlements/:period', async (req, reply) =>
    guard(reply, async () => {
      const p = await requireAdminPrincipal(req, reply, deps);
      if (!p) return reply;
      const index = periodParam(market, (req.params as { period: string }).period);
      const rows = (await market.db
        .selectFrom('market_lease_periods')
        .selectAll()
        .where('period', '=', index)
        .orderBy('lease_id')
        .execute()) as PeriodRow[];
      return {
        period: periodIso(index, pm()),
        period_index: index,
        lease_periods: rows.map((r) => periodView(r, pm())),
      };
    }),
  );

  app.post('/v1/usage/report', async (req, reply) =>
    guard(reply, async () => {
      if (!requireServiceToken(req, reply, opts.uptime_token, 'EE_UPTIME_TOKEN')) return reply;
      const body = parse(UsageBody, req.body);
      const index = periodParam(market, String(body.period));
      if (!(await getNode(market.db, body.node))) return apiError(reply, 404, 'unknown_node', 'no such node');
      return idempotency.handle(req, reply, 'uptime', (run) => {
        const id = run.derivedId('usage_', () => `usage_${randomBytes(20).toString('hex')}`).slice(0, 30);
        return market.deps.ledger.submit(
          rowsOp(run, (ctx) => {
            const row = {
              id,
              node_id: body.node,
              period: index,
              units: body.units,
              missed_checks: body.missed_checks,
              detail: body.detail ?? null,
              created_ms: ctx.now_ms,
            };
            return {
              response: {
                status: 201,
                body: {
                  report_id: id,
                  node_id: body.node,
                  period: periodIso(index, pm()),
                  units: body.units,
                  missed_checks: body.missed_checks,
                },
              },
              write: async (tx) => {
                await tx
                  .insertInto('market_usage_reports')
                  .values(row)
                  .onConflict((oc) => oc.column('id').doNothing())
                  .execute();
              },
            };
          }),
        );
      });
    }),
  );

  app.post('/v1/abuse/reports', async (req, reply) =>
    guard(reply, async () => {
      if (!requireServiceToken(req, reply, opts.launcher_token, 'EE_LAUNCHER_TOKEN')) return reply;
      const body = parse(AbuseBody, req.body);
      if (!(await getNode(market.db, body.node))) return apiError(reply, 404, 'unknown_node', 'no such node');
      if (
        body.lease !== undefined &&
        !(await market.db
          .selectFrom('market_leases')
          .select('id')
          .where('id', '=', body.lease)
          .where('node_id', '=', body.node)
          .executeTakeFirst())
      ) {
        return apiError(reply, 404, 'unknown_lease', 'no such lease on this node');
      }
      const index =
        body.period === undefined ? periodIndex(market.now, pm()) : periodParam(market, String(body.period));
      return idempotency.handle(req, reply, 'launcher', async (run) => {
        const id = run.derivedId('abuse_', () => `abuse_${randomBytes(8).toString('hex')}`).slice(0, 22);
        // The id comes from the Idempotency-Key: a retry after its record expired finds the report it filed.
        const prior = (await market.db
          .selectFrom('market_abuse_reports')
          .selectAll()
          .where('id', '=', id)
          .executeTakeFirst()) as AbuseRow | undefined;
        if (prior) {
          const same =
            prior.node_id === body.node &&
            prior.lease_id === (body.lease ?? null) &&
            prior.period === index &&
            prior.reason === body.reason;
          return same
            ? { status: 201, body: abuseView(prior) }
            : err(409, 'report_conflict', 'this Idempotency-Key already filed a different report');
        }
        return market.deps.ledger.submit(
          rowsOp(run, (ctx) => {
            const row: AbuseRow = {
              id,
              node_id: body.node,
              lease_id: body.lease ?? null,
              period: index,
              reason: body.reason,
              status: 'filed',
              filed_ms: ctx.now_ms,
              authorized_ms: null,
            };
            return {
              response: { status: 201, body: abuseView(row) },
              write: async (tx) => {
                await tx
                  .insertInto('market_abuse_reports')
                  .values(row)
                  .onConflict((oc) => oc.column('id').doNothing())
                  .execute();
              },
            };
          }),
        );
      });
    }),
  );

  app.get('/v1/abuse/reports/:id', async (req, reply) =>
    guard(reply, async () => {
      const p = await requireAdminPrincipal(req, reply, deps);
      if (!p) return reply;
      const row = (await market.db
        .selectFrom('market_abuse_reports')
        .selectAll()
        .where('id', '=', (req.params as { id: string }).id)
        .executeTakeFirst()) as AbuseRow | undefined;
      return row ? abuseView(row) : apiError(reply, 404, 'unknown_report', 'no such abuse report');
    }),
  );

  app.post('/v1/abuse/reports/:id/authorize', async (req, reply) =>
    guard(reply, async () => {
      const p = await requireAdminPrincipal(req, reply, deps);
      if (!p) return reply;
      const id = (req.params as { id: string }).id;
      const row = (await market.db
        .selectFrom('market_abuse_reports')
        .selectAll()
        .where('id', '=', id)
        .executeTakeFirst()) as AbuseRow | undefined;
      if (!row) return apiError(reply, 404, 'unknown_report', 'no such abuse report');
      return idempotency.handle(req, reply, p.id, async (run) => {
        const response = await market.deps.ledger.submit(
          rowsOp(run, (ctx) => {
            const authorized_ms = row.authorized_ms ?? ctx.now_ms;
            return {
              response: { status: 200, body: abuseView({ ...row, status: 'authorized', authorized_ms }) },
              write: async (tx) => {
                await tx
                  .updateTable('market_abuse_reports')
                  .set({ status: 'authorized', authorized_ms })
                  .where('id', '=', id)
                  .where('status', '=', 'filed')
                  .execute();
              },
            };
          }),
        );
        void market.refreshRanking();
        return response;
      });
    }),
  );

  app.post('/v1/payouts', async (req, reply) =>
    guard(reply, async () => {
      const p = await requireAdminPrincipal(req, reply, deps);
      if (!p) return reply;
      const body = parse(PayoutBody, req.body);
      if (!body.provider.startsWith('provider:'))
        return apiError(reply, 400, 'not_a_provider', 'payouts are paid from provider earnings');
      const amount = amountOf(body);
      return idempotency.handle(req, reply, p.id, (run) => {
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
              : err(r.status, r.code, r.message);
            run.record(ctx.writes, ctx.now_ms, out);
            return out;
          }),
        );
      });
    }),
  );

  const resolve =
    (confirm: boolean) => async (req: import('fastify').FastifyRequest, reply: import('fastify').FastifyReply) =>
      guard(reply, async () => {
        const p = await requireAdminPrincipal(req, reply, deps);
        if (!p) return reply;
        const id = (req.params as { id: string }).id;
        const row = (await market.db
          .selectFrom('market_payouts')
          .selectAll()
          .where('id', '=', id)
          .executeTakeFirst()) as PayoutRow | undefined;
        if (!row) return apiError(reply, 404, 'unknown_payout', 'no such payout');
        return idempotency.handle(req, reply, p.id, (run) =>
          market.deps.ledger.submit(
            resolvePayoutOp(id, row.provider, confirm, (r, ctx) => {
              const out = r.ok
                ? {
                    status: 200,
                    body: payoutView({ ...row, status: r.status, resolved_ms: row.resolved_ms ?? ctx.now_ms }),
                  }
                : err(r.status, r.code, r.message);
              run.record(ctx.writes, ctx.now_ms, out);
              return out;
            }),
          ),
        );
      });
  app.post('/v1/payouts/:id/confirm', resolve(true));
  app.post('/v1/payouts/:id/cancel', resolve(false));

  app.get('/v1/payouts/:id', async (req, reply) =>
    guard(reply, async () => {
      const p = await requireAdminPrincipal(req, reply, deps);
      if (!p) return reply;
      const row = (await market.db
        .selectFrom('market_payouts')
        .selectAll()
        .where('id', '=', (req.params as { id: string }).id)
        .executeTakeFirst()) as PayoutRow | undefined;
      return row ? payoutView(row) : apiError(reply, 404, 'unknown_payout', 'no such payout');
    }),
  );
}
