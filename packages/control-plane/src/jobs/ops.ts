// Every job mutation is one LedgerOp (ledger-store/batch.ts): `prepare` reads and locks the job's and its
// node's rows inside the ledger's transaction, `apply` runs the state machine (state.ts) and the pure engine,
// and the job row is written in the same transaction — a job's state and its money commit together or not at
// all. Lock order as the market's: node rows, then the job row.
import { createTransfers } from '../ledger/engine.js';
import { providerEarnings, providerStake } from '../ledger/chart.js';
import type { Refusal, TransferRefusalCode } from '../ledger/refusal.js';
import type { TransferInput } from '../ledger/types.js';
import type { ApplyContext, LedgerOp } from '../ledger-store/batch.js';
import { forUpdate, lockNodes } from '../market/ops.js';
import { jobLockId, jobRefundId, jobSettleAmount, jobSettleId } from './money.js';
import { batchView, loadPlacing, pickNode, type JobCandidate, type Placing } from './placing.js';
import { transition, type Billing, type JobEvent, type JobStep } from './state.js';
import type { JobsTable } from './store/schema.js';
import type { Tx } from '../store/database.js';
import type { StoreDialect } from '../store/index.js';
import { ACTIVE_STATES } from './capacity.js';

export type JobRow = JobsTable;

export type JobRefusalCode =
  | TransferRefusalCode
  | 'no_node_with_capacity'
  | 'job_conflict'
  | 'unknown_job'
  | 'job_finished'
  | 'invalid_transition';
export type JobRefusal = Refusal<JobRefusalCode>;

export { ACTIVE_STATES, type JobCandidate };

export interface NewJob {
  id: string;
  user_id: string;
  image: string;
  command: readonly string[] | null;
  vcpus: number;
  memory_mib: number;
  max_runtime_ms: number;
  network: boolean;
  sealed_env: string | null;
  env_key: string | null;
  result_key: string;
  output_file?: string | null;
  /** One retry on another node if this one is lost mid-job. */
  retry_on_node_loss?: boolean;
}

export type CreateJobResult = { ok: true; job: JobRow } | JobRefusal;

/**
 * Places a job on the first candidate (cheapest first) that is still active, staked, live and has room for it
 * next to the node's unfinished jobs, and locks vCPUs × price × max runtime from the user toward its provider.
 * A retry with the same id finds the job it created.
 */
export function createJobOp<T>(
  j: NewJob,
  candidates: readonly JobCandidate[],
  liveEligible: (node_id: string) => boolean,
  then: (r: CreateJobResult, ctx: ApplyContext) => T,
): LedgerOp<T> {
  let placing: Placing | null = null;
  let existing: JobRow | undefined;
  return {
    accounts: [j.user_id, ...candidates.flatMap((c) => [providerEarnings(c.provider), providerStake(c.provider)])],
    transfers: [jobLockId(j.id)],
    async prepare(tx, d) {
      existing = (await tx.selectFrom('jobs').selectAll().where('id', '=', j.id).executeTakeFirst()) as
        JobRow | undefined;
      if (existing) return;
      placing = await loadPlacing(
        tx,
        d,
        candidates.map((c) => c.id),
      );
    },
    apply(ctx) {
      if (existing) {
        const e = existing;
        const same =
          e.user_id === j.user_id &&
          e.image === j.image &&
          e.vcpus === j.vcpus &&
          e.memory_mib === j.memory_mib &&
          e.max_runtime_ms === j.max_runtime_ms;
        return then(same ? { ok: true, job: e } : { ok: false, code: 'job_conflict' }, ctx);
      }
      const picked = pickNode(ctx, { ...j, attempt: 1 }, candidates, placing!, liveEligible);
      if (!picked.ok) return then(picked, ctx);
      const { node, lock, seq } = picked;
      const step: JobStep = { state: 'queued', at_ms: ctx.now_ms, reason: `placed on node ${node.id}` };
      const job: JobRow = {
        id: j.id,
        user_id: j.user_id,
        node_id: node.id,
        provider: node.provider,
        image: j.image,
        command: j.command === null ? null : JSON.stringify(j.command),
        vcpus: j.vcpus,
        memory_mib: j.memory_mib,
        max_runtime_ms: j.max_runtime_ms,
        network: j.network ? 1 : 0,
        price_micro: node.price_micro,
        lock_micro: Number(lock),
        sealed_env: j.sealed_env,
        env_key: j.env_key,
        result_key: j.result_key,
        state: 'queued',
        reason: step.reason,
        history: JSON.stringify([step]),
        assignment_seq: seq,
        cancel_requested: 0,
        image_id: null,
        image_digest: null,
        exit_code: null,
        started_ms: null,
        finished_ms: null,
        billed_vcpu_ms: null,
        settled_micro: null,
        refunded_micro: null,
        result_sealed: null,
        usage_record: null,
        created_ms: ctx.now_ms,
        updated_ms: ctx.now_ms,
        retry_on_node_loss: j.retry_on_node_loss === true ? 1 : 0,
        attempt: 1,
        env_pending: 0,
        attempts: null,
        output_file: j.output_file ?? null,
      };
      batchView(ctx.writes).rows.set(job.id, job);
      ctx.writes.after.push(async (tx) => {
        await tx.insertInto('jobs').values(job).execute();
      });
      return then({ ok: true, job }, ctx);
    },
  };
}

/** Writes a job as an operation left it (after the batch's transfers), if it is still in the state it read. */
export function writeJob(
  ctx: ApplyContext,
  job: JobRow,
  from: JobRow['state'],
): { ok: true; job: JobRow; changed: boolean } {
  batchView(ctx.writes).rows.set(job.id, job);
  ctx.writes.after.push(async (tx) => {
    // cancel_requested is the cancel route's alone: an event must not write back a value it read earlier.
    const { id: _id, cancel_requested: _cancel, ...set } = job;
    await tx.updateTable('jobs').set(set).where('id', '=', job.id).where('state', '=', from).execute();
  });
  return { ok: true, job, changed: true };
}

/** Reads and locks a job's node row, then the job row (the market's lock order). */
export async function lockJob(tx: Tx, d: StoreDialect, job_id: string): Promise<JobRow | undefined> {
  const node_id = (await tx.selectFrom('jobs').select('node_id').where('id', '=', job_id).executeTakeFirst())?.node_id;
  if (node_id === undefined) return undefined;
  await lockNodes(tx, d, [node_id]);
  return (await forUpdate(tx.selectFrom('jobs').selectAll().where('id', '=', job_id), d).executeTakeFirst()) as
    JobRow | undefined;
}

/** The accounts and transfers the current attempt's lock may touch. */
export const attemptDeclared = (row: JobRow) => ({
  accounts: [row.user_id, providerEarnings(row.provider)],
  transfers: [jobLockId(row.id, row.attempt), jobSettleId(row.id, row.attempt), jobRefundId(row.id, row.attempt)],
});

/**
 * Resolves the current attempt's lock: settling posts part of it to the provider and releases the rest in the
 * same transfer; nothing billed (or a refund) voids it. A lock the ledger already expired (the control plane
 * was down far past the job's end) counts as refunded in full.
 */
export function resolveLock(
  ctx: ApplyContext,
  prev: JobRow,
  billing: Exclude<Billing, { kind: 'none' }>,
): Pick<JobRow, 'settled_micro' | 'refunded_micro' | 'billed_vcpu_ms'> {
  const { id, attempt } = prev;
  const lock = BigInt(prev.lock_micro);
  const settle =
    billing.kind === 'settle'
      ? jobSettleAmount(BigInt(prev.price_micro), prev.vcpus, prev.max_runtime_ms, billing.billed_vcpu_ms)
      : 0n;
  const base = { debit_account: prev.user_id, credit_account: providerEarnings(prev.provider) };
  const input: TransferInput =
    settle > 0n
      ? {
          ...base,
          id: jobSettleId(id, attempt),
          pending_id: jobLockId(id, attempt),
          amount: settle,
          flags: { post_pending: true },
        }
      : { ...base, id: jobRefundId(id, attempt), pending_id: jobLockId(id, attempt), flags: { void_pending: true } };
  const [t] = createTransfers(ctx.state, [input], ctx.now_ms);
  let settled = settle;
  if (t === 'pending_transfer_expired') settled = 0n;
  else if (t !== 'ok') throw new Error(`jobs: resolving the lock of ${id} (attempt ${attempt}): ${t}`);
  return {
    settled_micro: Number(settled),
    refunded_micro: Number(lock - settled),
    billed_vcpu_ms: billing.kind === 'settle' ? Math.min(billing.billed_vcpu_ms, prev.vcpus * prev.max_runtime_ms) : 0,
  };
}

/** Facts the launcher reported with an event, stored on the row (never secret: ciphertext and public facts). */
export interface JobFacts {
  image_id?: string;
  image_digest?: string | null;
  exit_code?: number | null;
  started_ms?: number;
  result_sealed?: string;
  usage_record?: string;
}

export type JobEventResult = { ok: true; job: JobRow; changed: boolean } | JobRefusal;

/**
 * Applies one event to a job: the state machine decides the new state and what happens to the lock (settle
 * the signed usage, refund in full, nothing). Settling posts part of the lock to the provider and releases the
 * rest in the same transfer; nothing billed means a void. A lock the ledger already expired (the control plane
 * was down far past the job's end) counts as refunded in full. A terminal job refuses every event.
 */
export function jobEventOp(job_id: string, ev: JobEvent, facts: JobFacts = {}): LedgerOp<JobEventResult> {
  return jobRowOp(job_id, (ctx, prev, row) => {
    if (!prev) return { ok: false, code: 'unknown_job' };
    if (ev.type === 'retry') return { ok: false, code: 'invalid_transition', message: 'a retry is retryJobOp' };
    const r = transition(prev.state, ev, ctx.now_ms);
    if (!r.ok) return r;
    // Money needs the accounts prepare declared from the stored row (a job created in this very batch has none).
    if (r.billing.kind !== 'none' && (!row || row.attempt !== prev.attempt))
      return { ok: false, code: 'invalid_transition', message: 'the job was placed in this batch' };
    const job: JobRow = { ...prev };
    if (r.billing.kind !== 'none') {
      Object.assign(job, resolveLock(ctx, prev, r.billing));
      job.finished_ms = ctx.now_ms;
    }
    job.state = r.state;
    job.reason = r.step.reason;
    job.history = JSON.stringify([...(JSON.parse(prev.history) as JobStep[]), r.step]);
    if (facts.image_id !== undefined) job.image_id = facts.image_id;
    if (facts.image_digest !== undefined) job.image_digest = facts.image_digest;
    if (facts.exit_code !== undefined) job.exit_code = facts.exit_code;
    if (facts.started_ms !== undefined) job.started_ms = facts.started_ms;
    if (facts.result_sealed !== undefined) job.result_sealed = facts.result_sealed;
    if (facts.usage_record !== undefined) job.usage_record = facts.usage_record;
    if (r.state === 'running' && job.started_ms === null) job.started_ms = ctx.now_ms;
    // Secrets have no use once the job ended: drop the sealed env.
    if (r.billing.kind !== 'none') job.sealed_env = null;
    job.updated_ms = ctx.now_ms;
    return writeJob(ctx, job, prev.state);
  });
}

/**
 * An operation on one job row: its node's and its own rows locked, the current attempt's lock and accounts
 * declared; `apply` gets the row as the batch left it (`prev`) and as stored (`row`, whose accounts are declared).
 */
export function jobRowOp<T>(
  job_id: string,
  apply: (ctx: ApplyContext, prev: JobRow | undefined, row: JobRow | undefined) => T,
): LedgerOp<T> {
  let row: JobRow | undefined;
  return {
    accounts: [],
    transfers: [],
    async prepare(tx, d) {
      row = await lockJob(tx, d, job_id);
      return row ? attemptDeclared(row) : undefined;
    },
    apply: (ctx) => apply(ctx, batchView(ctx.writes).rows.get(job_id) ?? row, row),
  };
}
