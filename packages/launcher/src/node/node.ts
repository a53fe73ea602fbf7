// `ee node run`: the node launcher. It dials the control plane like an agent (an embedded Agent: the same
// outbound tunnel, registration with the node token, attestation with its own per-boot keyset and proof of
// possession, health), serves the launcher API on loopback behind that tunnel, and runs assignments through
// podman. Configured like an agent: EE_CONTROL_WS, EE_NODE_TOKEN, EE_NETWORK, plus the container settings
// (docs/workloads.md §1); the app, repo and backend are the launcher's own.
import { Agent, loadAgentConfig, type AgentOptions } from '@easyenclave/agent';
import { generateKeyset } from '@easyenclave/attestation';
import { deploymentEnvAad, LAUNCHER_APP, LAUNCHER_REPO, LAUNCHER_VERSION } from '@easyenclave/protocol/launcher';
import { pino, type Logger } from 'pino';
import { loadLauncherConfig, type LauncherConfig } from '../config.js';
import { PodmanRuntime } from '../podman/runtime.js';
import { LauncherApi } from './api.js';
import { LauncherDeployments } from './deployments.js';
import { LauncherJobs } from './jobs.js';
import { loadLauncherOpsConfig, serveLauncherOps } from '../ops.js';
import type { OpsServer } from '@easyenclave/protocol/ops/server';

type Env = Record<string, string | undefined>;

export interface LauncherNodeOptions {
  logger?: Logger;
  quote_provider?: AgentOptions['quote_provider'];
}

export class LauncherNode {
  private constructor(
    readonly config: LauncherConfig,
    readonly runtime: PodmanRuntime,
    readonly jobs: LauncherJobs,
    readonly api: LauncherApi,
    readonly agent: Agent,
    readonly deployments: LauncherDeployments,
    /** The operations port (/metrics, /ready) when EE_METRICS_PORT is set. */
    readonly ops: OpsServer | null,
  ) {}

  /** Opens podman, takes back this launcher's containers, serves its API and dials the control plane. */
  static async start(env: Env, opts: LauncherNodeOptions = {}): Promise<LauncherNode> {
    const config = loadLauncherConfig(env);
    const log = opts.logger ?? pino({ level: config.log_level, base: { svc: 'launcher', id: config.launcher_id } });
    // The agent's settings first, so a bad EE_CONTROL_WS or EE_NETWORK stops start-up before podman is touched.
    const agentEnv: Env = {
      ...env,
      EE_REPO: LAUNCHER_REPO,
      EE_RELEASE_TAG: LAUNCHER_VERSION,
      EE_APP_NAME: LAUNCHER_APP,
      EE_AGENT_ID: config.launcher_id,
      EE_BACKEND_URL: 'http://127.0.0.1:1',
      EE_HEALTH_PATH: '/health',
      // The launcher's operations port serves the node; the embedded agent opens none of its own.
      EE_METRICS_PORT: undefined,
    };
    loadAgentConfig(agentEnv);
    const opsConfig = loadLauncherOpsConfig(env);
    const runtime = await PodmanRuntime.open(config, { logger: log });
    let agent: Agent | null = null;
    let api: LauncherApi | null = null;
    let ops: OpsServer | null = null;
    let deployments: LauncherDeployments | null = null;
    try {
      // One keyset per boot: the agent attests it, the jobs open sealed envs and sign usage with it.
      const keys = generateKeyset();
      const jobs = new LauncherJobs(runtime, keys, config.state_dir, config.launcher_id, log);
      await jobs.reconcile();
      deployments = new LauncherDeployments(
        runtime,
        config.state_dir,
        { ...env, EE_METRICS_PORT: undefined },
        (sealed, id) => jobs.openSealedEnv(sealed, deploymentEnvAad(id)),
        log,
        opts.quote_provider ? { quote_provider: opts.quote_provider } : {},
      );
      await deployments.reconcile();
      api = new LauncherApi(jobs, () => agent?.sessionIds() ?? [], log, deployments);
      const url = await api.listen();
      agent = new Agent(loadAgentConfig({ ...agentEnv, EE_BACKEND_URL: url }), {
        logger: log,
        keys,
        ...(opts.quote_provider ? { quote_provider: opts.quote_provider } : {}),
      });
      agent.start();
      const tunnel = agent;
      if (opsConfig.metrics_port !== null)
        ops = await serveLauncherOps(runtime, { ...opsConfig, metrics_port: opsConfig.metrics_port }, () =>
          tunnel.attested ? { ready: true } : { ready: false, reason: 'tunnel not attested' },
        );
      log.info({ api: url, ops: ops?.url, launcher_id: config.launcher_id }, 'launcher started');
      return new LauncherNode(config, runtime, jobs, api, agent, deployments, ops);
    } catch (err) {
      await agent?.stop(0);
      await api?.close();
      await runtime.close();
      throw err;
    }
  }

  async stop(): Promise<void> {
    await this.ops?.close();
    await this.agent.stop(1000);
    await this.deployments.close();
    await this.api.close();
    await this.jobs.close();
    await this.runtime.close();
  }
}
