// The sealed-traffic load generator (`npm run bench -- confidential`), in its own process:
//   import { runConfidential } from './confidential.mjs'
//   node bench/confidential.mjs '<json>' → one JSON line
// Options: { code_root, url (…/v1/proxy/demo), public_key (hex, or null for plain), kind: 'rps' | 'transfer' }
//   rps:      { connections, duration_s, body_bytes, warm_s?, cpu_pids? }: POST /sink with a small body, one at
//             a time per connection over an undici keep-alive pool, after warm_s of the same; req/s and
//             latency percentiles over 2xx answers, CPU per request of this process and of cpu_pids.
//   transfer: { dir: 'upload' | 'download', bytes }: one body of `bytes` streamed to /sink or from /bytes/N.
//   floor:    { iterations, body_bytes }: no I/O; the CPU of the cryptography one sealed small POST needs on
//             each side, through the same seal code the client and agent run (see cryptoFloor below).
// Plain and sealed requests go through the same client code; sealed ones are sealed to `public_key` and
// their responses opened (authenticated) before they count, so the client's sealing cost is measured too.

import { fileURLToPath } from 'node:url';
import { join } from 'node:path';
import { runJsonChild } from './json-child.mjs';
import { percentile } from './load.mjs';
import { cpuMs } from './procs.mjs';

const SELF = fileURLToPath(import.meta.url);
const MiB = 1024 * 1024;

export function runConfidential(opts) {
  const limit_ms = ((opts.duration_s ?? 0) + (opts.warm_s ?? 0) + 120) * 1000;
  return runJsonChild(SELF, opts, limit_ms, 'confidential child');
}

async function main() {
  const o = JSON.parse(process.argv[2]);
  const { Pool } = await import('undici');
  const P = await import(join(o.code_root, 'packages/protocol/dist/seal/index.js'));
  const { useNodeSealCrypto } = await import(join(o.code_root, 'packages/protocol/dist/seal-node.js'));
  useNodeSealCrypto(); // a Node client: node:crypto under the seal, as the agent
  if (o.kind === 'floor') return cryptoFloor(P, o);
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
    // Warm-up in this process (`warm_s`), then the measured window: the client's JIT and first-call costs
    // stay out of its CPU per request, as the long-running agent's and control plane's do.
    const warm_until = Date.now() + (o.warm_s ?? 0) * 1000;
    const until = warm_until + o.duration_s * 1000;
    let measuring = false;
    const worker = async () => {
      while (Date.now() < until) {
        const t0 = performance.now();
        try {
          const r = await call('POST', '/sink', body);
          if (!measuring) continue;
          if (r.status >= 200 && r.status < 300) lat.push(performance.now() - t0);
          else failed++;
        } catch {
          if (measuring) failed++;
        }
      }
    };
    const pids = o.cpu_pids ?? [];
    const pidMs = (pid) => {
      const c = cpuMs(pid);
      return c.u + c.s;
    };
    let t0 = 0;
    let cpu0 = null;
    let pid0 = [];
    const start = () => {
      measuring = true;
      t0 = performance.now();
      cpu0 = process.cpuUsage();
      pid0 = pids.map(pidMs);
    };
    const started = o.warm_s ? setTimeout(start, warm_until - Date.now()) : (start(), null);
    await Promise.all(Array.from({ length: o.connections }, worker));
    clearTimeout(started);
    const secs = (performance.now() - t0) / 1000;
    const cpu = process.cpuUsage(cpu0);
    const pid_us = pids.map((pid, i) => ((pidMs(pid) - pid0[i]) * 1000) / Math.max(1, lat.length));
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
      // The same for each of `cpu_pids` (the agent and the control plane) over the same window.
      pid_us,
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

/**
 * The cryptographic floor of one sealed small POST, in a tight loop in this process (process.cpuUsage, no
 * I/O), each side's calls as its real code makes them with node:crypto under @hpke/core:
 *   client: MessageSealer.request (HPKE SetupBaseS to the agent's key, the request key export) and the
 *           meta and body frames, as SealedHttpRequest.create; then the response key and its three frames
 *           (meta, body, FINAL), as SealedHttpRequest.openResponse.
 *   agent:  MessageOpener.request (SetupBaseR with its imported private key), the frames; the response
 *           sealer's key and its frames, as SealedExchange (start, write, end).
 * The bench's requests carry no reservation: no receipt is signed by the agent or checked by the control
 * plane, so neither is part of this floor. Each phase runs `iterations` times as one batch.
 * `primitives`: the bare node:crypto operations underneath (one X25519 key pair and two DH, HMAC-SHA256
 * and AES-256-GCM calls as counted in this code), without @hpke/core's schedule and the message layer.
 */
async function cryptoFloor(P, o) {
  const C = await import('node:crypto');
  const n = o.iterations ?? 2000;
  const pair = C.generateKeyPairSync('x25519');
  const agentKey = await P.recipientKeyFromJwk(pair.privateKey.export({ format: 'jwk' }));
  const pkHex = P.toHex(agentKey.publicKey);
  const aad = P.requestAad('POST', '/sink');
  const reqMeta = P.encodeHttpMeta({ headers: [] });
  const body = new Uint8Array(o.body_bytes ?? 100).fill(0x61);
  const answer = Buffer.from(JSON.stringify({ bytes: body.length }));
  const resMeta = P.encodeHttpMeta({
    status: 200,
    headers: [
      ['content-type', 'application/json'],
      ['date', new Date().toUTCString()],
      ['connection', 'keep-alive'],
      ['keep-alive', 'timeout=5'],
    ],
  });
  const cpuUs = (c0) => {
    const c = process.cpuUsage(c0);
    return (c.user + c.system) / n;
  };
  async function clientSeal() {
    const s = await P.MessageSealer.request(pkHex, { aad, meta: reqMeta });
    return { exporter: s.exporter, bytes: P.concatBytes(await s.end(body)) };
  }
  async function agent(reqBytes) {
    const op = P.MessageOpener.request(agentKey, { aad });
    await op.push(reqBytes);
    op.end();
    const s = await P.MessageSealer.response(op.exporter, { meta: resMeta });
    return P.concatBytes([...(await s.start()), ...(await s.write(answer)), ...(await s.end())]);
  }
  async function clientOpen(exporter, resBytes) {
    const op = P.MessageOpener.response(exporter);
    const out = await op.push(resBytes);
    op.end();
    if (op.meta === null || out.length !== 1) throw new Error('the response did not open');
  }
  async function round(count) {
    const reqs = [];
    let c0 = process.cpuUsage();
    for (let i = 0; i < count; i++) reqs.push(await clientSeal());
    const seal_us = cpuUs(c0);
    const res = [];
    c0 = process.cpuUsage();
    for (let i = 0; i < count; i++) res.push(await agent(reqs[i].bytes));
    const agent_us = cpuUs(c0);
    c0 = process.cpuUsage();
    for (let i = 0; i < count; i++) await clientOpen(reqs[i].exporter, res[i]);
    const open_us = cpuUs(c0);
    return { client_us: seal_us + open_us, agent_us };
  }
  await round(Math.min(n, 500)); // warm-up (JIT, key caches)
  const r = await round(n);
  // The primitives alone: per request 1 key generation and 2 X25519 DH, 25 HMAC-SHA256, 6 AES-256-GCM frames.
  const HMACS = 25;
  const FRAMES = 6;
  const aesKey = C.randomBytes(32);
  const iv = C.randomBytes(12);
  const hmacKey = C.randomBytes(32);
  const c0 = process.cpuUsage();
  for (let i = 0; i < n; i++) {
    const e = C.generateKeyPairSync('x25519');
    C.diffieHellman({ privateKey: e.privateKey, publicKey: pair.publicKey });
    C.diffieHellman({ privateKey: pair.privateKey, publicKey: e.publicKey });
    for (let h = 0; h < HMACS; h++) C.createHmac('sha256', hmacKey).update(iv).digest();
    for (let f = 0; f < FRAMES; f++) {
      const g = C.createCipheriv('aes-256-gcm', aesKey, iv);
      g.update(body);
      g.final();
      g.getAuthTag();
    }
  }
  const primitives_us = cpuUs(c0);
  return { iterations: n, client_us: r.client_us, agent_us: r.agent_us, primitives_us };
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
