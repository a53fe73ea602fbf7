// A job's one retry on another node (docs/workloads.md §2, "Retry"): when the node of a job whose user asked
// for it is lost mid-job, one ledger operation refunds the attempt in full, places the job on another eligible
// node (never the lost one) with a fresh lock, and queues it there. Its env was sealed to the lost launcher's
// key, so a job with an env waits (`env_pending`) until the client, having verified the new launcher, seals it
// again (`resealJobOp`); the control plane never holds the plaintext. A job without env is dispatched at once.
import { providerEarnings, providerStake } from '../ledger/chart.js';
import type { LedgerOp } from '../ledger-store/batch.js';
import { attemptDeclared, jobRowOp, lockJob, resolveLock, writeJob, type JobEventResult, type JobRow } from './ops.js';
import { batchView, loadPlacing, pickNode, type JobCandidate, type Placing } from './placing.js';
import { jobLockId } from './money.js';
import { transition, type JobStep } from './state.js';

/** A job is retried at most once: attempt 2 is the last. */
export const MAX_JOB_ATTEMPTS = 2;

/** An earlier attempt, as kept on the job: where it ran, what it locked, and that it was refunded. */
export interface JobAttempt {
  attempt: number;
  node_id: string;
  price_micro: number;
  lock_micro: number;
  settled_micro: number;
  refunded_micro: number;
  reason: string;
  ended_ms: number;
}

/** When the job was placed on its current node: its creation, or the end of its previous attempt. */
export function placedMs(row: JobRow): number {
  if (row.attempts === null) return row.created_ms;
  const all = JSON.parse(row.attempts) as JobAttempt[];
  return all[all.length - 1]?.ended_ms ?? row.created_ms;
}

export const mayRetry = (row: JobRow) => row.retry_on_node_loss === 1 && row.attempt < MAX_JOB_ATTEMPTS;

/**
 * The node is lost: refund this attempt in full and queue the job on the first candidate that takes it, or,
 * when none does (or the job may not be retried), fail it as `lost` (refunded in full).
 */
export function retryJobOp(
  job_id: string,
  reason: string,
  candidates: readonly JobCandidate[],
  liveEligible: (node_id: string) => boolean,
): LedgerOp<JobEventResult> {
  let row: JobRow | undefined;
  let placing: Placing | null = null;
  return {
    accounts: candidates.flatMap((c) => [providerEarnings(c.provider), providerStake(c.provider)]),
    transfers: [],
    async prepare(tx, d) {
      row = await lockJob(tx, d, job_id);
      if (!row) return undefined;
      placing = await loadPlacing(
        tx,
        d,
        candidates.filter((c) => c.id !== row!.node_id).map((c) => c.id),
      );
      const own = attemptDeclared(row);
      return { accounts: own.accounts, transfers: [...own.transfers, jobLockId(row.id, row.attempt + 1)] };
    },
    apply(ctx) {
      const batch = batchView(ctx.writes);
      const prev = row;
      if (!prev) return { ok: false, code: 'unknown_job' };
      if (batch.rows.has(job_id)) return { ok: false, code: 'invalid_transition', message: 'changed in this batch' };
      const lost = transition(prev.state, { type: 'lost', reason }, ctx.now_ms);
      if (!lost.ok) return lost;
      const r = mayRetry(prev) ? transition(prev.state, { type: 'retry', reason }, ctx.now_ms) : lost;
      if (!r.ok || r.billing.kind !== 'refund') return r.ok ? { ok: false, code: 'invalid_transition' } : r;
      // This attempt's lock is voided first: the next lock may need the same funds.
      const refunded = resolveLock(ctx, prev, r.billing);
      const job: JobRow = { ...prev, updated_ms: ctx.now_ms };
      const history = JSON.parse(prev.history) as JobStep[];
      const others = candidates.filter((c) => c.id !== prev.node_id);
      const attempt = prev.attempt + 1;
      const picked =
        r.state === 'queued'
          ? pickNode(ctx, { ...prev, env_key: null, attempt }, others, placing!, liveEligible)
          : null;
      if (picked === null || !picked.ok) {
        // No retry (not asked, or no other node takes it): the attempt ends failed, as any lost job.
        const why = picked === null ? '' : `; no other node could take the retry (${picked.code})`;
        Object.assign(job, refunded, { state: 'failed', reason: `${lost.step.reason}${why}`.slice(0, 256) });
        job.finished_ms = ctx.now_ms;
        job.sealed_env = null;
        history.push({ ...lost.step, reason: job.reason });
      } else {
        const done: JobAttempt = {
          attempt: prev.attempt,
          node_id: prev.node_id,
          price_micro: prev.price_micro,
          lock_micro: prev.lock_micro,
          settled_micro: refunded.settled_micro!,
          refunded_micro: refunded.refunded_micro!,
          reason,
          ended_ms: ctx.now_ms,
        };
        const { node, candidate, lock, seq } = picked;
        const hadEnv = prev.env_key !== null;
        Object.assign(job, {
          node_id: node.id,
          provider: node.provider,
          price_micro: node.price_micro,
          lock_micro: Number(lock),
          attempt,
          attempts: JSON.stringify([...(JSON.parse(prev.attempts ?? '[]') as JobAttempt[]), done]),
          assignment_seq: seq,
          sealed_env: null,
          env_key: hadEnv ? candidate.hpke_public_key : null,
          env_pending: hadEnv ? 1 : 0,
          state: 'queued',
          image_id: null,
          image_digest: null,
          started_ms: null,
        });
        job.reason =
          `attempt ${prev.attempt} lost on node ${prev.node_id} (${reason}), refunded in full; ` +
          `attempt ${attempt} placed on node ${node.id}${hadEnv ? ', waiting for the env sealed to its launcher' : ''}`;
        job.reason = job.reason.slice(0, 256);
        history.push({ ...r.step, reason: job.reason });
      }
      job.history = JSON.stringify(history);
      return writeJob(ctx, job, prev.state);
    },
  };
}

export type ResealResult =
  | { ok: true; job: JobRow; changed: boolean }
  | { ok: false; code: 'unknown_job' | 'env_not_pending' | 'invalid_env_key'; message?: string };

/** The client's env, sealed again to the new launcher of a retried job: stored, and the job may be dispatched. */
export function resealJobOp(job_id: string, sealed_env: string, env_key: string): LedgerOp<ResealResult> {
  return jobRowOp(job_id, (ctx, prev): ResealResult => {
    if (!prev) return { ok: false, code: 'unknown_job' };
    if (prev.state !== 'queued' || prev.env_pending !== 1)
      return { ok: false, code: 'env_not_pending', message: `the job (${prev.state}) waits for no env` };
    if (prev.env_key !== env_key)
      return { ok: false, code: 'invalid_env_key', message: "seal the env to the key the job's env_required names" };
    return writeJob(ctx, { ...prev, sealed_env, env_pending: 0, updated_ms: ctx.now_ms }, prev.state);
  });
}
