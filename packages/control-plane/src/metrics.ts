// Prometheus metrics, in base units (seconds, bytes; money in micro-USD, the ledger's unit). One registry per
// control plane instance so tests can run several in one process. Label values come from closed sets (status
// classes, route patterns, ledger movement kinds) or are capped (apps: MAX_APP_LABELS, then "other"), so the
// number of series stays bounded whatever clients send.
import { MetricSet } from '@easyenclave/protocol/ops/metrics';
import { RequestHistogram, type HistogramSeries } from './observe/request-histogram.js';

/** Distinct app names given their own label; later apps are counted under "other". */
export const MAX_APP_LABELS = 200;
/** Request and commit latency buckets, seconds: 1 ms to 1 min. */
export const LATENCY_BUCKETS_S = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];
/** Attestation takes longer (collateral fetches): 10 ms to 2 min. */
export const ATTESTATION_BUCKETS_S = [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120];

const STATUS_CLASSES = ['1xx', '2xx', '3xx', '4xx', '5xx'] as const;
const classIndex = (status: number) => {
  const i = Math.floor(status / 100) - 1;
  return i >= 0 && i < 5 ? i : 4;
};
const statusClass = (status: number) => STATUS_CLASSES[classIndex(status)]!;

export type ProxyEntry = 'path' | 'host';

/** One app's proxied-latency series, one per status class, created on first use. */
interface ProxyRow {
  label: string;
  by_class: (HistogramSeries | undefined)[];
}

export class ControlPlaneMetrics extends MetricSet {
  readonly requests = this.counter('ee_proxy_requests_total', 'Proxied requests by HTTP status class', ['status']);
  readonly agents = this.gauge('ee_agents_connected', 'Agent tunnels currently connected');
  readonly streams = this.gauge('ee_streams_active', 'Proxied streams in flight over agent tunnels');
  readonly attestations = this.counter('ee_attestations_total', 'Attestation verdicts', ['result']);
  readonly attestation_duration = this.histogram(
    'ee_attestation_duration_seconds',
    'Time to verify one piece of evidence, by verdict (ok, failed)',
    ATTESTATION_BUCKETS_S,
    ['result'],
  );
  /** API requests, by method, route pattern and status class (observed per request: request-histogram.ts). */
  readonly api_duration = new RequestHistogram(
    'ee_api_request_duration_seconds',
    'API requests: time to the response, by method, route pattern and status class',
    LATENCY_BUCKETS_S,
    this.registry,
  );
  /** Proxied requests, by entry point (path, host), app and status class. */
  readonly proxy_duration = new RequestHistogram(
    'ee_proxy_request_duration_seconds',
    'Proxied requests: time to the end of the response, by entry point (path, host), app and status class',
    LATENCY_BUCKETS_S,
    this.registry,
  );
  /** Usage receipts judged, by outcome: `accepted` or the refusal code (a closed set: market/reservation.ts). */
  readonly receipts = this.counter(
    'ee_receipts_total',
    'Usage receipts of sealed requests judged by the control plane, by outcome (accepted or the refusal)',
    ['outcome'],
  );
  readonly ledger_commit_duration = this.histogram(
    'ee_ledger_commit_duration_seconds',
    'Ledger group commits: time of one committed transaction',
    LATENCY_BUCKETS_S,
  );
  readonly ledger_operations = this.counter('ee_ledger_operations_total', 'Ledger operations committed');
  readonly ledger_movements = this.counter(
    'ee_ledger_movements_total',
    'Committed journal entries by kind (mint, transfer, lock, settle, refund, expire, stake, unstake, slash, payout_lock, payout, payout_cancel)',
    ['kind'],
  );
  readonly ledger_moved = this.counter(
    'ee_ledger_moved_micro_usd_total',
    'Money moved by committed journal entries, by kind, micro-USD',
    ['kind'],
  );
  readonly settlements = this.counter(
    'ee_settlement_periods_total',
    'Lease-period locks resolved, by outcome (posted, voided, expired)',
    ['outcome'],
  );
  private readonly by_class = STATUS_CLASSES.map((c) => this.requests.labels(c));
  readonly #apps = new Set<string>();

  constructor(default_metrics = false) {
    super('control-plane', default_metrics);
  }

  /** Per entry point, per app label: the series of each status class (found without building a key string). */
  readonly #proxy_rows: Record<ProxyEntry, Map<string, ProxyRow>> = { path: new Map(), host: new Map() };

  done(status: number): void {
    this.by_class[classIndex(status)]!.inc();
  }

  /** The app's own label while fewer than MAX_APP_LABELS apps have one, else "other". */
  appLabel(app: string): string {
    if (this.#apps.has(app)) return app;
    if (this.#apps.size >= MAX_APP_LABELS) return 'other';
    this.#apps.add(app);
    return app;
  }

  apiRequest(method: string, route: string, status: number, duration_s: number): void {
    const cls = statusClass(status);
    this.api_duration.series(`${method} ${cls} ${route}`, () => ({ method, route, status: cls })).observe(duration_s);
  }

  proxyRequest(entry: ProxyEntry, app: string, status: number, duration_s: number): void {
    const rows = this.#proxy_rows[entry];
    let row = rows.get(app);
    if (row === undefined) {
      // Bounded like the labels: one row per labelled app; apps past the cap find the row of "other".
      const label = this.appLabel(app);
      row = rows.get(label);
      if (row === undefined) rows.set(label, (row = { label, by_class: [] }));
    }
    const i = classIndex(status);
    let series = row.by_class[i];
    if (series === undefined) {
      const { label } = row;
      const cls = STATUS_CLASSES[i]!;
      series = this.proxy_duration.series(`${entry} ${cls} ${label}`, () => ({ entry, app: label, status: cls }));
      row.by_class[i] = series;
    }
    series.observe(duration_s);
  }
}

/** The name the tunnel and the proxy know these metrics by. */
export type ProxyMetrics = ControlPlaneMetrics;
