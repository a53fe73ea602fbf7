// Settlement periods (docs/market.md): epoch-aligned, `period_ms` long (a whole number of hours). A period is
// named by its index floor(t / period_ms) internally and by its start in ISO-8601 on the API. Pure.

export const HOUR_MS = 3_600_000;

export const periodIndex = (t_ms: number, period_ms: number): number => Math.floor(t_ms / period_ms);
export const periodStart = (index: number, period_ms: number): number => index * period_ms;
export const periodEnd = (index: number, period_ms: number): number => (index + 1) * period_ms;
export const periodIso = (index: number, period_ms: number): string =>
  new Date(periodStart(index, period_ms)).toISOString();

/**
 * An API period parameter: the period's start as ISO-8601 (`2026-11-22T03:00:00.000Z`, any ISO form Date
 * parses to exactly a period start) or its integer index. Undefined when it names no period.
 */
export function parsePeriod(text: string, period_ms: number): number | undefined {
  let index: number;
  if (/^[0-9]{1,12}$/.test(text)) index = Number(text);
  else {
    if (!/^\d{4}-\d{2}-\d{2}T/.test(text)) return undefined;
    const t = Date.parse(text);
    if (!Number.isFinite(t) || t < 0 || t % period_ms !== 0) return undefined;
    index = t / period_ms;
  }
  // Bounded so every period has an ISO name (Date's range) and nothing is filed centuries ahead.
  return periodStart(index, period_ms) <= MAX_PERIOD_START_MS ? index : undefined;
}

/** The latest period start the API accepts: 2100-01-01T00:00:00Z. */
export const MAX_PERIOD_START_MS = Date.UTC(2100, 0, 1);

/** micro-USD for `vcpus` at `price` (micro-USD per vCPU-hour) during `ms`, rounded up (prorating). */
export function amountFor(price_micro: bigint, vcpus: number, ms: number): bigint {
  const num = price_micro * BigInt(vcpus) * BigInt(ms);
  const h = BigInt(HOUR_MS);
  return (num + h - 1n) / h;
}

/** The lock of a lease's period: its window [from, to) and amount. The first period is prorated to what remains. */
export function lockFor(
  price_micro: bigint,
  vcpus: number,
  index: number,
  period_ms: number,
  now_ms: number,
): { from_ms: number; to_ms: number; amount: bigint } {
  const start = periodStart(index, period_ms);
  const end = periodEnd(index, period_ms);
  const from = Math.min(Math.max(start, now_ms), end);
  return { from_ms: from, to_ms: end, amount: amountFor(price_micro, vcpus, end - from) };
}

export const lockId = (lease: string, index: number) => `lock:${lease}:${index}`;
export const settleId = (lease: string, index: number) => `settle:${lease}:${index}`;
export const refundId = (lease: string, index: number) => `refund:${lease}:${index}`;
