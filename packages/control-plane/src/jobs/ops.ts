// Every job mutation is one LedgerOp (ledger-store/batch.ts): `prepare` reads and locks the job's and its
// node's rows inside the ledger's transaction, `apply` runs the state machine (state.ts) and the pure engine,
// and the job row is written in the same transaction — a job's state and its money commit together or not at
// all. Lock order as the market's: node rows, then the job row.
import { createTransfers } from '../ledger/engine.js';
import { providerEarnings, providerStake } from '../ledger/chart.js';
import { transferRefusal, type Refusal, type TransferRefusalCode } from '../ledger/refusal.js';
import type { TransferInput } from '../ledger/types.js';
import type { ApplyContext, ExtraWrites, LedgerOp } from '../ledger-store/batch.js';
import { forUpdate, lockNodes, providerRequirements, stakeHeld, type NodeRow } from '../market/ops.js';
import { JOB_LOCK_SLACK_MS, jobLockAmount, jobLockId, jobRefundId, jobSettleAmount, jobSettleId } from './money.js';
import { transition, type JobEvent, type JobStep } from './state.js';
import type { JobsTable } from './store/schema.js';

export type JobRow = JobsTable;

export type JobRefusalCode =
  | TransferRefusalCode
  | 'no_node_with_capacity'
  | 'job_conflict'
  | 'unknown_job'
  | 'job_finished'
  | 'invalid_transition';
export type JobRefusal = Refusal<JobRefusalCode>;

/** States that hold capacity on a node. */
export const ACTIVE_STATES = ['queued', 'starting', 'running'] as const;

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
}

/** A node that may take the job, as the shell saw it: routing order, and its launcher's reported capacity. */
export interface JobCandidate {
  id: string;
  provider: string;
  vcpus_total: number;
  memory_mib_total: number;
  /** The X25519 key of its launcher: the job's env must be sealed to exactly this key. */
  hpke_public_key: string;
}

/**
 * What earlier operations of the same group-commit batch did: their job rows are written only at the batch's
 * end, so a placement must add the capacity they took (or two jobs placed in one batch overcommit a node), and
 * an event must start from the row as the batch left it. One batch has one `writes` object.
 */
interface BatchView {
  placed: Map<string, { vcpus: number; memory_mib: number; seq: number }>;
  rows: Map<string, JobRow>;
}
const batches = new WeakMap<ExtraWrites, BatchView>();
function batchView(writes: ExtraWrites): BatchView {
  let b = batches.get(writes);
  if (b === undefined) batches.set(writes, (b = { placed: new Map(), rows: new Map() }));
  return b;
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
  let nodes = new Map<string, NodeRow>();
  let required = new Map<string, bigint>();
  const used = new Map<string, { vcpus: number; memory_mib: number; seq: number }>();
  let existing: JobRow | undefined;
  return {
    accounts: [j.user_id, ...candidates.flatMap((c) => [providerEarnings(c.provider), providerStake(c.provider)])],
    transfers: [jobLockId(j.id)],
    async prepare(tx, d) {
      existing = (await tx.selectFrom('jobs').selectAll().where('id', '=', j.id).executeTakeFirst()) as
        JobRow | undefined;
      if (existing) return;
      nodes = await lockNodes(
        tx,
        d,
        candidates.map((c) => c.id),
      );
      required = await providerRequirements(
        tx,
        [...nodes.values()].map((n) => n.provider),
      );
      used.clear();
      if (nodes.size === 0) return;
      const rows = await tx
        .selectFrom('jobs')
        .select([
          'node_id',
          (eb) =>
            eb.fn
              .sum<number>('vcpus')
              .filterWhere('state', 'in', [...ACTIVE_STATES])
              .as('vcpus'),
          (eb) =>
            eb.fn
              .sum<number>('memory_mib')
              .filterWhere('state', 'in', [...ACTIVE_STATES])
              .as('memory_mib'),
          (eb) => eb.fn.max<number>('assignment_seq').as('seq'),
        ])
        .where('node_id', 'in', [...nodes.keys()])
        .groupBy('node_id')
        .execute();
      for (const r of rows)
        used.set(r.node_id, { vcpus: Number(r.vcpus ?? 0), memory_mib: Number(r.memory_mib ?? 0), seq: Number(r.seq) });
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
      let refusal: JobRefusal = {
        ok: false,
        code: 'no_node_with_capacity',
        message: `no eligible node has ${j.vcpus} vCPUs and ${j.memory_mib} MiB free`,
      };
      for (const c of candidates) {
        const node = nodes.get(c.id);
        if (!node || node.status !== 'active' || !liveEligible(node.id)) continue;
        if (stakeHeld(ctx.state, node.provider) < (required.get(node.provider) ?? 0n)) continue;
        const inDb = used.get(node.id) ?? { vcpus: 0, memory_mib: 0, seq: -1 };
        const batch = batchView(ctx.writes);
        const earlier = batch.placed.get(node.id);
        const u = earlier
          ? { vcpus: inDb.vcpus + earlier.vcpus, memory_mib: inDb.memory_mib + earlier.memory_mib, seq: earlier.seq }
          : inDb;
        if (u.vcpus + j.vcpus > c.vcpus_total || u.memory_mib + j.memory_mib > c.memory_mib_total) continue;
        if (j.env_key !== null && j.env_key !== c.hpke_public_key) continue; // sealed to another launcher
        const price = BigInt(node.price_micro);
        const lock = jobLockAmount(price, j.vcpus, j.max_runtime_ms);
        const input: TransferInput = {
          id: jobLockId(j.id),
          debit_account: j.user_id,
          credit_account: providerEarnings(node.provider),
          amount: lock,
          flags: { pending: true },
          timeout_ms: j.max_runtime_ms + JOB_LOCK_SLACK_MS,
          reference: `job:${j.id}`,
        };
        const [r] = createTransfers(ctx.state, [input], ctx.now_ms);
        if (r !== 'ok') {
          refusal = transferRefusal(r!);
          if (r === 'exceeds_credits') return then(refusal, ctx);
          continue;
        }
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
          assignment_seq: u.seq + 1,
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
        };
        batch.placed.set(node.id, {
          vcpus: (earlier?.vcpus ?? 0) + j.vcpus,
          memory_mib: (earlier?.memory_mib ?? 0) + j.memory_mib,
          seq: job.assignment_seq,
        });
        batch.rows.set(job.id, job);
        ctx.writes.after.push(async (tx) => {
          await tx.insertInto('jobs').values(job).execute();
        });
        return then({ ok: true, job }, ctx);
      }
      return then(refusal, ctx);
    },
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
  let row: JobRow | undefined;
  return {
    accounts: [],
    transfers: [jobLockId(job_id), jobSettleId(job_id), jobRefundId(job_id)],
    async prepare(tx, d) {
      const node_id = (await tx.selectFrom('jobs').select('node_id').where('id', '=', job_id).executeTakeFirst())
        ?.node_id;
      if (node_id === undefined) return;
      await lockNodes(tx, d, [node_id]);
      row = (await forUpdate(tx.selectFrom('jobs').selectAll().where('id', '=', job_id), d).executeTakeFirst()) as
        JobRow | undefined;
      return row ? { accounts: [row.user_id, providerEarnings(row.provider)] } : undefined;
    },
    apply(ctx) {
      const batch = batchView(ctx.writes);
      const prev = batch.rows.get(job_id) ?? row;
      if (!prev) return { ok: false, code: 'unknown_job' };
      const r = transition(prev.state, ev, ctx.now_ms);
      if (!r.ok) return r;
      // Money needs the accounts prepare declared from the stored row (a job created in this very batch has none).
      if (r.billing.kind !== 'none' && !row)
        return { ok: false, code: 'invalid_transition', message: 'the job was created in this batch' };
      const job: JobRow = { ...prev };
      const lock = BigInt(prev.lock_micro);
      if (r.billing.kind !== 'none') {
        const settle =
          r.billing.kind === 'settle'
            ? jobSettleAmount(BigInt(prev.price_micro), prev.vcpus, prev.max_runtime_ms, r.billing.billed_vcpu_ms)
            : 0n;
        const input: TransferInput =
          settle > 0n
            ? {
                id: jobSettleId(job_id),
                debit_account: prev.user_id,
                credit_account: providerEarnings(prev.provider),
                pending_id: jobLockId(job_id),
                amount: settle,
                flags: { post_pending: true },
              }
            : {
                id: jobRefundId(job_id),
                debit_account: prev.user_id,
                credit_account: providerEarnings(prev.provider),
                pending_id: jobLockId(job_id),
                flags: { void_pending: true },
              };
        const [t] = createTransfers(ctx.state, [input], ctx.now_ms);
        let settled = settle;
        if (t === 'pending_transfer_expired') settled = 0n;
        else if (t !== 'ok') throw new Error(`jobs: resolving the lock of ${job_id}: ${t}`);
        job.settled_micro = Number(settled);
        job.refunded_micro = Number(lock - settled);
        job.billed_vcpu_ms =
          r.billing.kind === 'settle' ? Math.min(r.billing.billed_vcpu_ms, prev.vcpus * prev.max_runtime_ms) : 0;
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
      batch.rows.set(job_id, job);
      const from = prev.state;
      ctx.writes.after.push(async (tx) => {
        // cancel_requested is the cancel route's alone: an event must not write back a value it read earlier.
        const { id: _id, cancel_requested: _cancel, ...set } = job;
        await tx.updateTable('jobs').set(set).where('id', '=', job_id).where('state', '=', from).execute();
      });
      return { ok: true, job, changed: true };
    },
  };
}
