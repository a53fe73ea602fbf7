// The market API's answers as they travel (docs/market.md): one list of fields per answer, shared by the control
// plane (which validates and documents them in OpenAPI) and the SDK (which parses them). Each side brings its own
// codecs for the three kinds of leaf — the control plane's document the wire (a JSON integer of micro-USD), the
// SDK's read it (into a bigint) — so the fields cannot drift apart. Free of Node built-ins (the SDK's core is
// browser-safe); imported by path (@easyenclave/protocol/market-wire).
import { z } from 'zod';

export const TIERS = ['premium', 'standard', 'economy'] as const;

/** How each side reads or documents a leaf of the market's answers. */
export interface MarketCodecs<M extends z.ZodType, U extends z.ZodType, T extends z.ZodType> {
  /** A `*_micro_usd` amount. */
  readonly micro_usd: M;
  /** The same amount for people (`*_usd`, "$12.50"). */
  readonly usd: U;
  /** An ISO-8601 UTC time. */
  readonly time: T;
}

/** The field lists of the market's answers, built on one side's codecs. */
export function marketFields<M extends z.ZodType, U extends z.ZodType, T extends z.ZodType>(c: MarketCodecs<M, U, T>) {
  /** `{name}_micro_usd` and `{name}_usd`. */
  const money = <N extends string>(name: N) =>
    ({ [`${name}_micro_usd`]: c.micro_usd, [`${name}_usd`]: c.usd }) as Record<`${N}_micro_usd`, M> &
      Record<`${N}_usd`, U>;
  const time = c.time;
  const timeOrNull = () => c.time.nullable();
  return {
    money,
    /** A node as listed; `status` is the caller's (a closed set on the server, open to new values in the SDK). */
    nodeSummary: <S extends z.ZodType>(status: S) => ({
      node_id: z.string(),
      provider: z.string(),
      name: z.string(),
      region: z.string(),
      tier: z.enum(TIERS),
      network: z.string(),
      vcpus: z.number().int(),
      capacity_months: z.number().int(),
      machine_months: z.number().int(),
      ...money('price_per_vcpu_hour'),
      binding: z.enum(['ppid', 'node_token']),
      ppid: z.string().nullable(),
      status,
      banned_reason: z.string().nullable(),
      banned_at: timeOrNull(),
      created_at: time,
    }),
    eligibility: {
      eligible: z.boolean(),
      ineligible_reasons: z.array(z.string()),
      trust: z.number(),
      effective_price_per_vcpu_hour_micro_usd: c.micro_usd,
    },
    /** A lease's terms; `status` is the caller's (as for a node). */
    leaseTerms: <S extends z.ZodType>(status: S) => ({
      lease_id: z.string(),
      user: z.string(),
      app: z.string(),
      node_id: z.string(),
      vcpus: z.number().int(),
      periods: z.number().int().nullable(),
      status,
      ...money('price_per_vcpu_hour'),
    }),
    /** One lease-period: its lock, and after finalization its outcome and the reasons a period failed. */
    leasePeriod: {
      lease_id: z.string(),
      period: time,
      period_index: z.number().int(),
      node_id: z.string(),
      provider: z.string(),
      user: z.string(),
      app: z.string(),
      from: time,
      to: time,
      ...money('amount'),
      status: z.enum(['locked', 'posted', 'voided', 'expired']),
      reasons: z.array(z.string()),
      finalized_at: timeOrNull(),
    },
    /** POST /v1/settlements/{period}/finalize: counts and per-lease outcomes (`already`: finalized before). */
    finalize: {
      period: time,
      period_index: z.number().int(),
      lease_periods: z.number().int(),
      posted: z.number().int(),
      voided: z.number().int(),
      expired: z.number().int(),
      already_finalized: z.number().int(),
      results: z.array(
        z.looseObject({ lease_id: z.string(), status: z.string(), reasons: z.array(z.string()), already: z.boolean() }),
      ),
    },
    /** POST /v1/usage/report (the uptime reporter). */
    usageReport: {
      report_id: z.string(),
      node_id: z.string(),
      period: time,
      units: z.number().int(),
      missed_checks: z.number().int(),
    },
    abuseReport: {
      report_id: z.string(),
      node_id: z.string(),
      lease_id: z.string().nullable(),
      period: time,
      period_index: z.number().int(),
      reason: z.string(),
      status: z.enum(['filed', 'authorized']),
      filed_at: time,
      authorized_at: timeOrNull(),
    },
    payout: {
      payout_id: z.string(),
      provider: z.string(),
      ...money('amount'),
      status: z.enum(['pending', 'confirmed', 'cancelled']),
      reference: z.string().nullable(),
      created_at: time,
      resolved_at: timeOrNull(),
    },
  };
}
