#!/usr/bin/env node
// The control plane's garbage collection under proxy load: one backend, one control plane (run with
// --trace-gc) and one agent of this checkout (or of the checkout given as the first argument), 10 connections,
// 20,000 requests of warm-up, then 40,000 measured. Prints the scavenges in the window, how much each
// promoted to the old generation (MB), and the GC pause time per 1,000 requests. A request's objects should
// die young: a scavenge that promotes megabytes means something keeps them alive past it, and the old
// generation then fills with garbage that only full collections free.
//   node bench/cp-gc.mjs [CODE_DIR] [--entry path|host]      (CP_NODE_ARGS: more flags for the control plane)
import autocannon from 'autocannon';
import { resolve } from 'node:path';
import { killAll, setCodeRoot, spawnAgent, spawnControlPlane, startBackend, waitRoutable } from './procs.mjs';

const WARMUP_REQUESTS = 20_000;
const MEASURED_REQUESTS = 40_000;
const args = process.argv.slice(2);
const entry_at = args.indexOf('--entry');
const entry = entry_at >= 0 ? args.splice(entry_at, 2)[1] : 'path';
const idle_at = args.indexOf('--idle-first');
const idle_s = idle_at >= 0 ? Number(args.splice(idle_at, 2)[1]) : 0;
if (entry !== 'path' && entry !== 'host') {
  console.error('cp-gc: --entry is path or host');
  process.exit(2);
}
if (args[0]) setCodeRoot(resolve(args[0]));

const backend = await startBackend();
const extra_args = process.env.CP_NODE_ARGS ? process.env.CP_NODE_ARGS.split(' ') : [];
const cp = await spawnControlPlane({ nodeArgs: ['--trace-gc', ...extra_args] });
try {
  spawnAgent({ ws_url: cp.ws_url, backend_url: backend.url });
  await waitRoutable(cp.api_url);
  await new Promise((r) => setTimeout(r, idle_s * 1000));
  const target =
    entry === 'path'
      ? { url: `${cp.api_url}/v1/proxy/demo/small` }
      : { url: `${cp.proxy_url}/small`, headers: { host: 'demo.app.test' } };
  await autocannon({ ...target, connections: 10, amount: WARMUP_REQUESTS });
  const from = cp.output().length;
  const r = await autocannon({ ...target, connections: 10, amount: MEASURED_REQUESTS });
  if (r.non2xx + r.errors + r.timeouts > 0) throw new Error('requests failed during the measurement');
  // `[pid:isolate] t ms: Scavenge 121.3 (142.7) -> 112.1 (144.9) MB, 4.72 / 0.01 ms ...`; only the main isolate.
  const lines = cp
    .output()
    .slice(from)
    .split('\n')
    .filter((l) => / ms: (Scavenge|Mark-Compact)/.test(l));
  const isolate = /\[\d+:(0x[0-9a-f]+)\]/.exec(lines[0] ?? '')?.[1];
  const main = lines.filter((l) => l.includes(`:${isolate}]`));
  const pause_ms = main.reduce((a, l) => a + Number(/MB, ([0-9.]+) \//.exec(l)?.[1] ?? 0), 0);
  const after = main.filter((l) => l.includes('Scavenge')).map((l) => Number(/-> ([0-9.]+) \(/.exec(l)?.[1] ?? NaN));
  let grown_mb = 0;
  for (let i = 1; i < after.length; i++) grown_mb += Math.max(0, after[i] - after[i - 1]);
  console.log(
    JSON.stringify({
      entry,
      scavenges: after.length,
      full_gcs: main.length - after.length,
      promoted_mb_per_scavenge: after.length > 1 ? Number((grown_mb / (after.length - 1)).toFixed(2)) : 0,
      gc_ms_per_1000_requests: Number(((pause_ms * 1000) / MEASURED_REQUESTS).toFixed(2)),
    }),
  );
} finally {
  await killAll();
}
