// Settlement and its evidence over HTTP: finalize a period (admin), read it (admin), uptime reports
// (EE_UPTIME_TOKEN), abuse reports (EE_LAUNCHER_TOKEN files them, the admin authorises).
import { randomBytes } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { periodEnd, periodIndex, periodIso } from '../market/period.js';
import { getNode } from '../market/store/queries.js';
import { getAbuseReport, leaseOnNode, periodLeasePeriods } from '../market/store/reads.js';
import type { MarketAbuseReportsTable } from '../market/store/schema.js';
import { authorizeAbuseReport, insertAbuseReport, insertUsageReport } from '../market/store/writes.js';
import { principalOf } from './auth-hooks.js';
import { logStateChange } from '../observe/state.js';
import { apiFailure } from './error-catalogue.js';
import { errorResponse } from './idempotency.js';
import {
  abuseView as abuseViewOf,
  marketAuth,
  periodParam,
  periodView,
  rowsOp,
  tags,
  type MarketRoutesOptions,
} from './market-common.js';
import {
  AbuseBody,
  AbuseView,
  FinalizeView,
  IdParams,
  PeriodParams,
  SettlementView,
  UsageBody,
  UsageView,
} from './market-schemas.js';
import { BEARER, errorResponses, IdempotencyHeaders } from './schemas.js';
import { withRequestId } from '../correlation.js';

export async function marketSettlementRoutes(base: FastifyInstance, opts: MarketRoutesOptions): Promise<void> {
  const app = base.withTypeProvider<ZodTypeProvider>();
  const { market, idempotency } = opts;
  const auth = marketAuth(opts);
  const pm = () => market.timing.period_ms;
  const abuseView = (a: MarketAbuseReportsTable) => abuseViewOf(a, pm());
  const unknownNode = (node: string) =>
    getNode(market.db, node).then((n) => {
      if (!n) throw apiFailure('unknown_node', undefined, { param: 'node' });
    });

  app.post(
    '/v1/settlements/:period/finalize',
    {
      onRequest: auth.admin,
      schema: {
        tags,
        summary: 'Finalize every locked lease-period of an ended period (admin)',
        security: BEARER,
        headers: IdempotencyHeaders,
        params: PeriodParams,
        response: { 200: FinalizeView, ...errorResponses(400, 401, 403, 409) },
      },
    },
    async (req, reply) => {
      const index = periodParam(market, req.params.period);
      if (market.now < periodEnd(index, pm()))
        throw apiFailure('period_not_ended', `period ${periodIso(index, pm())} has not ended yet`);
      return idempotency.handle(req, reply, principalOf(req).id, async (run) => {
        const results = await withRequestId(req.id, () => market.finalizePeriod(index));
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
          req.id,
        );
      });
    },
  );

  app.get(
    '/v1/settlements/:period',
    {
      onRequest: auth.admin,
      schema: {
        tags,
        summary: 'The lease-periods of a period with their outcome and reasons (admin)',
        security: BEARER,
        params: PeriodParams,
        response: { 200: SettlementView, ...errorResponses(400, 401, 403) },
      },
    },
    async (req) => {
      const index = periodParam(market, req.params.period);
      const rows = await periodLeasePeriods(market.db, index);
      return {
        period: periodIso(index, pm()),
        period_index: index,
        lease_periods: rows.map((r) => periodView(r, pm())),
      };
    },
  );

  app.post(
    '/v1/usage/report',
    {
      onRequest: auth.service(opts.uptime_token, 'EE_UPTIME_TOKEN'),
      schema: {
        tags,
        summary: "An attested uptime reporter's report for a node and period (EE_UPTIME_TOKEN)",
        security: BEARER,
        headers: IdempotencyHeaders,
        body: UsageBody,
        response: { 201: UsageView, ...errorResponses(400, 401, 403, 404) },
      },
    },
    async (req, reply) => {
      const body = req.body;
      const index = periodParam(market, String(body.period));
      await unknownNode(body.node);
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
              write: (tx) => insertUsageReport(tx, row),
            };
          }),
          req.id,
        );
      });
    },
  );

  app.post(
    '/v1/abuse/reports',
    {
      onRequest: auth.service(opts.launcher_token, 'EE_LAUNCHER_TOKEN'),
      schema: {
        tags,
        summary: 'File an abuse report against a node (EE_LAUNCHER_TOKEN); it counts once authorised',
        security: BEARER,
        headers: IdempotencyHeaders,
        body: AbuseBody,
        response: { 201: AbuseView, ...errorResponses(400, 401, 403, 404, 409) },
      },
    },
    async (req, reply) => {
      const body = req.body;
      await unknownNode(body.node);
      if (body.lease !== undefined && !(await leaseOnNode(market.db, body.lease, body.node)))
        throw apiFailure('unknown_lease', 'no such lease on this node', { param: 'lease' });
      const index =
        body.period === undefined ? periodIndex(market.now, pm()) : periodParam(market, String(body.period));
      return idempotency.handle(req, reply, 'launcher', async (run) => {
        const id = run.derivedId('abuse_', () => `abuse_${randomBytes(8).toString('hex')}`).slice(0, 22);
        // The id comes from the Idempotency-Key: a retry after its record expired finds the report it filed.
        const prior = await getAbuseReport(market.db, id);
        if (prior) {
          const same =
            prior.node_id === body.node &&
            prior.lease_id === (body.lease ?? null) &&
            prior.period === index &&
            prior.reason === body.reason;
          return same ? { status: 201, body: abuseView(prior) } : errorResponse({ code: 'report_conflict' });
        }
        return market.deps.ledger.submit(
          rowsOp(run, (ctx) => {
            const row: MarketAbuseReportsTable = {
              id,
              node_id: body.node,
              lease_id: body.lease ?? null,
              period: index,
              reason: body.reason,
              status: 'filed',
              filed_ms: ctx.now_ms,
              authorized_ms: null,
            };
            return { response: { status: 201, body: abuseView(row) }, write: (tx) => insertAbuseReport(tx, row) };
          }),
          req.id,
        );
      });
    },
  );

  app.get(
    '/v1/abuse/reports/:id',
    {
      onRequest: auth.admin,
      schema: {
        tags,
        summary: 'An abuse report (admin)',
        security: BEARER,
        params: IdParams,
        response: { 200: AbuseView, ...errorResponses(400, 401, 403, 404) },
      },
    },
    async (req) => {
      const row = await getAbuseReport(market.db, req.params.id);
      if (!row) throw apiFailure('unknown_report');
      return abuseView(row);
    },
  );

  app.post(
    '/v1/abuse/reports/:id/authorize',
    {
      onRequest: auth.admin,
      schema: {
        tags,
        summary: "Authorise an abuse report: it fails the node's period and lowers its trust (admin)",
        security: BEARER,
        headers: IdempotencyHeaders,
        params: IdParams,
        response: { 200: AbuseView, ...errorResponses(400, 401, 403, 404) },
      },
    },
    async (req, reply) => {
      const id = req.params.id;
      const row = await getAbuseReport(market.db, id);
      if (!row) throw apiFailure('unknown_report');
      return idempotency.handle(req, reply, principalOf(req).id, async (run) => {
        const response = await market.deps.ledger.submit(
          rowsOp(run, (ctx) => {
            const authorized_ms = row.authorized_ms ?? ctx.now_ms;
            return {
              response: { status: 200, body: abuseView({ ...row, status: 'authorized', authorized_ms }) },
              write: (tx) => authorizeAbuseReport(tx, id, authorized_ms),
            };
          }),
          req.id,
        );
        if (row.status !== 'authorized')
          logStateChange(req.log, 'abuse_authorised', {
            report_id: id,
            node_id: row.node_id,
            lease_id: row.lease_id,
            period: row.period,
          });
        void market.refreshRanking();
        // Zero tolerance: the node's open reservations refund what is not claimed yet, now.
        await withRequestId(req.id, () => opts.reservations?.checkNode(row.node_id));
        return response;
      });
    },
  );
}
