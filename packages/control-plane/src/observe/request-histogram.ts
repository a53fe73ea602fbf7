// A Prometheus histogram for the two metrics observed on every request (API latency per route, proxied latency
// per entry and app). prom-client's Histogram checks the label names and builds a hash string of the labels on
// every observe, even through a bound child (~0.5 µs each, a few % of a proxied request's control-plane CPU);
// here each series is bound once by a caller-chosen key and an observation is a bucket search and three adds.
// Exposition goes through the same prom-client registry, in the same text form as a prom-client Histogram.
import type { Metric, Registry } from 'prom-client';

export class HistogramSeries {
  /** Observations per bucket (not cumulative); one slot per upper bound, the +Inf bucket is `count`. */
  readonly counts: Float64Array;
  sum = 0;
  count = 0;

  constructor(
    private readonly bounds: readonly number[],
    readonly labels: Readonly<Record<string, string>>,
  ) {
    this.counts = new Float64Array(bounds.length);
  }

  observe(value: number): void {
    if (!Number.isFinite(value)) return;
    const b = this.bounds;
    let i = 0;
    while (i < b.length && value > b[i]!) i++;
    if (i < b.length) this.counts[i]!++;
    this.sum += value;
    this.count++;
  }
}

interface ExportedValue {
  value: number;
  labels: Record<string, string | number>;
  sharedLabels: Readonly<Record<string, string>>;
  metricName: string;
}

export class RequestHistogram {
  readonly type = 'histogram';
  readonly aggregator = 'sum';
  readonly #series = new Map<string, HistogramSeries>();

  constructor(
    readonly name: string,
    readonly help: string,
    private readonly buckets: readonly number[],
    registry: Registry,
  ) {
    // The registry formats any object with this shape (name, help, type, get/getForPromString, reset).
    registry.registerMetric(this as unknown as Metric);
  }

  /** The series under `key` (bounded by the caller), created with `labels()` the first time. */
  series(key: string, labels: () => Record<string, string>): HistogramSeries {
    let s = this.#series.get(key);
    if (s === undefined) this.#series.set(key, (s = new HistogramSeries(this.buckets, labels())));
    return s;
  }

  /** What prom-client's registry prints: per series the cumulative buckets, +Inf, _sum and _count. */
  getForPromString(): { name: string; help: string; type: string; aggregator: string; values: ExportedValue[] } {
    const values: ExportedValue[] = [];
    const bucket = `${this.name}_bucket`;
    for (const s of this.#series.values()) {
      let acc = 0;
      this.buckets.forEach((le, i) => {
        acc += s.counts[i]!;
        values.push({ value: acc, labels: { le }, sharedLabels: s.labels, metricName: bucket });
      });
      values.push({ value: s.count, labels: { le: '+Inf' }, sharedLabels: s.labels, metricName: bucket });
      values.push({ value: s.sum, labels: {}, sharedLabels: s.labels, metricName: `${this.name}_sum` });
      values.push({ value: s.count, labels: {}, sharedLabels: s.labels, metricName: `${this.name}_count` });
    }
    return { name: this.name, help: this.help, type: this.type, aggregator: this.aggregator, values };
  }

  /** The JSON form (registry.getMetricsAsJSON): each value's labels include its series' labels. */
  get(): Omit<ReturnType<RequestHistogram['getForPromString']>, 'values'> & { values: object[] } {
    const data = this.getForPromString();
    const values = data.values.map((v) => ({
      value: v.value,
      labels: { ...v.sharedLabels, ...v.labels },
      metricName: v.metricName,
    }));
    return { ...data, values };
  }

  reset(): void {
    this.#series.clear();
  }
}
