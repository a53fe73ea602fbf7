// Load generation with autocannon, always in its own process (the machine has 2 cores: the load generator
// competes with the targets the same way for every target).
//
//   import { runLoad } from './load.mjs';   await runLoad({ url, connections, duration_s, warmup_s, headers })
//   node bench/load.mjs '<json options>'   → prints one JSON line with the result
//
// Latency: autocannon's own histogram has 1 ms resolution, too coarse for sub-millisecond loopback p50s, so
// the child also records every 2xx response time (float ms, from autocannon's hrtime measurement) and
// computes exact percentiles. Errors and non-2xx responses are counted with their kinds and times.

import { fileURLToPath } from 'node:url';
import { runJsonChild } from './json-child.mjs';

const SELF = fileURLToPath(import.meta.url);
const MAX_SAMPLES = 4_000_000; // 32 MiB of float64: bounds memory; beyond it, reservoir sampling

export function percentile(sorted, p) {
  if (sorted.length === 0) return NaN;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[i];
}

/** Runs autocannon in a child process; resolves with its JSON result. Bounded by duration + 30 s. */
export function runLoad(opts) {
  const limit = ((opts.duration_s ?? 5) + (opts.warmup_s ?? 0) + 30) * 1000;
  return runJsonChild(SELF, opts, limit, 'load generator', opts.onSpawn);
}

async function main() {
  const { default: autocannon } = await import('autocannon');
  const o = JSON.parse(process.argv[2]);
  const base = {
    url: o.url,
    connections: o.connections ?? 1,
    pipelining: 1,
    headers: o.headers ?? {},
    method: o.method ?? 'GET',
    timeout: o.timeout_s ?? 10,
  };
  const run = (duration, record) =>
    new Promise((resolve, reject) => {
      const samples = new Float64Array(record ? MAX_SAMPLES : 0);
      let n = 0;
      let seen = 0;
      const errorKinds = {};
      const timeline = [];
      const start = Date.now();
      const inst = autocannon({ ...base, duration }, (err, result) =>
        err ? reject(err) : resolve({ result, samples: samples.subarray(0, n), errorKinds, timeline, start }),
      );
      if (!record) return;
      inst.on('response', (_client, status, _bytes, ms) => {
        if (status >= 200 && status < 300) {
          seen++;
          if (n < MAX_SAMPLES) samples[n++] = ms;
          else {
            const j = Math.floor(Math.random() * seen);
            if (j < MAX_SAMPLES) samples[j] = ms;
          }
        } else {
          const k = `HTTP ${status}`;
          errorKinds[k] = (errorKinds[k] ?? 0) + 1;
          if (timeline.length < 10_000) timeline.push([Date.now() - start, k]);
        }
      });
      inst.on('reqError', (e) => {
        const k = e?.code ?? e?.message ?? String(e);
        errorKinds[k] = (errorKinds[k] ?? 0) + 1;
        if (timeline.length < 10_000) timeline.push([Date.now() - start, k]);
      });
    });
  if (o.warmup_s) await run(o.warmup_s, false);
  const { result: r, samples, errorKinds, timeline, start } = await run(o.duration_s ?? 5, true);
  samples.sort();
  const ok = r['2xx'];
  const out = {
    url: o.url,
    connections: base.connections,
    duration_s: r.duration,
    start_ms: start,
    requests_ok: ok,
    rps: ok / r.duration,
    p50_ms: percentile(samples, 50),
    p90_ms: percentile(samples, 90),
    p99_ms: percentile(samples, 99),
    p999_ms: percentile(samples, 99.9),
    max_ms: samples.length ? samples[samples.length - 1] : NaN,
    errors: r.errors,
    timeouts: r.timeouts,
    non2xx: r.non2xx,
    status_codes: Object.fromEntries(Object.entries(r.statusCodeStats ?? {}).map(([k, v]) => [k, v.count])),
    error_kinds: errorKinds,
    timeline,
  };
  process.stdout.write(JSON.stringify(out) + '\n', () => process.exit(0)); // exit even if a socket lingers
}

if (process.argv[1] === SELF) {
  main().catch((err) => {
    process.stderr.write(String(err?.stack ?? err) + '\n');
    process.exit(1);
  });
}
