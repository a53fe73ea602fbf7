// The launcher's deployments (docs/workloads.md §3): a long-running container with its port published on
// loopback, and an agent beside it (the embedded `packages/agent`, pointed at that port) that registers the
// deployment's app, attests its own per-boot keyset and serves the app through the tunnel exactly as a
// hand-started agent does. The agent registers the image id that runs as its release tag, so the registration
// records what runs. One container and one agent per workload id: a rolling update starts a second workload of
// the same deployment, and the control plane stops the old one once the new one is routable.
import { Agent, loadAgentConfig, type AgentOptions } from '@easyenclave/agent';
import { DEPLOYMENT_REPO, type DeploymentAssignment, type LauncherDeployment } from '@easyenclave/protocol/launcher';
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

  private async startWorkload(a: DeploymentAssignment): Promise<LauncherDeployment> {
    const env = a.sealed_env === null ? {} : await this.openEnv(a.sealed_env, a.deployment_id);
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
      if (err instanceof RuntimeError) throw new AssignmentRefused(err.code, err.message);
      throw err;
    }
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
      throw err;
    }
    agent.start();
    const r: Running = { a, workload, agent };
    this.running.set(a.workload_id, r);
    this.log.info({ workload_id: a.workload_id, app: a.app, image_id: workload.image.id }, 'deployment started');
    return this.view(r);
  }

  /** Stops one workload: its agent drains (GOAWAY, in-flight requests finish), then the container stops. */
  async stop(workload_id: string): Promise<boolean> {
    await this.starting.get(workload_id)?.catch(() => undefined);
    const r = this.running.get(workload_id);
    if (!r) return false;
    this.running.delete(workload_id);
    await r.agent.stop(DEPLOYMENT_DRAIN_MS);
    await r.workload.remove();
    this.log.info({ workload_id }, 'deployment stopped');
    return true;
  }

  /**
   * After a restart: the containers of deployments this launcher no longer tracks (it ran them before it
   * stopped) are removed. Their agent is gone with the old process, and the container's labels do not carry the
   * app; the control plane sees the app unroutable and sends the assignment again, which starts it afresh.
   */
  async reconcile(): Promise<number> {
    const stale = this.runtime.list().filter((w) => w.kind === 'deployment' && !this.running.has(w.workload_id));
    for (const w of stale) await w.remove();
    if (stale.length > 0) this.log.info({ removed: stale.length }, 'launcher: removed deployments of a previous run');
    return stale.length;
  }

  /** The launcher stops: agents close; containers keep running (not yet taken back by a restarted launcher). */
  async close(): Promise<void> {
    await Promise.all([...this.running.values()].map((r) => r.agent.stop(0)));
  }
}
