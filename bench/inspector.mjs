// A minimal Chrome DevTools Protocol client for a process started with `--inspect=127.0.0.1:0`: lets the
// benchmark force a GC (HeapProfiler.collectGarbage), read process.memoryUsage(), and take a CPU profile of
// exactly the load window (Profiler.start/stop: the same V8 sampling profiler as `node --cpu-prof`, without
// the start-up). Loopback only; every call is bounded by a timeout.

import { WebSocket } from 'ws';

export const INSPECT_ARG = '--inspect=127.0.0.1:0';
export const INSPECT_LINE = /Debugger listening on (ws:\/\/127\.0\.0\.1:\d+\/[0-9a-f-]+)/;

export async function connectInspector(url, timeout_ms = 5000) {
  const ws = new WebSocket(url, { perMessageDeflate: false, maxPayload: 1024 * 1024 * 1024 });
  await new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error('inspector connect timeout')), timeout_ms);
    ws.once('open', () => (clearTimeout(t), resolve()));
    ws.once('error', (e) => (clearTimeout(t), reject(e)));
  });
  let next = 1;
  const pending = new Map();
  ws.on('message', (data) => {
    const msg = JSON.parse(data.toString());
    const p = msg.id !== undefined ? pending.get(msg.id) : undefined;
    if (!p) return;
    pending.delete(msg.id);
    clearTimeout(p.timer);
    if (msg.error) p.reject(new Error(`${p.method}: ${msg.error.message}`));
    else p.resolve(msg.result);
  });
  ws.on('close', () => {
    for (const p of pending.values()) p.reject(new Error('inspector closed'));
    pending.clear();
  });
  const send = (method, params = {}, call_timeout_ms = 30_000) =>
    new Promise((resolve, reject) => {
      const id = next++;
      const timer = setTimeout(() => {
        pending.delete(id);
        reject(new Error(`${method}: timeout`));
      }, call_timeout_ms);
      pending.set(id, { resolve, reject, timer, method });
      ws.send(JSON.stringify({ id, method, params }));
    });
  return {
    send,
    async gc() {
      await send('HeapProfiler.collectGarbage');
      await send('HeapProfiler.collectGarbage');
    },
    async memoryUsage() {
      const r = await send('Runtime.evaluate', {
        expression: 'JSON.stringify(process.memoryUsage())',
        returnByValue: true,
      });
      return JSON.parse(r.result.value);
    },
    async startProfile(interval_us = 500) {
      await send('Profiler.enable');
      await send('Profiler.setSamplingInterval', { interval: interval_us });
      await send('Profiler.start');
    },
    async stopProfile() {
      const r = await send('Profiler.stop', {}, 60_000);
      return r.profile;
    },
    close: () => ws.close(),
  };
}

/** Self time per function and per module from a V8 CPU profile (.cpuprofile format). */
export function summarizeProfile(profile, top = 15) {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const selfUs = new Map();
  const deltas = profile.timeDeltas ?? [];
  for (let i = 0; i < profile.samples.length; i++) {
    // A sample's duration is the gap to the next sample (as Chrome DevTools counts it).
    const d = deltas[i + 1] ?? 0;
    selfUs.set(profile.samples[i], (selfUs.get(profile.samples[i]) ?? 0) + Math.max(0, d));
  }
  const total = [...selfUs.values()].reduce((a, b) => a + b, 0) || 1;
  const fn = new Map();
  const mod = new Map();
  for (const [id, us] of selfUs) {
    const cf = byId.get(id)?.callFrame ?? {};
    const name = cf.functionName || '(anonymous)';
    const where = shortUrl(cf.url ?? '');
    const key = where ? `${name} ${where}:${(cf.lineNumber ?? 0) + 1}` : name;
    fn.set(key, (fn.get(key) ?? 0) + us);
    const m = moduleOf(cf.url ?? '', name);
    mod.set(m, (mod.get(m) ?? 0) + us);
  }
  const idle = fn.get('(idle)') ?? 0;
  const busy = total - idle;
  const rows = (m) =>
    [...m.entries()]
      .sort((a, b) => b[1] - a[1])
      .slice(0, top)
      .map(([k, us]) => ({
        name: k,
        ms: us / 1000,
        pct_total: (100 * us) / total,
        pct_busy: k === '(idle)' ? null : (100 * us) / (busy || 1),
      }));
  return {
    total_ms: total / 1000,
    idle_ms: idle / 1000,
    busy_pct: (100 * busy) / total,
    functions: rows(fn),
    modules: rows(mod),
  };
}

function shortUrl(url) {
  if (!url) return '';
  const u = url.replace(/^file:\/\//, '');
  const nm = u.lastIndexOf('node_modules/');
  if (nm >= 0) return u.slice(nm + 'node_modules/'.length);
  const pk = u.indexOf('/packages/');
  if (pk >= 0) return u.slice(pk + 1);
  return u;
}

function moduleOf(url, name) {
  if (!url) return name.startsWith('(') ? name : '(native / builtin)';
  const u = url.replace(/^file:\/\//, '');
  if (u.startsWith('node:')) return `node: ${u.slice(5).split('/').slice(0, 2).join('/')}`;
  const nm = u.lastIndexOf('node_modules/');
  if (nm >= 0) {
    const parts = u.slice(nm + 'node_modules/'.length).split('/');
    return `npm: ${parts[0].startsWith('@') ? `${parts[0]}/${parts[1]}` : parts[0]}`;
  }
  const pk = /\/packages\/([^/]+)\/dist\/(.+)$/.exec(u);
  if (pk) return `ee: ${pk[1]}/${pk[2]}`;
  return u;
}
