// The sealed-traffic load generator (`npm run bench -- confidential`), in its own process:
//   import { runConfidential } from './confidential.mjs'
//   node bench/confidential.mjs '<json>' → one JSON line
// Options: { code_root, url (…/v1/proxy/demo), public_key (hex, or null for plain), kind: 'rps' | 'transfer' }
//   rps:      { connections, duration_s, body_bytes }: POST /sink with a small body, one at a time per
//             connection over an undici keep-alive pool; req/s and latency percentiles over 2xx answers.
//   transfer: { dir: 'upload' | 'download', bytes }: one body of `bytes` streamed to /sink or from /bytes/N.
// Plain and sealed requests go through the same client code; sealed ones are sealed to `public_key` and
// their responses opened (authenticated) before they count, so the client's sealing cost is measured too.

import { fileURLToPath } from 'node:url';
import { join } from 'node:path';
import { runJsonChild } from './json-child.mjs';
import { percentile } from './load.mjs';

const SELF = fileURLToPath(import.meta.url);
const MiB = 1024 * 1024;

export function runConfidential(opts) {
  const limit_ms = ((opts.duration_s ?? 0) + 120) * 1000;
  return runJsonChild(SELF, opts, limit_ms, 'confidential child');
}

async function main() {
  const o = JSON.parse(process.argv[2]);
  const { Pool } = await import('undici');
  const P = await import(join(o.code_root, 'packages/protocol/dist/seal/index.js'));
  const { useNodeSealCrypto } = await import(join(o.code_root, 'packages/protocol/dist/seal-node.js'));
  useNodeSealCrypto(); // a Node client: node:crypto under the seal, as the agent
  const u = new URL(o.url);
  const pool = new Pool(u.origin, { connections: o.connections ?? 1, pipelining: 1, keepAliveTimeout: 30_000 });
  const prefix = u.pathname;

  /** One request; resolves with the status and the number of (plaintext) body bytes read. */
  async function call(method, path, body) {
    if (o.public_key === null) {
      const res = await pool.request({ method, path: prefix + path, body: body ?? undefined });
      let n = 0;
      for await (const c of res.body) n += c.length;
      return { status: res.statusCode, bytes: n };
    }
    const req = await P.SealedHttpRequest.create(o.public_key, { method, path, body });
    const headers = {};
    for (const [k, v] of req.headers) headers[k] = v;
    const res = await pool.request({ method, path: prefix + path, headers, body: req.body ?? undefined });
    const opened = await req.openResponse({
      status: res.statusCode,
      headers: { get: (k) => res.headers[k] ?? null },
      body: res.body,
    });
    let n = 0;
    if (opened.body) for await (const c of opened.body) n += c.length;
    return { status: opened.sealed ? opened.status : -opened.status, bytes: n };
  }

  if (o.kind === 'rps') {
    const body = new Uint8Array(o.body_bytes ?? 100).fill(0x61);
    const lat = [];
    let failed = 0;
    const until = Date.now() + o.duration_s * 1000;
    const worker = async () => {
      while (Date.now() < until) {
        const t0 = performance.now();
        try {
          const r = await call('POST', '/sink', body);
          if (r.status >= 200 && r.status < 300) lat.push(performance.now() - t0);
          else failed++;
        } catch {
          failed++;
        }
      }
    };
    const t0 = performance.now();
    const cpu0 = process.cpuUsage();
    await Promise.all(Array.from({ length: o.connections }, worker));
    const secs = (performance.now() - t0) / 1000;
    const cpu = process.cpuUsage(cpu0);
    lat.sort((a, b) => a - b);
    await pool.close();
    return {
      rps: lat.length / secs,
      p50_ms: percentile(lat, 50),
      p99_ms: percentile(lat, 99),
      ok: lat.length,
      failed,
      // This process's CPU per answered request: the client's own sealing and opening, plus its HTTP.
      client_us: (cpu.user + cpu.system) / Math.max(1, lat.length),
    };
  }

  // transfer
  const t0 = performance.now();
  let r;
  if (o.dir === 'upload') {
    const chunk = new Uint8Array(MiB).fill(0x62);
    async function* source() {
      for (let sent = 0; sent < o.bytes; sent += MiB)
        yield sent + MiB <= o.bytes ? chunk : chunk.subarray(0, o.bytes - sent);
    }
    r = await call('POST', '/sink', source());
  } else {
    r = await call('GET', `/bytes/${o.bytes}`, null);
    if (r.bytes !== o.bytes) throw new Error(`downloaded ${r.bytes} of ${o.bytes} bytes`);
  }
  const ms = performance.now() - t0;
  await pool.close();
  return { status: r.status, ms, gbps: o.bytes / (ms / 1000) / 1e9 };
}

if (process.argv[1] === SELF) {
  main().then(
    (r) => console.log(JSON.stringify(r)),
    (err) => {
      console.error(err.stack ?? String(err));
      process.exit(1);
    },
  );
}
