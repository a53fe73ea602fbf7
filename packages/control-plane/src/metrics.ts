// Prometheus metrics. One registry per control plane instance so tests can run several in one process.
import { Counter, Gauge, Registry, collectDefaultMetrics } from 'prom-client';

export class ProxyMetrics {
  readonly registry = new Registry();
  readonly requests = new Counter({
    name: 'ee_proxy_requests_total',
    help: 'Proxied requests by HTTP status class',
    labelNames: ['status'],
    registers: [this.registry],
  });
  readonly agents = new Gauge({
    name: 'ee_agents_connected',
    help: 'Agent tunnels currently connected',
    registers: [this.registry],
  });
  readonly streams = new Gauge({
    name: 'ee_streams_active',
    help: 'Proxied streams in flight',
    registers: [this.registry],
  });
  readonly attestations = new Counter({
    name: 'ee_attestations_total',
    help: 'Attestation verdicts',
    labelNames: ['result'],
    registers: [this.registry],
  });
  private readonly by_class = ['1xx', '2xx', '3xx', '4xx', '5xx'].map((c) => this.requests.labels(c));

  constructor(default_metrics = false) {
    if (default_metrics) collectDefaultMetrics({ register: this.registry });
  }

  done(status: number): void {
    const i = Math.floor(status / 100) - 1;
    this.by_class[i >= 0 && i < 5 ? i : 4]!.inc();
  }
}
