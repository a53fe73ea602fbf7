// Request and response schemas of the market API (docs/market.md): validated by fastify through the zod type
// provider, and the source of /openapi.json. Responses are loose objects: they document every field and
// check its type, and a field added later does not break an older schema.
import { z } from 'zod';
import { AppName } from '@easyenclave/protocol';
import { marketFields } from '@easyenclave/protocol/market-wire';
import { IDENTITY_ID_PATTERN } from '../ledger/chart.js';
import { TIERS } from '../market/policy.js';
import { amountFields, withAmount } from './ledger-views.js';
import { IsoTime, MicroUsd, pathId, printable, Usd } from './schemas.js';

// Limits on the market's request fields.
/** vCPUs of one node or one lease. */
export const MAX_VCPUS = 4096;
/** Months of capacity a node offers. */
export const MAX_CAPACITY_MONTHS = 120;
/** Periods one lease may run (about 11 years of one-hour periods). */
export const MAX_LEASE_PERIODS = 100_000;
/** Usage units and missed checks in one usage report. */
export const MAX_USAGE_UNITS = 1e12;
export const MAX_MISSED_CHECKS = 1e9;
/** Lengths of names, ids and free text. */
const MAX_NODE_NAME_CHARS = 128;
const MAX_REGION_CHARS = 64;
const MAX_ID_CHARS = 64;
const MAX_PERIOD_CHARS = 40;
const MAX_REASON_CHARS = 500;
const MAX_ABUSE_REASON_CHARS = 1000;
const MAX_REFERENCE_CHARS = 128;

const Identity = z.string().regex(IDENTITY_ID_PATTERN, 'must be an account id like user:0123… or provider:0123…');

/** The answers' fields, shared with the SDK (protocol/market-wire.ts), on the wire's codecs. */
const wire = marketFields({ micro_usd: MicroUsd, usd: Usd, time: IsoTime });
/** `{name}_micro_usd` and `{name}_usd` in a response. */
const moneyOut = wire.money;

// ---------- Requests ----------

export const RegisterNodeBody = withAmount(
  z.strictObject({
    provider: Identity.optional().meta({ description: 'the admin registers a node for a provider' }),
    name: printable(MAX_NODE_NAME_CHARS).optional(),
    region: z
      .string()
      .min(1)
      .max(MAX_REGION_CHARS)
      .regex(/^[A-Za-z0-9_.-]+$/),
    tier: z.enum(TIERS),
    vcpus: z.number().int().min(1).max(MAX_VCPUS),
    capacity_months: z.number().int().min(1).max(MAX_CAPACITY_MONTHS).default(1),
    ...amountFields('price_per_vcpu_hour'),
    network: z
      .string()
      .regex(/^[a-z0-9][a-z0-9-]{0,31}$/)
      .default('sandbox-1'),
    ppid: z
      .string()
      .regex(/^[0-9a-f]{32}$/)
      .optional()
      .meta({ description: "sealed networks: the platform's PPID (32 hex)" }),
  }),
  'price_per_vcpu_hour',
);

/** Stake: an amount; unstake: an amount or nothing (all of it). A POST without a body is `{}`. */
export const StakeBody = withAmount(z.strictObject(amountFields()).default({}));
export const UnstakeBody = withAmount(z.strictObject(amountFields()).default({}), 'amount', true);
export const FraudBody = z.strictObject({ reason: printable(MAX_REASON_CHARS) });

export const NodeParams = z.object({ node: pathId(MAX_ID_CHARS) });
export const IdParams = z.object({ id: pathId(MAX_ID_CHARS) });
export const PeriodParams = z.object({ period: pathId(MAX_PERIOD_CHARS) });

export const LeaseBody = z.strictObject({
  app: AppName.meta({ description: "the app the lease pays for: its traffic goes to the lease's node" }),
  vcpus: z.number().int().min(1).max(MAX_VCPUS),
  periods: z
    .number()
    .int()
    .min(1)
    .max(MAX_LEASE_PERIODS)
    .optional()
    .meta({ description: 'periods to run, the prorated first one included; omitted = until cancelled or unfunded' }),
  user: Identity.optional().meta({ description: 'the admin creates leases on behalf of a user' }),
});

const PeriodField = z.union([z.string().max(MAX_PERIOD_CHARS), z.number().int().min(0)]);
export const UsageBody = z.strictObject({
  node: pathId(MAX_ID_CHARS),
  period: PeriodField,
  units: z.number().int().min(0).max(MAX_USAGE_UNITS).default(0),
  missed_checks: z.number().int().min(0).max(MAX_MISSED_CHECKS),
  detail: printable(MAX_REASON_CHARS).optional(),
});
export const AbuseBody = z.strictObject({
  node: pathId(MAX_ID_CHARS),
  lease: pathId(MAX_ID_CHARS).optional(),
  period: PeriodField.optional(),
  reason: printable(MAX_ABUSE_REASON_CHARS),
});
export const PayoutBody = withAmount(
  z.strictObject({
    provider: Identity,
    ...amountFields(),
    reference: z
      .string()
      .max(MAX_REFERENCE_CHARS)
      .regex(/^[A-Za-z0-9:_.@/-]+$/)
      .optional(),
  }),
);

// ---------- Responses ----------

const NodeSummaryFields = wire.nodeSummary(z.enum(['active', 'banned']));
const EligibilityFields = wire.eligibility;

export const RegisteredNodeView = z.looseObject({
  ...NodeSummaryFields,
  node_token: z.string().nullable().meta({ description: 'shown once; null in a replayed answer' }),
  node_token_note: z.string(),
});
export const NodeListView = z.looseObject({
  nodes: z.array(z.looseObject({ ...NodeSummaryFields, ...EligibilityFields })),
  next_cursor: z.string().nullable().meta({ description: 'pass as `cursor` for the next page; null at the end' }),
});
export const NodeDetailView = z.looseObject({
  ...NodeSummaryFields,
  ...EligibilityFields,
  stake: z.looseObject({ ...moneyOut('held'), ...moneyOut('required'), per: z.literal('provider') }),
  live: z.looseObject({
    agents: z.number().int().min(0),
    attested: z.number().int().min(0),
    healthy: z.number().int().min(0),
    apps: z.array(z.string()),
  }),
  agents: z.array(
    z.looseObject({
      agent_id: z.string(),
      via: z.string(),
      bound_at: IsoTime.nullable(),
      app: z.string().nullable(),
      connected: z.boolean(),
      health: z.string().nullable(),
      attested: z.boolean(),
      last_attest: IsoTime.nullable(),
    }),
  ),
  attestations: z.array(z.looseObject({ agent_id: z.string(), at: IsoTime, ok: z.boolean() })),
  health_events: z.array(z.looseObject({ agent_id: z.string(), at: IsoTime, kind: z.string() })),
  slashes: z.array(
    z.looseObject({ id: z.string(), kind: z.string(), ...moneyOut('amount'), reason: z.string(), at: IsoTime }),
  ),
});
export const StakeView = z.looseObject({
  node_id: z.string(),
  provider: z.string(),
  transfer_id: z.string(),
  ...moneyOut('amount'),
  stake: z.looseObject({ ...moneyOut('held'), ...moneyOut('required') }),
  eligible: z.boolean(),
  ineligible_reasons: z.array(z.string()),
});
export const FraudView = z.looseObject({
  node_id: z.string(),
  status: z.literal('banned'),
  ...moneyOut('slashed'),
  voided: z.array(z.looseObject({ lease_id: z.string(), period_index: z.number().int(), ...moneyOut('amount') })),
});

export const PeriodView = z.looseObject(wire.leasePeriod).meta({ id: 'LeasePeriod' });

export const CreatedLeaseView = z.looseObject({ ...wire.leaseTerms(z.literal('active')), lock: PeriodView });
export const LeaseView = z.looseObject({
  lease_id: z.string(),
  user: z.string(),
  app: z.string(),
  node_id: z.string(),
  vcpus: z.number().int(),
  ...moneyOut('price_per_vcpu_hour'),
  periods: z.number().int().nullable(),
  periods_locked: z.number().int(),
  first_period: IsoTime,
  current_period: IsoTime,
  status: z.enum(['active', 'ended']),
  end_reason: z.string().nullable(),
  created_at: IsoTime,
  ended_at: IsoTime.nullable(),
  ...moneyOut('locked'),
  ...moneyOut('paid'),
  ...moneyOut('refunded'),
  lease_periods_total: z.number().int(),
  lease_periods: z.array(PeriodView),
});

export const FinalizeView = z.looseObject(wire.finalize);
export const SettlementView = z.looseObject({
  period: IsoTime,
  period_index: z.number().int(),
  lease_periods: z.array(PeriodView),
});
export const UsageView = z.looseObject(wire.usageReport);
export const AbuseView = z.looseObject(wire.abuseReport);
export const PayoutView = z.looseObject(wire.payout);
