// The per-request latency histograms (observe/request-histogram.ts) print exactly what a prom-client Histogram
// with the same buckets, labels and observations prints, so dashboards and alerts read them the same way.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Histogram, Registry } from 'prom-client';
import { RequestHistogram } from '@easyenclave/control-plane/observe/request-histogram';
import { ControlPlaneMetrics, MAX_APP_LABELS } from '@easyenclave/control-plane/metrics';

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

  it('proxied latency: one series per entry, app and status class; apps past the label cap count as "other"', async () => {
    const m = new ControlPlaneMetrics();
    for (let i = 0; i < MAX_APP_LABELS + 2; i++) m.proxyRequest('path', `app${i}`, 200, 0.002);
    m.proxyRequest('path', 'app0', 503, 0.002);
    m.proxyRequest('path', 'app0', 204, 0.002);
    m.proxyRequest('host', 'app0', 200, 0.002);
    m.proxyRequest('path', `app${MAX_APP_LABELS + 1}`, 404, 0.002);
    const text = await m.registry.metrics();
    const count = (labels: string) =>
      Number(new RegExp(`^ee_proxy_request_duration_seconds_count\\{${labels}\\} (\\d+)$`, 'm').exec(text)?.[1]);
    assert.equal(count('entry="path",app="app0",status="2xx"'), 2);
    assert.equal(count('entry="path",app="app0",status="5xx"'), 1);
    assert.equal(count('entry="host",app="app0",status="2xx"'), 1);
    assert.equal(count(`entry="path",app="app${MAX_APP_LABELS - 1}",status="2xx"`), 1);
    assert.equal(count('entry="path",app="other",status="2xx"'), 2);
    assert.equal(count('entry="path",app="other",status="4xx"'), 1);
    assert.ok(!text.includes(`app="app${MAX_APP_LABELS}"`), 'no label past the cap');
    const apps = new Set(
      [...text.matchAll(/ee_proxy_request_duration_seconds_count\{[^}]*app="([^"]+)"/g)].map((x) => x[1]),
    );
    assert.equal(apps.size, MAX_APP_LABELS + 1);
  });
});
