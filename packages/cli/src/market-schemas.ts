// zod schemas of the market API's answers (packages/control-plane/src/http/market-*.ts; docs/market.md).
// Loose objects, like ledger-schemas.ts: fields added later pass through to --json; those the CLI reads are
// checked.
import { z } from 'zod';

const micro = z.number().int();
const usd = z.string();
const isoOrNull = z.string().nullable();
const reasons = z.array(z.string());

const NodeSummaryShape = {
  node_id: z.string(),
  provider: z.string(),
  name: z.string(),
  region: z.string(),
  tier: z.string(),
  network: z.string(),
  vcpus: z.number().int(),
  capacity_months: z.number().int(),
  machine_months: z.number().int(),
  price_per_vcpu_hour_micro_usd: micro,
  price_per_vcpu_hour_usd: usd,
  binding: z.string(),
  ppid: z.string().nullable(),
  status: z.string(),
  banned_reason: z.string().nullable(),
  created_at: isoOrNull,
};

/** POST /v1/nodes/register: `node_token` only in the first answer (null when an idempotent retry replays it). */
export const RegisteredNodeSchema = z.looseObject({
  ...NodeSummaryShape,
  node_token: z.string().nullable(),
  node_token_note: z.string(),
});
export type RegisteredNode = z.infer<typeof RegisteredNodeSchema>;

const RankShape = {
  eligible: z.boolean(),
  ineligible_reasons: reasons,
  trust: z.number(),
  effective_price_per_vcpu_hour_micro_usd: z.number(),
};

export const NodeListSchema = z.looseObject({ nodes: z.array(z.looseObject({ ...NodeSummaryShape, ...RankShape })) });
export type NodeList = z.infer<typeof NodeListSchema>;

const StakeSchema = z.looseObject({
  held_micro_usd: micro,
  held_usd: usd,
  required_micro_usd: micro,
  required_usd: usd,
});

export const NodeDetailSchema = z.looseObject({
  ...NodeSummaryShape,
  ...RankShape,
  stake: StakeSchema.extend({ per: z.string() }),
  live: z.looseObject({ agents: z.number(), attested: z.number(), healthy: z.number(), apps: z.array(z.string()) }),
  agents: z.array(
    z.looseObject({
      agent_id: z.string(),
      via: z.string(),
      app: z.string().nullable(),
      connected: z.boolean(),
      health: z.string().nullable(),
      attested: z.boolean(),
      last_attest: isoOrNull,
    }),
  ),
  slashes: z.array(
    z.looseObject({ id: z.string(), kind: z.string(), amount_usd: usd, reason: z.string().nullable(), at: isoOrNull }),
  ),
});
export type NodeDetail = z.infer<typeof NodeDetailSchema>;

/** POST /v1/nodes/{node}/stake and …/unstake. */
export const StakeResultSchema = z.looseObject({
  node_id: z.string(),
  provider: z.string(),
  transfer_id: z.string(),
  amount_micro_usd: micro,
  amount_usd: usd,
  stake: StakeSchema,
  eligible: z.boolean(),
  ineligible_reasons: reasons,
});
export type StakeResult = z.infer<typeof StakeResultSchema>;

/** One lease-period: its lock, and after settlement its outcome and the reasons it failed. */
export const LeasePeriodSchema = z.looseObject({
  lease_id: z.string(),
  period: z.string(),
  period_index: z.number().int(),
  node_id: z.string(),
  user: z.string(),
  app: z.string(),
  from: isoOrNull,
  to: isoOrNull,
  amount_micro_usd: micro,
  amount_usd: usd,
  status: z.string(),
  reasons,
  finalized_at: isoOrNull,
});
export type LeasePeriod = z.infer<typeof LeasePeriodSchema>;

/** POST /v1/leases. */
export const CreatedLeaseSchema = z.looseObject({
  lease_id: z.string(),
  user: z.string(),
  app: z.string(),
  node_id: z.string(),
  vcpus: z.number().int(),
  periods: z.number().int().nullable(),
  status: z.string(),
  price_per_vcpu_hour_usd: usd,
  lock: LeasePeriodSchema,
});
export type CreatedLease = z.infer<typeof CreatedLeaseSchema>;

/** GET and DELETE /v1/leases/{id}. */
export const LeaseSchema = z.looseObject({
  lease_id: z.string(),
  user: z.string(),
  app: z.string(),
  node_id: z.string(),
  vcpus: z.number().int(),
  price_per_vcpu_hour_usd: usd,
  periods: z.number().int().nullable(),
  periods_locked: z.number().int(),
  first_period: z.string(),
  current_period: z.string(),
  status: z.string(),
  end_reason: z.string().nullable(),
  created_at: isoOrNull,
  ended_at: isoOrNull,
  locked_usd: usd,
  paid_usd: usd,
  refunded_usd: usd,
  lease_periods: z.array(LeasePeriodSchema),
});
export type Lease = z.infer<typeof LeaseSchema>;

/** POST /v1/settlements/{period}/finalize. */
export const FinalizeSchema = z.looseObject({
  period: z.string(),
  period_index: z.number().int(),
  lease_periods: z.number().int(),
  posted: z.number().int(),
  voided: z.number().int(),
  expired: z.number().int(),
  already_finalized: z.number().int(),
  results: z.array(z.looseObject({ lease_id: z.string(), status: z.string(), reasons, already: z.boolean() })),
});
export type Finalize = z.infer<typeof FinalizeSchema>;

/** GET /v1/settlements/{period}. */
export const SettlementSchema = z.looseObject({
  period: z.string(),
  period_index: z.number().int(),
  lease_periods: z.array(LeasePeriodSchema),
});
export type Settlement = z.infer<typeof SettlementSchema>;

/** POST /v1/abuse/reports, GET /v1/abuse/reports/{id}, POST …/authorize. */
export const AbuseReportSchema = z.looseObject({
  report_id: z.string(),
  node_id: z.string(),
  lease_id: z.string().nullable(),
  period: z.string(),
  reason: z.string(),
  status: z.string(),
  filed_at: isoOrNull,
  authorized_at: isoOrNull,
});
export type AbuseReport = z.infer<typeof AbuseReportSchema>;

/** POST /v1/usage/report. */
export const UsageReportSchema = z.looseObject({
  report_id: z.string(),
  node_id: z.string(),
  period: z.string(),
  units: z.number().int(),
  missed_checks: z.number().int(),
});
export type UsageReport = z.infer<typeof UsageReportSchema>;
