// The launcher's deployments (docs/workloads.md §3): a long-running container with its port published on
// loopback, and an agent beside it (the embedded `packages/agent`, pointed at that port) that registers the
// deployment's app, attests its own per-boot keyset and serves the app through the tunnel exactly as a
// hand-started agent does. The agent registers the image id that runs as its release tag, so the registration
// records what runs. One container and one agent per workload id: a rolling update starts a second workload of
// the same deployment, and the control plane stops the old one once the new one is routable.
// Each workload's public facts (the assignment without its env) are kept in `{state dir}/deployments/{id}.json`,
// as a job's are: a restarted launcher finds its running containers by label and adopts them, with a new agent
// (its own new keyset) for each, without touching the container.
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Agent, loadAgentConfig, type AgentOptions } from '@easyenclave/agent';
import { DEPLOYMENT_REPO, DeploymentAssignment, type LauncherDeployment } from '@easyenclave/protocol/launcher';
import type { Logger } from 'pino';
import { RuntimeError } from '../errors.js';
import type { ContainerRuntime, Workload } from '../runtime.js';
import { AssignmentRefused } from './jobs.js';

type Env = Record<string, string | undefined>;

/** How long a stopping deployment's agent lets in-flight requests finish before it closes its tunnel. */
export const DEPLOYMENT_DRAIN_MS = 10_000;
/** Deployments (workloads) one launcher runs at once. */
export const MAX_DEPLOYMENTS = 256;

interface Running {
  a: DeploymentAssignment;
  workload: Workload;
  agent: Agent;
}

export class LauncherDeployments {
  private readonly running = new Map<string, Running>();
  private readonly starting = new Map<string, Promise<LauncherDeployment>>();

  constructor(
    private readonly runtime: ContainerRuntime,
    /** The launcher's state directory: the workloads' facts live in its `deployments/`. */
    private readonly state_dir: string,
    /** The launcher's agent settings (control plane, network, node token); app, repo and backend are replaced. */
    private readonly agent_env: Env,
    private readonly openEnv: (sealed_b64: string, deployment_id: string) => Promise<Record<string, string>>,
    private readonly log: Logger,
    private readonly agent_opts: Pick<AgentOptions, 'quote_provider'> = {},
  ) {}

  private view(r: Running): LauncherDeployment {
    return {
      deployment_id: r.a.deployment_id,
      workload_id: r.a.workload_id,
      running: r.workload.running,
      image_id: r.workload.image.id,
      image_digest: r.workload.image.digest,
      host_port: r.workload.host_port,
      agent_id: r.a.workload_id,
    };
  }

  list(): LauncherDeployment[] {
    return [...this.running.values()].map((r) => this.view(r));
  }

  /** Starts a workload (idempotent by workload id): the container, then its agent. */
  start(a: DeploymentAssignment): Promise<LauncherDeployment> {
    const known = this.running.get(a.workload_id);
    if (known) return Promise.resolve(this.view(known));
    let p = this.starting.get(a.workload_id);
    if (p === undefined) {
      if (this.running.size + this.starting.size >= MAX_DEPLOYMENTS)
        return Promise.reject(new AssignmentRefused('too_many_deployments', `over ${MAX_DEPLOYMENTS} deployments`));
      p = this.startWorkload(a).finally(() => this.starting.delete(a.workload_id));
      this.starting.set(a.workload_id, p);
    }
    return p;
  }

  private get dir(): string {
    return join(this.state_dir, 'deployments');
  }

  private factsFile(workload_id: string): string {
    return join(this.dir, `${workload_id}.json`);
  }

  private async startWorkload(a: DeploymentAssignment): Promise<LauncherDeployment> {
    const env = a.sealed_env === null ? {} : await this.openEnv(a.sealed_env, a.deployment_id);
    await mkdir(this.dir, { recursive: true, mode: 0o700 });
    // Public facts only: the env stays in podman's container configuration (docs/workloads.md §1).
    await writeFile(this.factsFile(a.workload_id), JSON.stringify({ ...a, sealed_env: null }), { mode: 0o600 });
    let workload: Workload;
    try {
      workload = await this.runtime.start({
        workload_id: a.workload_id,
        kind: 'deployment',
        assignment_seq: 0,
        image: a.image,
        ...(a.command !== null ? { command: a.command } : {}),
        env,
        vcpus: a.vcpus,
        memory_mib: a.memory_mib,
        port: a.port,
      });
    } catch (err) {
      await rm(this.factsFile(a.workload_id), { force: true });
      if (err instanceof RuntimeError) throw new AssignmentRefused(err.code, err.message);
      throw err;
    }
    return this.view(await this.serve(a, workload));
  }

  /** Starts the agent in front of a running workload's loopback port. */
  private async serve(a: DeploymentAssignment, workload: Workload): Promise<Running> {
    if (workload.host_port === null) throw new Error('a deployment has a published port');
    let agent: Agent;
    try {
      agent = new Agent(
        loadAgentConfig({
          ...this.agent_env,
          EE_APP_NAME: a.app,
          EE_REPO: DEPLOYMENT_REPO,
          EE_RELEASE_TAG: workload.image.id,
          EE_AGENT_ID: a.workload_id,
          EE_BACKEND_URL: `http://127.0.0.1:${workload.host_port}`,
          EE_HEALTH_PATH: '/',
          EE_DRAIN_TIMEOUT_SEC: String(DEPLOYMENT_DRAIN_MS / 1000),
          EE_METRICS_PORT: undefined,
        }),
        { logger: this.log.child({ deployment: a.deployment_id, workload: a.workload_id }), ...this.agent_opts },
      );
    } catch (err) {
      await workload.remove();
      await rm(this.factsFile(a.workload_id), { force: true });
      throw err;
    }
    agent.start();
    const r: Running = { a, workload, agent };
    this.running.set(a.workload_id, r);
    this.log.info({ workload_id: a.workload_id, app: a.app, image_id: workload.image.id }, 'deployment serving');
    return r;
  }

  /** Stops one workload: its agent drains (GOAWAY, in-flight requests finish), then the container stops. */
  async stop(workload_id: string): Promise<boolean> {
    await this.starting.get(workload_id)?.catch(() => undefined);
    const r = this.running.get(workload_id);
    if (!r) return false;
    this.running.delete(workload_id);
    await r.agent.stop(DEPLOYMENT_DRAIN_MS);
    await r.workload.remove();
    await rm(this.factsFile(workload_id), { force: true });
    this.log.info({ workload_id }, 'deployment stopped');
    return true;
  }

  /**
   * After a restart (the runtime has reconciled its containers by label): each running deployment container
   * whose facts are on disk is adopted as it is — same container, a new agent in front of it, which registers
   * and attests again under the same agent id, so the control plane finds the app routable again and sends
   * nothing. A container that exited, or whose facts are missing, is removed (the control plane then sends
   * the assignment again, which starts it afresh). Returns how many were adopted and removed.
   */
  async reconcile(): Promise<{ adopted: number; removed: number }> {
    const found = this.runtime.list().filter((w) => w.kind === 'deployment' && !this.running.has(w.workload_id));
    let adopted = 0;
    for (const w of found) {
      const a = w.running ? await this.readFacts(w.workload_id) : null;
      if (a !== null && w.host_port !== null) {
        try {
          await this.serve(a, w);
          adopted++;
          continue;
        } catch (err) {
          // serve() removed the container and its facts: the control plane will send the assignment again.
          this.log.warn({ workload_id: w.workload_id, err: (err as Error).message }, 'launcher: adopting failed');
          continue;
        }
      }
      await w.remove();
      await rm(this.factsFile(w.workload_id), { force: true });
    }
    const removed = found.length - adopted;
    if (found.length > 0) this.log.info({ adopted, removed }, 'launcher: deployments of a previous run');
    return { adopted, removed };
  }

  private async readFacts(workload_id: string): Promise<DeploymentAssignment | null> {
    try {
      const r = DeploymentAssignment.safeParse(JSON.parse(await readFile(this.factsFile(workload_id), 'utf8')));
      return r.success && r.data.workload_id === workload_id ? r.data : null;
    } catch {
      return null;
    }
  }

  /** The launcher stops: agents close; containers keep running (a restarted launcher adopts them). */
  async close(): Promise<void> {
    await Promise.all([...this.running.values()].map((r) => r.agent.stop(0)));
  }
}
