// The agent's operations port (EE_METRICS_PORT, off by default; EE_METRICS_BIND, loopback by default):
// Prometheus metrics and readiness. Ready = the tunnel is open and the control plane accepted the agent's
// attestation, i.e. the control plane may route traffic here.
import { Counter, Gauge, Registry, collectDefaultMetrics } from 'prom-client';
import { buildInfoGauge } from '@easyenclave/protocol/ops/build-info';
import { startOpsServer, type OpsServer, type Readiness } from '@easyenclave/protocol/ops/server';

/** What the metrics read of the agent (its events and two fields), so this module does not import agent.ts. */
export interface ObservedAgent {
  readonly attested: boolean;
  readonly activeStreams: number;
  on(event: 'connected' | 'disconnected' | 'attested' | 'attest_failed', listener: () => void): unknown;
}

export class AgentMetrics {
  readonly registry = new Registry();
  connected = false;
  readonly connects = new Counter({
    name: 'ee_agent_tunnel_connects_total',
    help: 'Tunnel connections opened to the control plane',
    registers: [this.registry],
  });
  readonly disconnects = new Counter({
    name: 'ee_agent_tunnel_disconnects_total',
    help: 'Tunnel connections closed',
    registers: [this.registry],
  });
  readonly attestations = new Counter({
    name: 'ee_agent_attestations_total',
    help: "The control plane's attestation verdicts on this agent (ok, refused)",
    labelNames: ['result'],
    registers: [this.registry],
  });

  constructor(agent: ObservedAgent) {
    collectDefaultMetrics({ register: this.registry });
    buildInfoGauge(this.registry, 'agent');
    const up = () => this.connected;
    new Gauge({
      name: 'ee_agent_tunnel_up',
      help: '1 while the tunnel to the control plane is open',
      registers: [this.registry],
      collect() {
        this.set(up() ? 1 : 0);
      },
    });
    new Gauge({
      name: 'ee_agent_attested',
      help: "1 while the control plane accepts this agent's attestation",
      registers: [this.registry],
      collect() {
        this.set(agent.attested ? 1 : 0);
      },
    });
    new Gauge({
      name: 'ee_agent_streams_active',
      help: 'Proxied requests in flight through this agent',
      registers: [this.registry],
      collect() {
        this.set(agent.activeStreams);
      },
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
