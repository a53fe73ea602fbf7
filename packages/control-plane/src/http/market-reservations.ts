// Reservations over HTTP (docs/confidential.md "Money flow"): a provider posts its node's unit prices; a user
// reserves a quota on the cheapest eligible node serving an app (locked in escrow), reads what its receipts
// claimed, and ends it (the rest is refunded). Receipts themselves arrive over the tunnel.
import { createHash, randomBytes } from 'node:crypto';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { AppName } from '@easyenclave/protocol';
import { UnitPrices } from '@easyenclave/protocol/receipt';
import { parseNonceHex } from '@easyenclave/attestation';
import { IDENTITY_ID_PATTERN } from '../ledger/chart.js';
import type { Reservations } from '../market/reservations.js';
import { MAX_RESERVATION_LIFETIME_MS, MIN_RESERVATION_LIFETIME_MS, remaining } from '../market/reservation.js';
import { stateOf, type ReservationRow } from '../market/ops-reservation.js';
import { getNode } from '../market/store/queries.js';
import type { MarketReceiptsTable } from '../market/store/reservation-schema.js';
import { reservationReceipts } from '../market/store/reservations.js';
import { relayEvidence, type AppAttestation, type RelayAccess } from './app-attestation-routes.js';
import { mayActFor, principalOf } from './auth-hooks.js';
import { apiFailure } from './error-catalogue.js';
import { errorResponse } from './idempotency.js';
import { amountFields, withAmount } from './ledger-views.js';
import { iso, marketAuth, money, tags, type MarketRoutesOptions } from './market-common.js';
import { IdParams, NodeParams } from './market-schemas.js';
import { AppAttestationView, Nonce } from './routes-schemas.js';
import { BEARER, coded, errorResponses, IdempotencyHeaders, IsoTime, MicroUsd, Usd } from './schemas.js';
import { withRequestId } from '../correlation.js';

/** Receipts listed in a reservation's view (the newest); the totals always cover all of them. */
export const MAX_RECEIPTS_SHOWN = 100;

const ReservationBody = withAmount(
  z.strictObject({
    app: AppName.meta({ description: 'the app whose sealed traffic the reservation pays for' }),
    ...amountFields('quota'),
    lifetime_s: z
      .number()
      .int()
      .min(MIN_RESERVATION_LIFETIME_MS / 1000)
      .max(MAX_RESERVATION_LIFETIME_MS / 1000)
      .meta({ description: 'seconds until the unclaimed rest is refunded' }),
    nonce: coded(Nonce, 'invalid_nonce')
      .optional()
      .meta({ description: "64 hex: the answer carries the chosen agent's fresh evidence over this nonce" }),
    user: z.string().regex(IDENTITY_ID_PATTERN).optional().meta({ description: 'the admin reserves for a user' }),
  }),
  'quota',
);

const Keyset = z.object({ hpke_public_key: z.string(), receipt_public_key: z.string() });
const ReceiptView = z.looseObject({
  receipt_key: z.string(),
  seq: z.number(),
  request_id: z.string(),
  amount_micro_usd: MicroUsd,
  time: IsoTime,
  accepted_at: IsoTime,
  transfer_id: z.string().nullable(),
  signed: z.unknown(),
});
const ReservationView = z.looseObject({
  reservation_id: z.string(),
  user: z.string(),
  app: z.string(),
  node_id: z.string(),
  agent_id: z.string(),
  keyset: Keyset.nullable(),
  unit_prices: UnitPrices,
  quota_micro_usd: MicroUsd,
  quota_usd: Usd,
  claimed_micro_usd: MicroUsd,
  claimed_usd: Usd,
  remaining_micro_usd: MicroUsd,
  remaining_usd: Usd,
  status: z.enum(['open', 'closed']),
  end_reason: z.string().nullable(),
  created_at: IsoTime,
  expires_at: IsoTime,
  closed_at: IsoTime.nullable(),
  receipts_total: z.number(),
  receipts: z.array(ReceiptView),
});
const CreatedView = ReservationView.extend({
  evidence: AppAttestationView.nullable(),
  token: z
    .string()
    .nullable()
    .meta({ description: 'the bearer token, shown once: send it sealed (ee-reservation-token); null on a replay' }),
});

async function keysetOf(r: Reservations, agent_id: string, node_id: string) {
  const k = await r.db
    .selectFrom('market_agent_keys')
    .select(['hpke_key', 'receipt_key'])
    .where('agent_id', '=', agent_id)
    .where('node_id', '=', node_id)
    .orderBy('last_attested_ms', 'desc')
    .executeTakeFirst();
  return k ? { hpke_public_key: k.hpke_key, receipt_public_key: k.receipt_key } : null;
}

type Keyset = { hpke_public_key: string; receipt_public_key: string } | null;

function rowView(row: ReservationRow, keyset: Keyset, receipts: { total: number; rows: MarketReceiptsTable[] }) {
  const s = stateOf(row);
  return {
    reservation_id: row.id,
    user: row.user_id,
    app: row.app_name,
    node_id: row.node_id,
    agent_id: row.agent_id,
    keyset,
    unit_prices: s.unit_prices,
    ...money('quota', s.quota),
    ...money('claimed', s.claimed),
    ...money('remaining', s.status === 'open' ? remaining(s) : 0),
    status: row.status,
    end_reason: row.end_reason,
    created_at: iso(s.created_ms)!,
    expires_at: iso(s.expires_ms)!,
    closed_at: iso(row.closed_ms),
    receipts_total: receipts.total,
    receipts: receipts.rows.map((x) => ({
      receipt_key: x.receipt_key,
      seq: Number(x.seq),
      request_id: x.request_id,
      amount_micro_usd: Number(x.amount),
      time: iso(Number(x.time_ms))!,
      accepted_at: iso(Number(x.accepted_ms))!,
      transfer_id: x.transfer_id,
      signed: JSON.parse(x.signed) as unknown,
    })),
  };
}

async function view(r: Reservations, row: ReservationRow) {
  const [keyset, receipts] = await Promise.all([
    keysetOf(r, row.agent_id, row.node_id),
    reservationReceipts(r.db, row.id, MAX_RECEIPTS_SHOWN),
  ]);
  return rowView(row, keyset, receipts);
}

export async function marketReservationRoutes(
  base: FastifyInstance,
  opts: MarketRoutesOptions & { relay?: RelayAccess },
): Promise<void> {
  const app = base.withTypeProvider<ZodTypeProvider>();
  const { market, idempotency } = opts;
  const { reservations, relay } = opts;
  if (!reservations || !relay) return;
  const auth = marketAuth(opts);

  const own = async (req: FastifyRequest, id: string): Promise<ReservationRow> => {
    const row = await reservations.get(id);
    if (!row || !mayActFor(principalOf(req), row.user_id)) throw apiFailure('unknown_reservation');
    return row;
  };

  app.put(
    '/v1/nodes/:node/unit-prices',
    {
      onRequest: auth.caller,
      schema: {
        tags,
        summary: "Post the node's prices for confidential traffic: micro-USD per 1,000 units of each kind",
        security: BEARER,
        params: NodeParams,
        body: UnitPrices,
        response: {
          200: z.looseObject({ node_id: z.string(), unit_prices: UnitPrices }),
          ...errorResponses(400, 401, 404),
        },
      },
    },
    async (req) => {
      const node = await getNode(market.db, req.params.node);
      if (!node || !mayActFor(principalOf(req), node.provider)) throw apiFailure('unknown_node');
      await reservations.setUnitPrices(node.id, req.body);
      return { node_id: node.id, unit_prices: req.body };
    },
  );

  app.post(
    '/v1/reservations',
    {
      onRequest: auth.caller,
      schema: {
        tags,
        summary: 'Reserve a quota for sealed traffic on the cheapest eligible node serving an app (escrow)',
        security: BEARER,
        headers: IdempotencyHeaders,
        body: ReservationBody,
        response: { 201: CreatedView, ...errorResponses(400, 401, 402, 403, 409, 503, 504) },
      },
    },
    async (req, reply) => {
      const p = principalOf(req);
      const body = req.body;
      const user = p.kind === 'admin' ? body.user : p.id;
      if (user === undefined)
        throw apiFailure('invalid_request', 'user is required when the admin token reserves', { param: 'user' });
      if (p.kind === 'identity' && body.user !== undefined && body.user !== p.id)
        throw apiFailure('forbidden', 'an API key can only reserve for itself');
      if (!user.startsWith('user:')) throw apiFailure('not_a_user');
      const quota = Number(body.micro!);
      return idempotency.handle(req, reply, p.id, async (run) => {
        const id = run.derivedId('rsv_', () => `rsv_${randomBytes(10).toString('hex')}`).slice(0, 24);
        const candidates = await reservations.candidates(body.app);
        // The client verifies the agent before it seals anything: with a nonce, the answer carries the first
        // candidate's fresh evidence, relayed before any money is locked.
        let evidence: AppAttestation | null = null;
        const first = candidates[0];
        if (body.nonce !== undefined && first !== undefined) {
          const link = market.deps.live.byAgentId.get(first.agent_id);
          if (!link || !relay.relays.reserve(link, Date.now()))
            throw apiFailure('agent_unavailable', `agent ${first.agent_id} cannot answer now`, { retry_after_s: 1 });
          evidence = await relayEvidence(relay, link, parseNonceHex(body.nonce).toString('hex'));
        }
        // The bearer token: shown once (a replay answers null, as for API keys); only its hash is kept. The
        // client sends it sealed, so neither the network nor the control plane can bill a reservation.
        const token = `rsvtok_${randomBytes(32).toString('base64url')}`;
        const token_sha256 = createHash('sha256').update(token, 'utf8').digest('hex');
        return withRequestId(req.id, () =>
          reservations.create(
            {
              id,
              user_id: user,
              app_name: body.app,
              quota,
              expires_ms: market.now + body.lifetime_s * 1000,
              token_sha256,
            },
            candidates,
            (r, ctx) => {
              const c = r.ok ? candidates.find((x) => x.id === r.row.node_id) : undefined;
              if (!r.ok) {
                const refused = errorResponse(r);
                run.record(ctx.writes, ctx.now_ms, refused);
                return refused;
              }
              const body201 = {
                ...rowView(r.row, c?.keyset ?? null, { total: 0, rows: [] }),
                evidence: evidence !== null && evidence.agent_id === r.row.agent_id ? evidence : null,
              };
              run.record(ctx.writes, ctx.now_ms, { status: 201, body: { ...body201, token: null } });
              // A retry that finds the reservation made earlier does not learn its token either.
              const fresh = r.row.token_sha256 === token_sha256;
              return { status: 201, body: { ...body201, token: fresh ? token : null } };
            },
          ),
        );
      });
    },
  );

  const rsvSchema = (summary: string) => ({
    tags,
    summary,
    security: BEARER,
    params: IdParams,
    response: { 200: ReservationView, ...errorResponses(400, 401, 404) },
  });

  app.get(
    '/v1/reservations/:id',
    { onRequest: auth.caller, schema: rsvSchema('A reservation: quota, claimed, remaining, its newest receipts') },
    async (req) => view(reservations, await own(req, req.params.id)),
  );

  app.delete(
    '/v1/reservations/:id',
    { onRequest: auth.caller, schema: rsvSchema('End a reservation: what its receipts have not claimed is refunded') },
    async (req) => {
      const row = await own(req, req.params.id);
      if (row.status === 'open') await withRequestId(req.id, () => reservations.close(row.id, 'cancelled'));
      return view(reservations, (await reservations.get(row.id))!);
    },
  );
}
