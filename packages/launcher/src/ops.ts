// The launcher's operations port (EE_METRICS_PORT, off by default; EE_METRICS_BIND, loopback by default), the
// same server as the agent's (@easyenclave/protocol/ops/server): GET /metrics with the runtime's capacity and
// workloads, GET /ready while the runtime is open (the launcher can start work). Read from the runtime at
// scrape time, so nothing in the runtime has to report to it.
import type { Registry } from 'prom-client';
import { MetricSet } from '@easyenclave/protocol/ops/metrics';
import { OPS_DEFAULT_BIND, startOpsServer, type OpsServer, type Readiness } from '@easyenclave/protocol/ops/server';
import { LauncherConfigError } from './config.js';
import type { ContainerRuntime } from './runtime.js';

const MIB_BYTES = 1024 * 1024;
const STATES = ['total', 'allocated', 'free'] as const;

export interface LauncherOpsConfig {
  /** null = off. */
  readonly metrics_port: number | null;
  readonly metrics_bind: string;
}

/** EE_METRICS_PORT (unset = off; 0 = any free port) and EE_METRICS_BIND (default 127.0.0.1). */
export function loadLauncherOpsConfig(env: Record<string, string | undefined>): LauncherOpsConfig {
  const port = env.EE_METRICS_PORT || undefined;
  if (port !== undefined && (!/^[0-9]{1,5}$/.test(port) || Number(port) > 65_535))
    throw new LauncherConfigError('EE_METRICS_PORT', `must be an integer from 0 to 65535, got "${port}"`);
  return {
    metrics_port: port === undefined ? null : Number(port),
    metrics_bind: env.EE_METRICS_BIND || OPS_DEFAULT_BIND,
  };
}

export function launcherMetrics(runtime: Pick<ContainerRuntime, 'capacity'>): Registry {
  const m = new MetricSet('launcher', true);
  m.gauge('ee_launcher_workloads', 'Workloads (jobs and deployments) the launcher tracks', function () {
    this.set(runtime.capacity().workloads);
  });
  m.gauge(
    'ee_launcher_vcpus',
    'vCPUs offered (total), reserved by workloads (allocated) and free',
    function () {
      const c = runtime.capacity();
      for (const state of STATES) this.labels(state).set(c[state].vcpus);
    },
    ['state'],
  );
  m.gauge(
    'ee_launcher_memory_bytes',
    'Memory offered (total), reserved by workloads (allocated) and free, bytes',
    function () {
      const c = runtime.capacity();
      for (const state of STATES) this.labels(state).set(c[state].memory_mib * MIB_BYTES);
    },
    ['state'],
  );
  return m.registry;
}

/** Serves /metrics and /ready for `runtime`; `ready` says whether the launcher can take work now. */
export function serveLauncherOps(
  runtime: Pick<ContainerRuntime, 'capacity'>,
  config: LauncherOpsConfig & { metrics_port: number },
  ready: () => Readiness,
): Promise<OpsServer> {
  return startOpsServer({
    bind: config.metrics_bind,
    port: config.metrics_port,
    registry: launcherMetrics(runtime),
    readiness: ready,
  });
}
