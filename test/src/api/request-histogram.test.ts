// The per-request latency histograms (observe/request-histogram.ts) print exactly what a prom-client Histogram
// with the same buckets, labels and observations prints, so dashboards and alerts read them the same way.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Histogram, Registry } from 'prom-client';
import { RequestHistogram } from '@easyenclave/control-plane/observe/request-histogram';

const BUCKETS = [0.001, 0.01, 0.1, 1];
const OBSERVED: [string, string, number][] = [
  ['path', 'demo', 0.0004],
  ['path', 'demo', 0.001],
  ['path', 'demo', 0.05],
  ['host', 'shop', 3],
  ['path', 'demo', 0.2],
  ['host', 'shop', 0.01],
];

describe('request histogram', () => {
  it('prints the same text as prom-client for the same observations', async () => {
    const ours = new Registry();
    const theirs = new Registry();
    const h = new RequestHistogram('x_seconds', 'help text', BUCKETS, ours);
    const ref = new Histogram({
      name: 'x_seconds',
      help: 'help text',
      labelNames: ['entry', 'app'],
      buckets: BUCKETS,
      registers: [theirs],
    });
    for (const [entry, app, v] of OBSERVED) {
      h.series(`${entry} ${app}`, () => ({ entry, app })).observe(v);
      ref.labels(entry, app).observe(v);
    }
    assert.equal(await ours.metrics(), await theirs.metrics());
    // The JSON form too, but for prom-client's empty exemplar slots.
    const json = async (r: Registry) =>
      (await r.getMetricsAsJSON()).map((m) => ({
        ...m,
        values: m.values.map((v) => ({
          value: v.value,
          labels: v.labels,
          metricName: (v as { metricName?: string }).metricName,
        })),
      }));
    assert.deepEqual(await json(ours), await json(theirs));
    assert.match(await ours.metrics(), /^x_seconds_bucket\{le="0.01",entry="path",app="demo"\} 2$/m);
    ours.resetMetrics();
    assert.equal(await ours.metrics(), '# HELP x_seconds help text\n# TYPE x_seconds histogram\n');
  });

  it('binds a series once per key', () => {
    const h = new RequestHistogram('y_seconds', 'y', BUCKETS, new Registry());
    let built = 0;
    const labels = () => (built++, { entry: 'path' });
    h.series('k', labels).observe(0.5);
    h.series('k', labels).observe(0.5);
    assert.equal(built, 1);
    assert.equal(h.series('k', labels).count, 2);
  });
});
