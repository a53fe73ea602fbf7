// A job's money (docs/workloads.md §4), pure. The user's lock is vCPUs × price × max runtime, rounded up; what
// settles is the signed vCPU-ms × price, rounded down and never more than vCPUs × max runtime, so it always
// fits in the lock; the rest of the lock is voided back to the user. Prices are micro-USD per vCPU-hour.
import { HOUR_MS } from '../market/period.js';

/** How long a job's lock lives past its max runtime before the ledger voids it by itself (a backstop: the
 *  control plane settles or refunds long before). Covers the launcher's start, its stop grace and a slow report. */
export const JOB_LOCK_SLACK_MS = 60 * 60_000;

/** The transfers of a job's attempt: the first has none of the `:n` suffix (the ids before retries existed). */
const attemptId = (kind: string, job_id: string, attempt: number) =>
  attempt === 1 ? `${kind}:${job_id}` : `${kind}:${job_id}:${attempt}`;
export const jobLockId = (job_id: string, attempt = 1) => attemptId('lock', job_id, attempt);
export const jobSettleId = (job_id: string, attempt = 1) => attemptId('settle', job_id, attempt);
export const jobRefundId = (job_id: string, attempt = 1) => attemptId('refund', job_id, attempt);

/** micro-USD locked for a job: ceil(price × vcpus × max_runtime_ms / 1 h). */
export function jobLockAmount(price_micro: bigint, vcpus: number, max_runtime_ms: number): bigint {
  assertPositive(vcpus, 'vcpus');
  assertPositive(max_runtime_ms, 'max_runtime_ms');
  const num = price_micro * BigInt(vcpus) * BigInt(max_runtime_ms);
  const h = BigInt(HOUR_MS);
  return (num + h - 1n) / h;
}

/** micro-USD that settles for `billed_vcpu_ms` of signed usage: floor(price × min(billed, vcpus × max) / 1 h). */
export function jobSettleAmount(
  price_micro: bigint,
  vcpus: number,
  max_runtime_ms: number,
  billed_vcpu_ms: number,
): bigint {
  if (!Number.isSafeInteger(billed_vcpu_ms) || billed_vcpu_ms < 0)
    throw new RangeError(`billed_vcpu_ms must be a non-negative integer, got ${billed_vcpu_ms}`);
  const capped = Math.min(billed_vcpu_ms, vcpus * max_runtime_ms);
  const amount = (price_micro * BigInt(capped)) / BigInt(HOUR_MS);
  const lock = jobLockAmount(price_micro, vcpus, max_runtime_ms);
  if (amount > lock) throw new Error(`job money bug: settlement ${amount} exceeds its lock ${lock}`);
  return amount;
}

function assertPositive(n: number, name: string): void {
  if (!Number.isSafeInteger(n) || n <= 0) throw new RangeError(`${name} must be a positive integer, got ${n}`);
}
