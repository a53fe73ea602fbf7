// The market's self-service lists, cursor-paged and newest first: GET /v1/leases (a user's own, the leases on
// a provider's nodes, or all for the admin), GET /v1/payouts (a provider's own, or all), GET /v1/abuse/reports
// (admin), GET /v1/nodes (a provider's own, or all, with eligibility, trust and effective price). The SQL is in market/store/lists.ts; a cursor is the last row's (time, id), opaque to clients.
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import {
  abuseReportsPage,
  leasesPage,
  MAX_PAGE_ROWS,
  nodesPage,
  payoutsPage,
  type PageAfter,
} from '../market/store/lists.js';
import type { MarketLeasesTable } from '../market/store/schema.js';
import { principalOf } from './auth-hooks.js';
import { apiFailure } from './error-catalogue.js';
import {
  abuseView,
  leaseSummary as leaseSummaryOf,
  marketAuth,
  payoutView,
  tags,
  type MarketRoutesOptions,
} from './market-common.js';
import { nodeSummary } from './market-nodes.js';
import { AbuseView, NodeListView, PayoutView } from './market-schemas.js';
import { BEARER, errorResponses, IsoTime, MicroUsd, pathId, Usd } from './schemas.js';

/** Rows per page unless the caller asks otherwise. */
const DEFAULT_PAGE_ROWS = 50;
/** A cursor is `<ms>:<id>` in base64url: far below this. */
const MAX_CURSOR_CHARS = 200;

const ListQuery = z.strictObject({
  limit: z.coerce.number().int().min(1).max(MAX_PAGE_ROWS).default(DEFAULT_PAGE_ROWS),
  cursor: z.string().max(MAX_CURSOR_CHARS).optional(),
});
const AbuseListQuery = ListQuery.extend({ node: pathId(64).optional() });

const LeaseSummaryView = z.looseObject({
  lease_id: z.string(),
  user: z.string(),
  app: z.string(),
  node_id: z.string(),
  vcpus: z.number().int(),
  price_per_vcpu_hour_micro_usd: MicroUsd,
  price_per_vcpu_hour_usd: Usd,
  periods: z.number().int().nullable(),
  periods_locked: z.number().int(),
  current_period: IsoTime,
  status: z.enum(['active', 'ended']),
  end_reason: z.string().nullable(),
  created_at: IsoTime,
  ended_at: IsoTime.nullable(),
});
const nextCursor = z.string().nullable().meta({ description: 'pass as `cursor` for the next page; null at the end' });
const LeaseListView = z.looseObject({ leases: z.array(LeaseSummaryView), next_cursor: nextCursor });
const PayoutListView = z.looseObject({ payouts: z.array(PayoutView), next_cursor: nextCursor });
const AbuseListView = z.looseObject({ reports: z.array(AbuseView), next_cursor: nextCursor });

const encodeCursor = (after: PageAfter | null): string | null =>
  after === null ? null : Buffer.from(`${after.ms}:${after.id}`, 'utf8').toString('base64url');

function decodeCursor(cursor: string | undefined): PageAfter | undefined {
  if (cursor === undefined) return undefined;
  const m = /^(\d{1,16}):([A-Za-z0-9_.:-]{1,64})$/.exec(Buffer.from(cursor, 'base64url').toString('utf8'));
  if (!m) throw apiFailure('invalid_cursor', undefined, { param: 'cursor' });
  return { ms: Number(m[1]), id: m[2]! };
}

export async function marketListRoutes(base: FastifyInstance, opts: MarketRoutesOptions): Promise<void> {
  const app = base.withTypeProvider<ZodTypeProvider>();
  const { market } = opts;
  const auth = marketAuth(opts);
  const leaseSummary = (l: MarketLeasesTable) => leaseSummaryOf(l, market.timing.period_ms);
  /** Whose rows the caller sees: every one for the admin, else its own identity's. */
  const scope = (req: FastifyRequest): { admin: true } | { admin: false; id: string } => {
    const p = principalOf(req);
    return p.kind === 'admin' ? { admin: true } : { admin: false, id: p.id };
  };

  app.get(
    '/v1/leases',
    {
      onRequest: auth.caller,
      schema: {
        tags,
        summary: "Leases, newest first: a user's own, those on a provider's nodes, or all (admin)",
        security: BEARER,
        querystring: ListQuery,
        response: { 200: LeaseListView, ...errorResponses(400, 401) },
      },
    },
    async (req) => {
      const s = scope(req);
      const who = s.admin ? {} : s.id.startsWith('provider:') ? { provider: s.id } : { user: s.id };
      const page = await leasesPage(market.db, who, req.query.limit, decodeCursor(req.query.cursor));
      return { leases: page.rows.map(leaseSummary), next_cursor: encodeCursor(page.next) };
    },
  );

  app.get(
    '/v1/payouts',
    {
      onRequest: auth.caller,
      schema: {
        tags,
        summary: "Payouts, newest first: a provider's own, or all (admin)",
        security: BEARER,
        querystring: ListQuery,
        response: { 200: PayoutListView, ...errorResponses(400, 401, 403) },
      },
    },
    async (req) => {
      const s = scope(req);
      if (!s.admin && !s.id.startsWith('provider:'))
        throw apiFailure('forbidden', 'payouts belong to provider accounts; this API key is a user');
      const page = await payoutsPage(
        market.db,
        s.admin ? undefined : s.id,
        req.query.limit,
        decodeCursor(req.query.cursor),
      );
      return { payouts: page.rows.map(payoutView), next_cursor: encodeCursor(page.next) };
    },
  );

  app.get(
    '/v1/abuse/reports',
    {
      onRequest: auth.admin,
      schema: {
        tags,
        summary: 'Abuse reports, newest first, optionally of one node (admin)',
        security: BEARER,
        querystring: AbuseListQuery,
        response: { 200: AbuseListView, ...errorResponses(400, 401, 403) },
      },
    },
    async (req) => {
      const q = req.query;
      const page = await abuseReportsPage(market.db, q.node, q.limit, decodeCursor(q.cursor));
      return {
        reports: page.rows.map((r) => abuseView(r, market.timing.period_ms)),
        next_cursor: encodeCursor(page.next),
      };
    },
  );

  app.get(
    '/v1/nodes',
    {
      onRequest: auth.caller,
      schema: {
        tags,
        summary:
          "Nodes, newest first, with eligibility, trust and effective price: every one (admin), or a provider's own",
        security: BEARER,
        querystring: ListQuery,
        response: { 200: NodeListView, ...errorResponses(400, 401, 403) },
      },
    },
    async (req) => {
      const s = scope(req);
      if (!s.admin && !s.id.startsWith('provider:'))
        throw apiFailure('forbidden', 'nodes belong to provider accounts; this API key is a user');
      const page = await nodesPage(
        market.db,
        s.admin ? undefined : s.id,
        req.query.limit,
        decodeCursor(req.query.cursor),
      );
      const nodes = [];
      for (const n of page.rows) {
        const state = await market.nodeState(n);
        nodes.push({
          ...nodeSummary(n),
          eligible: state.eligible,
          ineligible_reasons: state.reasons,
          trust: state.trust,
          effective_price_per_vcpu_hour_micro_usd: Math.round(state.effective_price),
        });
      }
      return { nodes, next_cursor: encodeCursor(page.next) };
    },
  );
}
