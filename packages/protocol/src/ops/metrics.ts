// One process's Prometheus metrics: a registry with `ee_build_info` (build-info.ts) and, where asked, Node's
// default metrics, and the one way the control plane, the agent and the launcher declare a series on it — a
// name, a help text and its labels, always registered where it is served. Imported by path
// (@easyenclave/protocol/ops/metrics), not from the package's main entry.
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import { buildInfoGauge } from './build-info.js';

/** Read at scrape time (`this` is the gauge: set it, or set its labels). */
export type GaugeCollect<L extends string> = (this: Gauge<L>) => void | Promise<void>;

export class MetricSet {
  readonly registry = new Registry();

  constructor(component: string, default_metrics: boolean) {
    if (default_metrics) collectDefaultMetrics({ register: this.registry });
    buildInfoGauge(this.registry, component);
  }

  counter<L extends string = string>(name: string, help: string, labelNames: readonly L[] = []): Counter<L> {
    return new Counter<L>({ name, help, labelNames, registers: [this.registry] });
  }

  gauge<L extends string = string>(
    name: string,
    help: string,
    collect?: GaugeCollect<L>,
    labelNames: readonly L[] = [],
  ): Gauge<L> {
    return new Gauge<L>({ name, help, labelNames, registers: [this.registry], ...(collect ? { collect } : {}) });
  }

  histogram<L extends string = string>(
    name: string,
    help: string,
    buckets: number[],
    labelNames: readonly L[] = [],
  ): Histogram<L> {
    return new Histogram<L>({ name, help, labelNames, buckets, registers: [this.registry] });
  }
}
