// Reservations against the control plane's contract (docs/confidential.md, Money flow):
//   POST   /v1/reservations        (user key; the admin with `user`) {app, quota, lifetime_s, nonce?}
//   GET    /v1/reservations/{id}   quota, claimed, remaining, the newest signed receipts
//   DELETE /v1/reservations/{id}   ends it; what its receipts did not claim is refunded
//   PUT    /v1/nodes/{node}/unit-prices   (the node's provider) micro-USD per 1,000 units of each kind
import { z } from 'zod';
import {
  defined,
  mergeHeaders,
  ownedResource,
  post,
  principal,
  segment,
  type Auth,
  type IdempotentOptions,
  type Replayable,
} from './calls.js';
import type { CallOptions, Transport } from './http.js';
import { callJson, MicroUsd } from './json.js';
import { amountFields, type Amount } from './ledger.js';
import { AppAttestationSchema } from './schemas.js';

const Keyset = z.object({ hpke_public_key: z.string(), receipt_public_key: z.string() });

export const ReservationSchema = z.looseObject({
  reservation_id: z.string(),
  user: z.string(),
  app: z.string(),
  node_id: z.string(),
  agent_id: z.string(),
  keyset: Keyset.nullable(),
  quota_micro_usd: MicroUsd,
  claimed_micro_usd: MicroUsd,
  remaining_micro_usd: MicroUsd,
  status: z.enum(['open', 'closed']),
  end_reason: z.string().nullable(),
  expires_at: z.string(),
  receipts_total: z.number(),
  receipts: z.array(z.looseObject({ seq: z.number(), amount_micro_usd: MicroUsd, signed: z.unknown() })),
});
export type Reservation = z.infer<typeof ReservationSchema>;
export const CreatedReservationSchema = ReservationSchema.extend({
  evidence: AppAttestationSchema.nullable(),
  /** The bearer token, shown once (null on a replay): pass the whole answer to connect({ reservation }). */
  token: z.string().nullable(),
});
export type CreatedReservation = z.infer<typeof CreatedReservationSchema>;

export interface CreateReservationParams {
  app: string;
  /** "$5", or micro-USD as a bigint or number. */
  quota: Amount;
  /** Seconds until the unclaimed rest is refunded (60 s to 30 days). */
  lifetime_s: number;
  /** 64 hex: the answer carries the chosen agent's evidence over this nonce. */
  nonce?: string;
  /** The admin reserves for a user. */
  user?: string;
}

const reservationById = ownedResource((id) => `/v1/reservations/${segment(id, 'reservation id')}`, ReservationSchema);

export function createReservation(
  t: Transport,
  auth: Auth,
  p: CreateReservationParams,
  o: IdempotentOptions = {},
): Promise<Replayable<CreatedReservation>> {
  const body = defined({
    app: p.app,
    ...amountFields(p.quota, 'quota'),
    lifetime_s: p.lifetime_s,
    nonce: p.nonce,
    user: p.user,
  });
  return post(t, '/v1/reservations', body, principal(auth), o, CreatedReservationSchema);
}

export function reservation(t: Transport, auth: Auth, id: string, o: CallOptions = {}): Promise<Reservation> {
  return reservationById.read(t, auth, id, o);
}

export function cancelReservation(t: Transport, auth: Auth, id: string, o: CallOptions = {}): Promise<Reservation> {
  return reservationById.end(t, auth, id, o);
}

export const UnitPricesSchema = z.looseObject({
  node_id: z.string(),
  unit_prices: z.object({ tokens_in: z.number(), tokens_out: z.number(), requests: z.number(), bytes: z.number() }),
});
export type UnitPrices = z.infer<typeof UnitPricesSchema>['unit_prices'];

/** Posts a node's prices for confidential traffic (its agents sign receipts at these prices: EE_UNIT_PRICES). */
export function setUnitPrices(t: Transport, auth: Auth, node_id: string, prices: UnitPrices, o: CallOptions = {}) {
  return callJson(
    t,
    {
      ...o,
      headers: mergeHeaders(principal(auth), o),
      method: 'PUT',
      path: `/v1/nodes/${segment(node_id, 'node id')}/unit-prices`,
      body: prices,
    },
    UnitPricesSchema,
  ).then((r) => r.data);
}
