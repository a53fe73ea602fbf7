// The agent's operations port (EE_METRICS_PORT, off by default; EE_METRICS_BIND, loopback by default):
// Prometheus metrics and readiness. Ready = the tunnel is open and the control plane accepted the agent's
// attestation, i.e. the control plane may route traffic here.
import { MetricSet } from '@easyenclave/protocol/ops/metrics';
import { startOpsServer, type OpsServer, type Readiness } from '@easyenclave/protocol/ops/server';

/** What the metrics read of the agent (its events and two fields), so this module does not import agent.ts. */
export interface ObservedAgent {
  readonly attested: boolean;
  readonly activeStreams: number;
  on(event: 'connected' | 'disconnected' | 'attested' | 'attest_failed', listener: () => void): unknown;
}

export class AgentMetrics extends MetricSet {
  connected = false;
  readonly connects = this.counter('ee_agent_tunnel_connects_total', 'Tunnel connections opened to the control plane');
  readonly disconnects = this.counter('ee_agent_tunnel_disconnects_total', 'Tunnel connections closed');
  readonly attestations = this.counter(
    'ee_agent_attestations_total',
    "The control plane's attestation verdicts on this agent (ok, refused)",
    ['result'],
  );

  constructor(agent: ObservedAgent) {
    super('agent', true);
    const up = () => this.connected;
    this.gauge('ee_agent_tunnel_up', '1 while the tunnel to the control plane is open', function () {
      this.set(up() ? 1 : 0);
    });
    this.gauge('ee_agent_attested', "1 while the control plane accepts this agent's attestation", function () {
      this.set(agent.attested ? 1 : 0);
    });
    this.gauge('ee_agent_streams_active', 'Proxied requests in flight through this agent', function () {
      this.set(agent.activeStreams);
    });
    agent.on('connected', () => {
      this.connected = true;
      this.connects.inc();
    });
    agent.on('disconnected', () => {
      this.connected = false;
      this.disconnects.inc();
    });
    agent.on('attested', () => this.attestations.labels('ok').inc());
    agent.on('attest_failed', () => this.attestations.labels('refused').inc());
  }

  readiness(agent: ObservedAgent): Readiness {
    if (!this.connected) return { ready: false, reason: 'tunnel not connected' };
    if (!agent.attested) return { ready: false, reason: 'not attested' };
    return { ready: true };
  }
}

/** Serves /metrics and /ready for `agent` on bind:port. */
export function serveAgentOps(
  agent: ObservedAgent,
  metrics: AgentMetrics,
  bind: string,
  port: number,
): Promise<OpsServer> {
  return startOpsServer({ bind, port, registry: metrics.registry, readiness: () => metrics.readiness(agent) });
}
