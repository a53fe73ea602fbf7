// The deployments service (docs/workloads.md §3): a deployment is a lease of the market (per-period locks,
// renewal, zero-tolerance settlement: the lease's app is the deployment's app, whose agent's health and
// attestation decide each period) plus a container and an agent its node's launcher runs. The lease and the
// deployment row are written in one ledger operation; this file then drives the launcher toward the row's
// state on a sweep: start the current generation, on update start the next one and retire the old once the new
// agent is routable, and stop everything when the user asks or the lease has ended (its periods are done, or
// it could not be funded). The row is the truth: a restarted control plane carries on from it.
import type { Logger } from 'pino';
import { LAUNCHER_APP, LauncherDeployment, type DeploymentAssignment } from '@easyenclave/protocol/launcher';
import type { Clock } from '../clock.js';
import type { LedgerStore } from '../ledger-store/ledger-store.js';
import type { ApplyContext } from '../ledger-store/batch.js';
import type { Market } from '../market/market.js';
import type { LeaseResult } from '../market/ops.js';
import { getLease } from '../market/store/reads.js';
import { cancelLease } from '../market/store/writes.js';
import type { JobCandidate } from '../jobs/placing.js';
import { launcherRequest } from '../launchers/client.js';
import type { LauncherRegistry, LauncherView } from '../launchers/registry.js';
import { runMigrations, type Store } from '../store/index.js';
import type { Db } from '../store/database.js';
import { createDeploymentOp, RETIRED, type NewDeployment } from './ops.js';
import { DEPLOYMENTS_MIGRATIONS } from './store/migrations.js';
import type { DeploymentState, DeploymentsTable } from './store/schema.js';

/** How often unfinished deployments are driven toward their state. */
export const DEPLOYMENT_SWEEP_MS = 500;
/** Unfinished deployments handled per sweep (the rest on the next). */
export const MAX_DEPLOYMENTS_PER_SWEEP = 1024;
/** A running deployment's agent unroutable this long gets its assignment sent again. */
export const DEPLOYMENT_RESEND_AFTER_MS = 5_000;
/** Candidate nodes a deployment's lease re-checks under their row locks, best first. */
export const MAX_DEPLOYMENT_CANDIDATES = 16;

export type DeploymentRow = DeploymentsTable;
const UNFINISHED: readonly DeploymentState[] = ['starting', 'running', 'updating', 'stopping'];

export const workloadId = (id: string, generation: number) => `${id}-${generation}`;

export type { NewDeployment } from './ops.js';

export interface DeploymentsDeps {
  ledger: LedgerStore;
  store: Store;
  market: Market;
  registry: LauncherRegistry;
  clock: Clock;
  log: Logger;
}

export class DeploymentsService {
  readonly db: Db;
  private readonly busy = new Set<string>();
  /** Workloads being stopped because no deployment wants them (one request at a time each). */
  private readonly strays = new Set<string>();
  /** deployment id → wall-clock ms since its serving agent was first seen unroutable. */
  private readonly unroutable = new Map<string, number>();
  private timer: NodeJS.Timeout | null = null;
  private sweeping = false;

  private constructor(private readonly deps: DeploymentsDeps) {
    this.db = deps.store.db;
  }

  static async open(deps: DeploymentsDeps): Promise<DeploymentsService> {
    await runMigrations(deps.store.db, deps.store.dialect, DEPLOYMENTS_MIGRATIONS);
    const s = new DeploymentsService(deps);
    deps.registry.onDeployments = (v) => s.reconcileLauncher(v);
    return s;
  }

  start(): void {
    this.timer = setInterval(() => void this.sweep(), DEPLOYMENT_SWEEP_MS);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }

  get now(): number {
    return this.deps.clock.now();
  }

  async get(id: string): Promise<DeploymentRow | undefined> {
    return await this.db.selectFrom('deployments').selectAll().where('id', '=', id).executeTakeFirst();
  }

  /**
   * Creates the lease (first period locked) on the first candidate still eligible under its row lock, its
   * launcher with room beside the node's jobs and deployments, and the deployment row with it, in one ledger
   * operation; then starts it on the node.
   */
  async create<T>(
    d: NewDeployment,
    candidates: readonly JobCandidate[],
    then: (r: LeaseResult, ctx: ApplyContext) => T,
  ): Promise<T> {
    const out = await this.deps.ledger.submit(
      createDeploymentOp(
        d,
        candidates.slice(0, MAX_DEPLOYMENT_CANDIDATES),
        this.deps.market.timing,
        (node_id) => this.deps.market.liveEligible(node_id, LAUNCHER_APP),
        then,
      ),
    );
    void this.drive(d.id);
    return out;
  }

  /** A new image and/or env: the next generation starts beside the serving one. */
  async update(id: string, next: Pick<DeploymentRow, 'image' | 'sealed_env' | 'env_key'>): Promise<DeploymentRow> {
    const row = (await this.get(id))!;
    if (row.state === 'running' || row.state === 'updating') {
      const what = [
        next.image !== row.image ? next.image : null,
        next.sealed_env !== row.sealed_env ? 'a new env' : null,
      ];
      await this.db
        .updateTable('deployments')
        .set({
          ...next,
          state: 'updating',
          reason: `updating to ${what.filter((w) => w !== null).join(' with ') || 'the same image and env'}`,
          generation: row.generation + 1,
          // Updating again mid-update: the unfinished generation is dropped, the serving one keeps serving (and
          // what it runs is kept, to return to should the launcher refuse the update).
          retiring_generation: row.state === 'updating' ? row.retiring_generation : row.generation,
          ...(row.state === 'updating'
            ? {}
            : { retiring_image: row.image, retiring_sealed_env: row.sealed_env, retiring_env_key: row.env_key }),
          updated_ms: this.now,
        })
        .where('id', '=', id)
        .where('generation', '=', row.generation)
        .execute();
      if (row.state === 'updating') await this.stopWorkload(row, row.generation);
      void this.drive(id);
    }
    return (await this.get(id))!;
  }

  /** The user stops it: the lease ends (the locked period settles as usual), the launcher stops everything. */
  async stopDeployment(id: string, reason: string): Promise<DeploymentRow> {
    const row = (await this.get(id))!;
    if (UNFINISHED.includes(row.state) && row.state !== 'stopping') {
      await this.set(id, 'stopping', reason);
      await cancelLease(this.deps.market.db, row.lease_id, this.deps.market.now);
      void this.drive(id);
    }
    return (await this.get(id))!;
  }

  private async set(id: string, state: DeploymentState, reason: string, facts: Partial<DeploymentRow> = {}) {
    await this.db
      .updateTable('deployments')
      .set({ ...facts, state, reason: reason.slice(0, 256), updated_ms: this.now })
      .where('id', '=', id)
      .execute();
  }

  async sweep(): Promise<void> {
    if (this.sweeping) return;
    this.sweeping = true;
    try {
      const rows = await this.db
        .selectFrom('deployments')
        .select('id')
        .where('state', 'in', [...UNFINISHED])
        .orderBy('created_ms')
        .limit(MAX_DEPLOYMENTS_PER_SWEEP)
        .execute();
      for (const r of rows) await this.drive(r.id);
    } catch (err) {
      this.deps.log.warn({ err: (err as Error).message }, 'deployments: sweep failed');
    } finally {
      this.sweeping = false;
    }
  }

  private assignment(row: DeploymentRow): DeploymentAssignment {
    return {
      deployment_id: row.id,
      app: row.app,
      workload_id: workloadId(row.id, row.generation),
      image: row.image,
      command: row.command === null ? null : (JSON.parse(row.command) as string[]),
      port: row.port,
      vcpus: row.vcpus,
      memory_mib: row.memory_mib,
      sealed_env: row.sealed_env,
    };
  }

  /** One step toward the row's state (one at a time per deployment). */
  async drive(id: string): Promise<void> {
    if (this.busy.has(id)) return;
    this.busy.add(id);
    try {
      const row = await this.get(id);
      if (!row || !UNFINISHED.includes(row.state)) return;
      if (row.state !== 'stopping') {
        const lease = await getLease(this.deps.market.db, row.lease_id);
        if (lease?.status !== 'active') {
          const reason = `the lease ended: ${lease?.end_reason ?? 'unknown'}`;
          await this.set(id, 'stopping', reason);
          return void (await this.stopAll({ ...row, state: 'stopping', reason }));
        }
      }
      if (row.state === 'stopping') return void (await this.stopAll(row));
      if (row.state === 'running') return void (await this.keepServing(row));
      await this.startGeneration(row);
    } catch (err) {
      this.deps.log.warn({ deployment_id: id, err: (err as Error).message }, 'deployments: a step failed; retried');
    } finally {
      this.busy.delete(id);
    }
  }

  /** Starts the current generation (idempotent on the launcher); an update retires the old one once the new
   *  agent is attested, healthy and routable, so the proxy always has an agent to send requests to. */
  private async startGeneration(row: DeploymentRow): Promise<void> {
    const link = this.deps.registry.link(row.node_id);
    if (link === null) return; // the launcher is away; the lease's settlement judges the outage
    const r = await launcherRequest(link, 'POST', '/v1/launcher/deployments', this.assignment(row));
    const body = JSON.parse(r.body.toString('utf8')) as unknown;
    if (r.status === 400) {
      const e = (body as { error?: { code?: string; message?: string } }).error;
      const reason = `the launcher refused it: ${e?.code ?? 'refused'}: ${e?.message ?? ''}`;
      if (row.state === 'starting') {
        await this.set(row.id, 'failed', reason);
        await cancelLease(this.deps.market.db, row.lease_id, this.deps.market.now);
      } else {
        // A refused update: the serving generation keeps serving.
        await this.db
          .updateTable('deployments')
          .set({
            state: 'running',
            reason: `update refused: ${reason}`.slice(0, 256),
            generation: row.retiring_generation!,
            retiring_generation: null,
            // What the serving generation runs: a resent assignment must start that, not the refused update.
            image: row.retiring_image ?? row.image,
            sealed_env: row.retiring_image !== null ? row.retiring_sealed_env : row.sealed_env,
            env_key: row.retiring_image !== null ? row.retiring_env_key : row.env_key,
            ...RETIRED,
            updated_ms: this.now,
          })
          .where('id', '=', row.id)
          .where('generation', '=', row.generation)
          .execute();
      }
      return;
    }
    if (r.status !== 200) throw new Error(`the launcher answered ${r.status}`);
    const ld = LauncherDeployment.parse(body);
    const facts = { image_id: ld.image_id, image_digest: ld.image_digest };
    if (!this.deps.registry.agentRoutable(row.node_id, row.app, ld.agent_id)) {
      if (row.state === 'starting' && row.image_id === null) await this.set(row.id, 'starting', row.reason, facts);
      return;
    }
    if (row.retiring_generation !== null) await this.stopWorkload(row, row.retiring_generation);
    await this.db
      .updateTable('deployments')
      .set({
        ...facts,
        ...RETIRED,
        state: 'running',
        reason: 'serving',
        retiring_generation: null,
        updated_ms: this.now,
      })
      .where('id', '=', row.id)
      .where('generation', '=', row.generation)
      .execute();
  }

  /**
   * A running deployment whose agent has not been routable for a while (its launcher restarted and lost it, or
   * its container died) gets its assignment again: the launcher answers the running workload as it is, or
   * starts it afresh.
   */
  private async keepServing(row: DeploymentRow): Promise<void> {
    const agent_id = workloadId(row.id, row.generation);
    if (this.deps.registry.agentRoutable(row.node_id, row.app, agent_id)) {
      this.unroutable.delete(row.id);
      return;
    }
    const since = this.unroutable.get(row.id);
    if (since === undefined) return void this.unroutable.set(row.id, Date.now());
    if (Date.now() - since < DEPLOYMENT_RESEND_AFTER_MS) return;
    const link = this.deps.registry.link(row.node_id);
    if (link === null) return;
    this.unroutable.set(row.id, Date.now());
    const r = await launcherRequest(link, 'POST', '/v1/launcher/deployments', this.assignment(row));
    if (r.status !== 200)
      this.deps.log.warn({ deployment_id: row.id, status: r.status }, 'deployments: re-sending an assignment failed');
  }

  /**
   * One launcher state read: a workload the launcher runs (an adopted one after its restart included) that is
   * neither the current nor the retiring generation of an unfinished deployment on that node — the deployment
   * ended, or moved on, while the launcher could not be told — is stopped.
   */
  async reconcileLauncher(view: LauncherView): Promise<void> {
    for (const ld of view.state.deployments ?? []) {
      if (this.strays.has(ld.workload_id)) continue;
      const row = await this.get(ld.deployment_id);
      if (row && this.busy.has(row.id)) continue;
      const generation = Number(ld.workload_id.slice(ld.workload_id.lastIndexOf('-') + 1));
      const wanted =
        row !== undefined &&
        row.node_id === view.node_id &&
        UNFINISHED.includes(row.state) &&
        (generation === row.generation || generation === row.retiring_generation);
      if (wanted) continue;
      this.strays.add(ld.workload_id);
      void launcherRequest(view.link, 'DELETE', `/v1/launcher/deployments/${ld.workload_id}`)
        .then((r) =>
          this.deps.log.info({ workload_id: ld.workload_id, status: r.status }, 'deployments: stray stopped'),
        )
        .catch((err: unknown) => this.deps.log.warn({ err: (err as Error).message }, 'deployments: stopping a stray'))
        .finally(() => this.strays.delete(ld.workload_id));
    }
  }

  private async stopWorkload(row: DeploymentRow, generation: number): Promise<boolean> {
    const link = this.deps.registry.link(row.node_id);
    if (link === null) return false;
    const r = await launcherRequest(link, 'DELETE', `/v1/launcher/deployments/${workloadId(row.id, generation)}`);
    return r.status === 200 || r.status === 404;
  }

  private async stopAll(row: DeploymentRow): Promise<void> {
    const gens = [row.generation, ...(row.retiring_generation !== null ? [row.retiring_generation] : [])];
    for (const g of gens) if (!(await this.stopWorkload(row, g))) return; // retried on the next sweep
    await this.set(row.id, 'stopped', row.reason, { retiring_generation: null });
    this.unroutable.delete(row.id);
  }
}
