// Tiers, stake, eligibility, trust and routing order (docs/design.md §4–5, docs/market.md). Pure functions: the
// callers gather the inputs (ledger balances, live tunnel state, records) and pass the time in.
import { TIERS } from '@easyenclave/protocol/market-wire';
import { HOUR_MS } from './period.js';

/** The tiers are part of the market's wire vocabulary (protocol/market-wire.ts). */
export { TIERS };
export type Tier = (typeof TIERS)[number];

/** The slashing penalty of a tier, in hours of the node's revenue at its posted price. */
export const PENALTY_HOURS: Record<Tier, number> = { premium: 720, standard: 24, economy: 1 };
/** Required stake covers at least one day of revenue, and at least the tier's penalty. */
export const MIN_STAKE_HOURS = 24;

/** The node's revenue (micro-USD) at its posted price over `hours`, all vCPUs. */
export const revenue = (price_micro: bigint, vcpus: number, hours: number): bigint =>
  price_micro * BigInt(vcpus) * BigInt(hours);

export const requiredStake = (price_micro: bigint, vcpus: number, tier: Tier): bigint =>
  revenue(price_micro, vcpus, Math.max(MIN_STAKE_HOURS, PENALTY_HOURS[tier]));

/** The outage slash before clamping (the ledger's balancing_debit clamps it to the stake held). */
export const slashAmount = (price_micro: bigint, vcpus: number, tier: Tier): bigint =>
  revenue(price_micro, vcpus, PENALTY_HOURS[tier]);

export interface EligibilityInput {
  status: 'active' | 'banned';
  stake_held: bigint;
  stake_required: bigint;
  /** Some agent bound to the node holds a current attestation (the tunnel re-attests every interval and drops an agent that fails). */
  attested_agents: number;
  /** Some attested agent passes health checks now. */
  healthy_agents: number;
}

export type IneligibleReason = 'banned' | 'stake_below_required' | 'no_attested_agent' | 'health_failing';

/** Eligible = active, stake ≥ required, fresh attestation, health passing, not banned. Returns every reason it is not. */
export function eligibility(n: EligibilityInput): { eligible: boolean; reasons: IneligibleReason[] } {
  const reasons: IneligibleReason[] = [];
  if (n.status !== 'active') reasons.push('banned');
  if (n.stake_held < n.stake_required) reasons.push('stake_below_required');
  if (n.attested_agents === 0) reasons.push('no_attested_agent');
  else if (n.healthy_agents === 0) reasons.push('health_failing');
  return { eligible: reasons.length === 0, reasons };
}

export interface TrustInput {
  attest_ok: number;
  attest_failed: number;
  periods_posted: number;
  periods_voided: number;
  authorised_reports: number;
}

/** Failures weigh 4x successes in the attestation and uptime factors. */
export const FAILURE_WEIGHT = 4;

/**
 * t = a · u · b ∈ (0, 1]:
 *   a = (1 + attest_ok) / (1 + attest_ok + 4·attest_failed)        over the node's last 100 attestations
 *   u = (1 + periods_posted) / (1 + periods_posted + 4·periods_voided)  over its settled lease-periods
 *   b = 1 / (1 + authorised_reports)
 * A new node starts at 1; each factor only falls with bad records and recovers with good ones.
 */
export function trust(t: TrustInput): number {
  const a = (1 + t.attest_ok) / (1 + t.attest_ok + FAILURE_WEIGHT * t.attest_failed);
  const u = (1 + t.periods_posted) / (1 + t.periods_posted + FAILURE_WEIGHT * t.periods_voided);
  const b = 1 / (1 + t.authorised_reports);
  return a * u * b;
}

export interface RankInput {
  node_id: string;
  price_micro: bigint;
  trust: number;
}

/** Effective price = price / t (micro-USD per vCPU-hour, as a float: it only orders, it never moves money). */
export const effectivePrice = (price_micro: bigint, t: number): number => Number(price_micro) / t;

/** Lowest effective price first; ties by node id, so every replica orders the same way. */
export function rankNodes<T extends RankInput>(nodes: readonly T[]): T[] {
  return [...nodes].sort((x, y) => {
    const ex = effectivePrice(x.price_micro, x.trust);
    const ey = effectivePrice(y.price_micro, y.trust);
    if (ex !== ey) return ex < ey ? -1 : 1;
    return x.node_id < y.node_id ? -1 : x.node_id > y.node_id ? 1 : 0;
  });
}

export const outageThreshold = (tier: Tier, t: { premium: number; standard: number; economy: number }): number =>
  t[tier];
export const hours = (ms: number) => ms / HOUR_MS;
