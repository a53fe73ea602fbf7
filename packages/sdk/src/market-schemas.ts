// zod schemas of the market's answers (docs/market.md, control plane http/market-*.ts), shared by the SDK and
// the `ee` command. Money is exact: every `*_micro_usd` field is a bigint (json.ts parses them losslessly). Objects are loose: fields the SDK does
// not type pass through, so a control plane that adds a field does not break older clients.
// The fields of the answers the control plane also documents are shared with it (protocol/market-wire.ts).
import { z } from 'zod';
import { marketFields } from '@easyenclave/protocol/market-wire';
import { MicroUsd } from './json.js';

const Iso = z.string();
const IsoOrNull = z.string().nullable();
const wire = marketFields({ micro_usd: MicroUsd, usd: z.string(), time: Iso });

export const NodeSummarySchema = z.looseObject(wire.nodeSummary(z.string()));

/** POST /v1/nodes/register: the node, and its token (null on sealed networks and on an idempotent replay). */
export const RegisteredNodeSchema = NodeSummarySchema.extend({
  node_token: z.string().nullable(),
  /** What to do with the token (or why there is none). */
  node_token_note: z.string().optional(),
});

const Eligibility = wire.eligibility;

export const NodeListSchema = z.looseObject({
  nodes: z.array(NodeSummarySchema.extend(Eligibility)),
  next_cursor: z.string().nullable(),
});

const StakeView = z.looseObject({
  held_micro_usd: MicroUsd,
  held_usd: z.string(),
  required_micro_usd: MicroUsd.optional(),
  required_usd: z.string().optional(),
});

/** GET /v1/nodes/{node}: stake is held per provider (it covers all the provider's nodes). */
export const NodeDetailSchema = NodeSummarySchema.extend({
  ...Eligibility,
  stake: StakeView.extend({
    required_micro_usd: MicroUsd,
    required_usd: z.string(),
    /** Stake is held per provider, for all its nodes. */
    per: z.string().optional(),
  }),
  live: z.looseObject({
    agents: z.number().int(),
    attested: z.number().int(),
    healthy: z.number().int(),
    apps: z.array(z.string()),
  }),
  agents: z.array(
    z.looseObject({
      agent_id: z.string(),
      via: z.string(),
      app: z.string().nullable(),
      connected: z.boolean(),
      health: z.string().nullable().optional(),
      attested: z.boolean(),
      last_attest: IsoOrNull.optional(),
    }),
  ),
  attestations: z.array(z.looseObject({ agent_id: z.string(), at: Iso, ok: z.boolean() })),
  health_events: z.array(z.looseObject({ agent_id: z.string(), at: Iso, kind: z.string() })),
  slashes: z.array(
    z.looseObject({
      id: z.string(),
      kind: z.string(),
      amount_micro_usd: MicroUsd,
      amount_usd: z.string(),
      reason: z.string().nullable(),
      at: Iso,
    }),
  ),
});

/** POST /v1/nodes/{node}/stake|unstake. `stake.required_*`, `eligible` and `ineligible_reasons` are computed
 *  after the operation and are absent from an idempotent replay (the stored answer predates them). */
export const StakeResultSchema = z.looseObject({
  node_id: z.string(),
  provider: z.string(),
  transfer_id: z.string(),
  amount_micro_usd: MicroUsd,
  amount_usd: z.string(),
  stake: StakeView,
  eligible: z.boolean().optional(),
  ineligible_reasons: z.array(z.string()).optional(),
});

/** One lease-period: its lock, and after finalization its outcome and the reasons a period failed. */
export const LeasePeriodSchema = z.looseObject(wire.leasePeriod);

const LeaseCommon = wire.leaseTerms(z.string());

/** POST /v1/leases: the lease and the lock of its (prorated) first period. */
export const CreatedLeaseSchema = z.looseObject({ ...LeaseCommon, lock: LeasePeriodSchema });

/** GET /v1/leases/{id}, DELETE /v1/leases/{id}: the lease with every lease-period and money totals. */
export const LeaseSchema = z.looseObject({
  ...LeaseCommon,
  periods_locked: z.number().int(),
  first_period: Iso,
  current_period: Iso,
  end_reason: z.string().nullable(),
  created_at: Iso,
  ended_at: IsoOrNull,
  locked_micro_usd: MicroUsd,
  locked_usd: z.string(),
  paid_micro_usd: MicroUsd,
  paid_usd: z.string(),
  refunded_micro_usd: MicroUsd,
  refunded_usd: z.string(),
  lease_periods: z.array(LeasePeriodSchema),
});

export const SettlementSchema = z.looseObject({
  period: Iso,
  period_index: z.number().int(),
  lease_periods: z.array(LeasePeriodSchema),
});

/** POST /v1/settlements/{period}/finalize: counts and per-lease outcomes (`already`: finalized before). */
export const FinalizeSchema = z.looseObject(wire.finalize);

export const AbuseReportSchema = z.looseObject(wire.abuseReport);

/** One lease in GET /v1/leases (no lease-periods: GET /v1/leases/{id} has them). */
export const LeaseSummarySchema = z.looseObject({
  ...LeaseCommon,
  periods_locked: z.number().int(),
  current_period: Iso,
  end_reason: z.string().nullable(),
  created_at: Iso,
  ended_at: IsoOrNull,
});

const nextCursor = z.string().nullable();
/** GET /v1/leases, /v1/payouts, /v1/abuse/reports: one page, newest first. */
export const LeasePageSchema = z.looseObject({ leases: z.array(LeaseSummarySchema), next_cursor: nextCursor });
export const PayoutPageSchema = z.looseObject({
  payouts: z.array(z.lazy(() => PayoutSchema)),
  next_cursor: nextCursor,
});
export const AbuseReportPageSchema = z.looseObject({
  reports: z.array(z.lazy(() => AbuseReportSchema)),
  next_cursor: nextCursor,
});

/** POST /v1/usage/report (the uptime reporter). */
export const UsageReportSchema = z.looseObject(wire.usageReport);

export const PayoutSchema = z.looseObject(wire.payout);

export type NodeSummary = z.infer<typeof NodeListSchema>['nodes'][number];
export type RegisteredNode = z.infer<typeof RegisteredNodeSchema>;
export type NodeDetail = z.infer<typeof NodeDetailSchema>;
export type StakeResult = z.infer<typeof StakeResultSchema>;
export type LeasePeriod = z.infer<typeof LeasePeriodSchema>;
export type CreatedLease = z.infer<typeof CreatedLeaseSchema>;
export type Lease = z.infer<typeof LeaseSchema>;
export type Settlement = z.infer<typeof SettlementSchema>;
export type Finalized = z.infer<typeof FinalizeSchema>;
export type AbuseReport = z.infer<typeof AbuseReportSchema>;
export type Payout = z.infer<typeof PayoutSchema>;
export type UsageReport = z.infer<typeof UsageReportSchema>;
export type LeaseSummary = z.infer<typeof LeaseSummarySchema>;
export type LeasePage = z.infer<typeof LeasePageSchema>;
export type PayoutPage = z.infer<typeof PayoutPageSchema>;
export type AbuseReportPage = z.infer<typeof AbuseReportPageSchema>;
export type NodeList = z.infer<typeof NodeListSchema>;
