// Arguments of the market commands, checked before any request (usage error, exit 2) so a typo never reaches
// the control plane as a request that might half-succeed.
import { HOUR_MS, parsePeriod } from '@easyenclave/control-plane';
import { redact, usageError } from './errors.js';

/** A rejected argument for an error message: redacted before it is shortened, since a cut secret would no
 *  longer match (and be replaced) when main.ts redacts the whole line. */
const quoted = (value: string, max = 40): string => JSON.stringify(redact(value).slice(0, max));

/** Ids the control plane hands out (node_…, lease_…, abuse_…); URL-safe, so a path segment stays one segment. */
const ID_RE = /^[A-Za-z0-9_.:-]{1,64}$/;

/** A node, lease or report id, ready for a URL path. */
export function idArg(value: string, what: string, example: string): string {
  if (!ID_RE.test(value)) throw usageError(`${quoted(value, 80)} is not a ${what} id (like ${example})`);
  return encodeURIComponent(value);
}

export const nodeId = (v: string) => idArg(v, 'node', 'node_0123456789abcdef');
export const leaseId = (v: string) => idArg(v, 'lease', 'lease_0123456789abcdef');
export const reportId = (v: string) => idArg(v, 'report', 'abuse_0123456789abcdef');

/** An integer flag within [min, max]. */
export function intArg(value: string, flag: string, min: number, max: number): number {
  if (!/^\d{1,13}$/.test(value) || Number(value) < min || Number(value) > max)
    throw usageError(`${flag} must be an integer from ${min} to ${max}, got ${quoted(value)}`);
  return Number(value);
}

const DURATION_UNIT_MS: Record<string, number> = { s: 1000, m: 60_000, h: HOUR_MS, d: 24 * HOUR_MS };

/** A duration flag as the control plane's configuration spells one ("0s", "90s", "5m", "24h", "7d"), in ms. */
export function durationArg(value: string, flag: string, max_ms: number): number {
  const m = /^([0-9]{1,9})([smhd])$/.exec(value);
  const ms = m ? Number(m[1]) * DURATION_UNIT_MS[m[2]!]! : NaN;
  if (!(ms <= max_ms))
    throw usageError(
      `${flag} must be a duration like 0s, 90s, 5m, 24h or 7d (at most ${max_ms / HOUR_MS}h), got ${quoted(value)}`,
    );
  return ms;
}

/**
 * A settlement period: its start in ISO-8601 or its index. Periods are whole hours (EE_SETTLEMENT_PERIOD), so
 * a start that is not on the hour names no period whatever the server's setting; the server checks the rest
 * (400 invalid_period when the start is not on its period boundary).
 */
export function periodArg(value: string, flag = 'period'): string {
  if (parsePeriod(value, HOUR_MS) === undefined) {
    throw usageError(
      `${flag} must be a period start in ISO-8601 on the hour (e.g. 2026-11-22T03:00:00.000Z) or a period index, got ${quoted(value)}`,
    );
  }
  return value;
}

/** One printable line of text at most `max` characters (what the API's PRINTABLE fields accept). */
export function textArg(value: string, flag: string, max: number): string {
  if (value.length < 1 || value.length > max || /\p{Cc}/u.test(value))
    throw usageError(`${flag} must be 1 to ${max} characters without control characters`);
  return value;
}

/** `yes`, or `no (reason, reason)` for eligibility in tables. */
export function eligibleText(eligible: boolean, reasons: readonly string[]): string {
  return eligible ? 'yes' : `no (${reasons.join(', ') || 'unknown'})`;
}
