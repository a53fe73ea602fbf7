// The jobs service: places jobs (cheapest eligible node whose launcher has room), dispatches assignments to
// launchers, and turns what launchers report into job events (ops.ts) — the thin shell around the pure core.
// Every decision about state and money is the state machine's and the ledger operation's; this file only
// decides WHEN to ask: on each launcher state read (registry.ts), and on a sweep for launchers that vanished
// (failed and refunded after the health timeout) and for jobs long past their max runtime with no report.
// The jobs table is the truth: a restarted control plane picks every unfinished job up from it. Placement is
// placement.ts, a lost node's retry retry.ts; dispatch, reconciliation and the sweep share the assignments in flight.
import type { Logger } from 'pino';
import { LAUNCHER_APP, LauncherJob, USAGE_RECORD_DOMAIN, type Assignment } from '@easyenclave/protocol/launcher';
import { verifyRecord } from '@easyenclave/protocol/signed-record';
import type { Clock } from '../clock.js';
import type { LedgerStore } from '../ledger-store/ledger-store.js';
import type { Market } from '../market/market.js';
import { runMigrations, type Store } from '../store/index.js';
import { launcherRequest } from '../launchers/client.js';
import type { LauncherRegistry, LauncherView } from '../launchers/registry.js';
import {
  ACTIVE_STATES,
  createJobOp,
  jobEventOp,
  type CreateJobResult,
  type JobCandidate,
  type JobEventResult,
  type JobFacts,
  type JobRow,
  type NewJob,
} from './ops.js';
import { isTerminal, type JobEvent } from './state.js';
import { JOBS_MIGRATIONS } from './store/migrations.js';
import { place, type PlacementResult } from './placement.js';
import { mayRetry, placedMs, resealJobOp, retryJobOp, type ResealResult } from './retry.js';
import type { Db as JobsDb } from '../store/database.js';

/** How often lost launchers and overdue jobs are looked for. */
export const JOB_SWEEP_MS = 1000;
/** Past max runtime + the launcher's stop grace, how long the control plane waits for a signed end before it
 *  times the job out itself (refunded in full: nothing bills without a usage record). */
export const JOB_DEADLINE_SLACK_MS = 60_000;
export const LAUNCHER_STOP_GRACE_MS = 5_000;
/** How long a retried job waits for the client to seal its env to the new launcher before it fails (refunded). */
export const JOB_RESEAL_TIMEOUT_MS = 5 * 60_000;
/** Unfinished jobs read per node per reconciliation (bounded; the rest on the next read). */
export const MAX_JOBS_PER_RECONCILE = 4096;

export interface JobsDeps {
  ledger: LedgerStore;
  store: Store;
  market: Market;
  registry: LauncherRegistry;
  clock: Clock;
  health_timeout_ms: number;
  log: Logger;
}

export class JobsService {
  readonly db: JobsDb;
  /** Jobs whose assignment is on its way to the launcher. */
  private readonly dispatching = new Set<string>();
  private timer: NodeJS.Timeout | null = null;
  private sweeping = false;

  private constructor(private readonly deps: JobsDeps) {
    this.db = deps.store.db;
  }

  static async open(deps: JobsDeps): Promise<JobsService> {
    await runMigrations(deps.store.db, deps.store.dialect, JOBS_MIGRATIONS);
    const s = new JobsService(deps);
    deps.registry.onState = (v) => s.reconcile(v);
    return s;
  }

  start(): void {
    this.deps.registry.start();
    this.timer = setInterval(() => void this.sweep(), JOB_SWEEP_MS);
    this.timer.unref();
  }

  stop(): void {
    this.deps.registry.stop();
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }

  get now(): number {
    return this.deps.clock.now();
  }

  async get(id: string): Promise<JobRow | undefined> {
    return (await this.db.selectFrom('jobs').selectAll().where('id', '=', id).executeTakeFirst()) as JobRow | undefined;
  }

  /** Applies one event; refusals (an ended job, a step already taken) are answered, never thrown. */
  event(id: string, ev: JobEvent, facts?: JobFacts): Promise<JobEventResult> {
    return this.deps.ledger.submit(jobEventOp(id, ev, facts));
  }

  /**
   * The job's node is lost (attestation, health, the job gone): failed and refunded in full, or, when the user
   * asked for it, refunded and retried once on another node (retry.ts).
   */
  async lose(row: JobRow, reason: string): Promise<JobEventResult> {
    if (!mayRetry(row)) return this.event(row.id, { type: 'lost', reason });
    const placed = await this.placement(row.vcpus, row.memory_mib, new Set([row.node_id]));
    const r = await this.deps.ledger.submit(
      retryJobOp(row.id, reason, placed.ok ? placed.candidates : [], (id) =>
        this.deps.market.liveEligible(id, LAUNCHER_APP),
      ),
    );
    if (r.ok && r.job.state === 'queued' && r.job.env_pending === 0) void this.dispatch(r.job);
    return r;
  }

  /** The env of a retried job, sealed by the client to its new launcher: stored, then the job is dispatched. */
  async reseal(id: string, sealed_env: string, env_key: string): Promise<ResealResult> {
    const r = await this.deps.ledger.submit(resealJobOp(id, sealed_env, env_key));
    if (r.ok) void this.dispatch(r.job);
    return r;
  }

  // ---------- Placement ----------

  /** Eligible nodes with a launcher that can take `vcpus` and `memory_mib` now, cheapest effective price first. */
  placement(vcpus: number, memory_mib: number, exclude?: ReadonlySet<string>): Promise<PlacementResult> {
    return place({ db: this.db, market: this.deps.market, registry: this.deps.registry }, vcpus, memory_mib, exclude);
  }

  /** Places and locks a job (one ledger operation), then sends its assignment. */
  async create<T>(
    j: NewJob,
    candidates: readonly JobCandidate[],
    then: (r: CreateJobResult, ctx: Parameters<Parameters<typeof createJobOp<T>>[3]>[1]) => T,
  ): Promise<T> {
    let created: JobRow | null = null;
    const out = await this.deps.ledger.submit(
      createJobOp(
        j,
        candidates,
        (id) => this.deps.market.liveEligible(id, LAUNCHER_APP),
        (r, ctx) => {
          if (r.ok) created = r.job;
          return then(r, ctx);
        },
      ),
    );
    const job = created as JobRow | null;
    if (job !== null && job.state === 'queued') void this.dispatch(job);
    return out;
  }

  // ---------- Dispatch and reconciliation ----------

  private assignment(job: JobRow): Assignment {
    return {
      job_id: job.id,
      assignment_seq: job.assignment_seq,
      image: job.image,
      command: job.command === null ? null : (JSON.parse(job.command) as string[]),
      vcpus: job.vcpus,
      memory_mib: job.memory_mib,
      max_runtime_ms: job.max_runtime_ms,
      network: job.network === 1,
      sealed_env: job.sealed_env,
      result_key: job.result_key,
      ...(job.output_file !== null ? { output_file: job.output_file } : {}),
    };
  }

  /** Sends a queued job to its node's launcher; the launcher's answer moves it on (or refuses it). */
  private async dispatch(job: JobRow): Promise<void> {
    if (this.dispatching.has(job.id) || job.env_pending === 1) return;
    const link = this.deps.registry.link(job.node_id);
    if (link === null) return; // the sweep fails it if its launcher stays away
    this.dispatching.add(job.id);
    try {
      if (job.cancel_requested === 1) {
        await this.event(job.id, { type: 'cancel', reason: 'cancelled before it started' });
        return;
      }
      const r = await launcherRequest(link, 'POST', '/v1/launcher/jobs', this.assignment(job));
      const body = JSON.parse(r.body.toString('utf8')) as unknown;
      if (r.status === 200) {
        const lj = LauncherJob.parse(body);
        await this.applyLauncherJob(job.id, lj, link.keyset?.receipt_public_key ?? null);
        const now = await this.get(job.id);
        if (now && now.cancel_requested === 1 && !isTerminal(now.state))
          await launcherRequest(link, 'DELETE', `/v1/launcher/jobs/${job.id}`);
      } else if (r.status === 400) {
        const e = (body as { error?: { code?: string; message?: string } }).error;
        await this.event(job.id, {
          type: 'refused',
          reason: `the launcher refused it: ${e?.code ?? 'refused'}: ${e?.message ?? ''}`.slice(0, 256),
        });
      } else {
        this.deps.log.warn({ job_id: job.id, status: r.status }, 'jobs: the launcher did not take an assignment');
      }
    } catch (err) {
      this.deps.log.warn({ job_id: job.id, err: (err as Error).message }, 'jobs: dispatch failed; retried later');
    } finally {
      this.dispatching.delete(job.id);
    }
  }

  /** What a launcher says of one of its jobs, as events: accepted, started, or its signed end. */
  private async applyLauncherJob(id: string, lj: LauncherJob, receipt_public_key: string | null): Promise<void> {
    const facts: JobFacts = {};
    if (lj.image_id !== null) facts.image_id = lj.image_id;
    if (lj.image_digest !== null) facts.image_digest = lj.image_digest;
    if (lj.started_at_ms !== null && lj.started_at_ms > 0) facts.started_ms = lj.started_at_ms;
    if (lj.usage !== null) {
      if (receipt_public_key === null) return; // judged on the next state read, against the attested key
      // Only a record signed by the key this launcher's attestation binds settles money; anything else is a
      // node that cannot prove what it ran: failed, refunded in full.
      const ok =
        lj.usage.job_id === id &&
        lj.usage.receipt_public_key === receipt_public_key &&
        lj.usage_signature !== null &&
        (await verifyRecord(receipt_public_key, lj.usage, lj.usage_signature, USAGE_RECORD_DOMAIN));
      if (!ok) {
        await this.event(id, { type: 'lost', reason: 'the usage record is not signed by the attested key' });
        return;
      }
      await this.event(
        id,
        { type: 'finished', state: lj.usage.state, reason: lj.usage.reason, billed_vcpu_ms: lj.usage.vcpu_ms },
        {
          ...facts,
          exit_code: lj.usage.exit_code,
          ...(lj.result_sealed !== null ? { result_sealed: lj.result_sealed } : {}),
          usage_record: JSON.stringify({ record: lj.usage, signature: lj.usage_signature }),
        },
      );
      return;
    }
    const row = await this.get(id);
    if (!row) return;
    if (row.state === 'queued') await this.event(id, { type: 'accepted' }, facts);
    if (lj.state === 'running' && (row.state === 'queued' || row.state === 'starting'))
      await this.event(id, { type: 'started' }, facts);
  }

  /** One launcher state read: every unfinished job of the node against what the launcher runs. */
  async reconcile(view: LauncherView): Promise<void> {
    const rows = (await this.db
      .selectFrom('jobs')
      .selectAll()
      .where('node_id', '=', view.node_id)
      .where('state', 'in', [...ACTIVE_STATES])
      .orderBy('created_ms')
      .limit(MAX_JOBS_PER_RECONCILE)
      .execute()) as JobRow[];
    const reported = new Map(view.state.jobs.map((j) => [j.job_id, j]));
    for (const row of rows) {
      if (this.dispatching.has(row.id)) continue;
      const lj = reported.get(row.id);
      reported.delete(row.id);
      try {
        if (lj !== undefined) {
          await this.applyLauncherJob(row.id, lj, view.receipt_public_key);
          if (lj.usage !== null) await this.ack(view, row.id);
          else if (row.cancel_requested === 1)
            await launcherRequest(view.link, 'DELETE', `/v1/launcher/jobs/${row.id}`);
        } else if (row.state === 'queued') {
          void this.dispatch(row);
        } else if (row.updated_ms < view.requested_ms) {
          // The launcher was asked after the job was last seen moving, and no longer has it.
          await this.lose(row, 'the launcher no longer has the job');
        }
      } catch (err) {
        this.deps.log.warn({ job_id: row.id, err: (err as Error).message }, 'jobs: reconciling a job failed');
      }
    }
    // Jobs the control plane already ended (lost, timed out, cancelled before start): stop and forget them.
    for (const lj of reported.values()) {
      if (this.dispatching.has(lj.job_id)) continue;
      try {
        const row = await this.get(lj.job_id);
        // Still this node's: reconciled above. A job retried elsewhere is a stray here too.
        if (row && !isTerminal(row.state) && row.node_id === view.node_id) continue;
        if (lj.usage !== null) await this.ack(view, lj.job_id);
        else await launcherRequest(view.link, 'DELETE', `/v1/launcher/jobs/${lj.job_id}`);
      } catch (err) {
        this.deps.log.warn({ job_id: lj.job_id, err: (err as Error).message }, 'jobs: stopping a stray job failed');
      }
    }
  }

  private async ack(view: LauncherView, id: string): Promise<void> {
    await launcherRequest(view.link, 'POST', `/v1/launcher/jobs/${id}/ack`);
  }

  /** Lost launchers (no usable link past the health timeout) and jobs long overdue: failed or timed out, refunded. */
  async sweep(): Promise<void> {
    if (this.sweeping) return;
    this.sweeping = true;
    try {
      const now = this.now;
      const rows = (await this.db
        .selectFrom('jobs')
        .selectAll()
        .where('state', 'in', [...ACTIVE_STATES])
        .orderBy('created_ms')
        .limit(MAX_JOBS_PER_RECONCILE)
        .execute()) as JobRow[];
      const failedAt = new Map<string, { at_ms: number; failure: string } | null>();
      for (const row of rows) {
        if (this.dispatching.has(row.id)) continue;
        // Zero tolerance: a node whose launcher failed attestation while the job was on it refunds it at once.
        if (this.deps.registry.link(row.node_id) === null) {
          if (!failedAt.has(row.node_id)) failedAt.set(row.node_id, await this.attestationFailure(row.node_id, rows));
          const f = failedAt.get(row.node_id);
          if (f && f.at_ms >= placedMs(row)) {
            await this.lose(row, `the node's launcher failed attestation: ${f.failure}`.slice(0, 256));
            continue;
          }
        }
        const missing = this.deps.registry.missingSince(row.node_id);
        if (now - Math.max(missing, placedMs(row)) > this.deps.health_timeout_ms) {
          const secs = Math.round(this.deps.health_timeout_ms / 1000);
          await this.lose(row, `the node's launcher was unreachable for more than ${secs} s`);
          continue;
        }
        if (row.env_pending === 1 && now - row.updated_ms > JOB_RESEAL_TIMEOUT_MS) {
          const mins = JOB_RESEAL_TIMEOUT_MS / 60_000;
          await this.event(row.id, {
            type: 'lost',
            reason: `the env was not sealed to the new launcher in ${mins} min`,
          });
          continue;
        }
        const started = row.started_ms ?? (row.state === 'running' ? row.updated_ms : null);
        if (started !== null && now > started + row.max_runtime_ms + LAUNCHER_STOP_GRACE_MS + JOB_DEADLINE_SLACK_MS) {
          await this.event(row.id, {
            type: 'deadline',
            reason: `no signed end ${Math.round((LAUNCHER_STOP_GRACE_MS + JOB_DEADLINE_SLACK_MS) / 1000)} s past its max runtime`,
          });
        }
      }
    } catch (err) {
      this.deps.log.warn({ err: (err as Error).message }, 'jobs: sweep failed');
    } finally {
      this.sweeping = false;
    }
  }

  /** The latest failed attestation of a launcher bound to the node since its oldest unfinished job, if any. */
  private async attestationFailure(
    node_id: string,
    rows: readonly JobRow[],
  ): Promise<{ at_ms: number; failure: string } | null> {
    const since = Math.min(...rows.filter((r) => r.node_id === node_id).map(placedMs));
    const r = await this.db
      .selectFrom('attestations')
      .innerJoin('market_node_agents', 'market_node_agents.agent_id', 'attestations.agent_id')
      .select(['attestations.at_ms', 'attestations.failure'])
      .where('market_node_agents.node_id', '=', node_id)
      .where('attestations.app_name', '=', LAUNCHER_APP)
      .where('attestations.ok', '=', 0)
      .where('attestations.at_ms', '>=', since)
      .orderBy('attestations.at_ms', 'desc')
      .limit(1)
      .executeTakeFirst();
    return r ? { at_ms: Number(r.at_ms), failure: r.failure ?? 'failed' } : null;
  }

  /**
   * Cancel: a job no container runs for yet is cancelled at once (refunded in full); a running one is stopped
   * by its launcher and ends with its signed usage (state cancelled, billed what it ran).
   */
  async cancel(id: string): Promise<JobRow> {
    await this.db.updateTable('jobs').set({ cancel_requested: 1 }).where('id', '=', id).execute();
    const row = (await this.get(id))!;
    if (isTerminal(row.state)) return row;
    if (row.state === 'queued' && !this.dispatching.has(id)) {
      await this.event(id, { type: 'cancel', reason: 'cancelled before it started' });
      return (await this.get(id))!;
    }
    const link = this.deps.registry.link(row.node_id);
    if (link !== null) {
      try {
        const r = await launcherRequest(link, 'DELETE', `/v1/launcher/jobs/${id}`);
        if (r.status === 404 && row.state !== 'running' && !this.dispatching.has(id))
          await this.event(id, { type: 'cancel', reason: 'cancelled before it started' });
      } catch (err) {
        this.deps.log.warn({ job_id: id, err: (err as Error).message }, 'jobs: cancel not delivered; retried');
      }
    }
    return (await this.get(id))!;
  }
}
