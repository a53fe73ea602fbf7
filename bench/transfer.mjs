// Large transfers, in their own process(es), like the load generator:
//   import { runTransfers } from './transfer.mjs'  → { transfers: [{ dir, bytes, ms, gbps, ok, status, error }] }
// Options: { mode: 'download'|'upload', url, headers, bytes, parallel = 1, repeat = 1, until_ms (keep
// repeating until this epoch time, bounded by max_count), client: 'curl'|'node' (default: curl if present) }.
// curl (one process per transfer; C, so the client is never the bottleneck — on this machine the Node
// client topped out at about half of curl's rate against the bare backend):
//   download: curl -o /dev/null, bytes and time from -w '%{size_download} %{time_total}'
//   upload:   curl -X POST -T <file of N bytes> -H 'Expect:' (streamed, no 100-continue round trip)
// node (fallback, or `node bench/transfer.mjs '<json>'`): http.request in a child process; download counts
// the body's bytes, upload streams one reused 64 KiB buffer with backpressure.
// The /sink answers {"bytes": n}: an upload counts only if the backend got every byte. GB/s = 1e9 bytes/s.

import http from 'node:http';
import { spawn, spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { openSync, writeSync, closeSync } from 'node:fs';
import { join } from 'node:path';
import { tmpDir } from './procs.mjs';
import { runJsonChild } from './json-child.mjs';

const SELF = fileURLToPath(import.meta.url);
const CHUNK = Buffer.alloc(64 * 1024, 0x62);
const TRANSFER_TIMEOUT_MS = 60_000;

let curlOk = null;
export function haveCurl() {
  curlOk ??= spawnSync('curl', ['--version'], { timeout: 5000 }).status === 0;
  return curlOk;
}

const uploadFiles = new Map();
function uploadFile(bytes) {
  let f = uploadFiles.get(bytes);
  if (f) return f;
  f = join(tmpDir('ee-bench-upload-'), `body-${bytes}`);
  const fd = openSync(f, 'w');
  for (let off = 0; off < bytes; off += CHUNK.length) writeSync(fd, CHUNK, 0, Math.min(CHUNK.length, bytes - off));
  closeSync(fd);
  uploadFiles.set(bytes, f);
  return f;
}

function curlOnce(o) {
  return new Promise((resolve) => {
    const args = ['-s', '--max-time', String(TRANSFER_TIMEOUT_MS / 1000), '--noproxy', '*'];
    for (const [k, v] of Object.entries(o.headers ?? {})) args.push('-H', `${k}: ${v}`);
    if (o.mode === 'upload') {
      args.push(
        '-X',
        'POST',
        '-T',
        uploadFile(o.bytes),
        '-H',
        'Expect:',
        '-H',
        'content-type: application/octet-stream',
        '-w',
        '\n%{http_code} %{size_upload} %{time_total}',
        o.url,
      );
    } else {
      args.push('-o', '/dev/null', '-w', '%{http_code} %{size_download} %{time_total}', o.url);
    }
    const child = spawn('curl', args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d) => (out = (out + d).slice(-4096)));
    child.on('exit', (code) => {
      const lines = out.trim().split('\n');
      const [status, size, total] = lines.pop().split(' ').map(Number);
      const ms = total * 1000;
      let ok = code === 0 && status === 200 && size === o.bytes;
      let error =
        code !== 0
          ? `curl exit ${code}`
          : status !== 200
            ? `HTTP ${status}`
            : size !== o.bytes
              ? `moved ${size} of ${o.bytes}`
              : undefined;
      if (ok && o.mode === 'upload') {
        let got = -1;
        try {
          got = JSON.parse(lines.join('\n')).bytes;
        } catch {
          // not the sink's answer
        }
        if (got !== o.bytes) {
          ok = false;
          error = `sink got ${got}`;
        }
      }
      resolve({ dir: o.mode, bytes: size, ms, gbps: size / total / 1e9, ok, status, error });
    });
  });
}

async function curlTransfers(o) {
  const transfers = [];
  const max_count = o.max_count ?? 1000;
  const worker = async () => {
    for (let i = 0; i < (o.until_ms ? max_count : (o.repeat ?? 1)); i++) {
      if (o.until_ms && Date.now() >= o.until_ms) break;
      transfers.push(await curlOnce(o));
    }
  };
  await Promise.all(Array.from({ length: o.parallel ?? 1 }, worker));
  return { client: 'curl', transfers };
}

export function runTransfers(opts) {
  if ((opts.client ?? (haveCurl() ? 'curl' : 'node')) === 'curl') return curlTransfers(opts);
  const bound = opts.until_ms ? Math.max(0, opts.until_ms - Date.now()) + 70_000 : (opts.repeat ?? 1) * 70_000;
  return runJsonChild(SELF, opts, bound, 'transfer child');
}

function once(agent, o) {
  return new Promise((resolve) => {
    const u = new URL(o.url);
    const upload = o.mode === 'upload';
    const t0 = process.hrtime.bigint();
    let got = 0;
    let settled = false;
    const done = (r) => {
      if (settled) return;
      settled = true;
      const ms = Number(process.hrtime.bigint() - t0) / 1e6;
      const bytes = upload ? r.sent : got;
      resolve({ dir: o.mode, bytes, ms, gbps: bytes / (ms / 1000) / 1e9, ...r, sent: undefined });
    };
    const headers = { ...(o.headers ?? {}) };
    if (upload) {
      headers['content-type'] = 'application/octet-stream';
      headers['content-length'] = String(o.bytes);
    }
    const req = http.request(
      { host: u.hostname, port: u.port, path: u.pathname + u.search, method: upload ? 'POST' : 'GET', headers, agent },
      (res) => {
        const chunks = [];
        res.on('data', (c) => {
          got += c.length;
          if (upload && chunks.length < 16) chunks.push(c);
        });
        res.on('end', () => {
          if (upload) {
            let n = -1;
            try {
              n = JSON.parse(Buffer.concat(chunks).toString()).bytes;
            } catch {
              // not the sink's answer
            }
            done({
              ok: res.statusCode === 200 && n === o.bytes,
              status: res.statusCode,
              sent: n,
              error: n === o.bytes ? undefined : `sink got ${n}`,
            });
          } else {
            done({
              ok: res.statusCode === 200 && got === o.bytes,
              status: res.statusCode,
              error: got === o.bytes ? undefined : `got ${got} of ${o.bytes}`,
            });
          }
        });
        res.on('error', (e) => done({ ok: false, status: res.statusCode, sent: 0, error: e.code ?? e.message }));
      },
    );
    req.setTimeout(TRANSFER_TIMEOUT_MS, () => req.destroy(new Error('timeout')));
    req.on('error', (e) => done({ ok: false, status: 0, sent: 0, error: e.code ?? e.message }));
    if (!upload) return void req.end();
    let sent = 0;
    const pump = () => {
      while (sent < o.bytes) {
        const n = Math.min(CHUNK.length, o.bytes - sent);
        sent += n;
        if (!req.write(n === CHUNK.length ? CHUNK : CHUNK.subarray(0, n))) return void req.once('drain', pump);
      }
      req.end();
    };
    pump();
  });
}

async function main() {
  const o = JSON.parse(process.argv[2]);
  const agent = new http.Agent({ keepAlive: true, maxSockets: o.parallel ?? 1 });
  const transfers = [];
  const max_count = o.max_count ?? 1000;
  const worker = async () => {
    for (let i = 0; i < (o.until_ms ? max_count : (o.repeat ?? 1)); i++) {
      if (o.until_ms && Date.now() >= o.until_ms) break;
      transfers.push(await once(agent, o));
    }
  };
  await Promise.all(Array.from({ length: o.parallel ?? 1 }, worker));
  agent.destroy();
  process.stdout.write(JSON.stringify({ client: 'node', transfers }) + '\n', () => process.exit(0)); // exit even if a socket lingers
}

if (process.argv[1] === SELF) {
  main().catch((err) => {
    process.stderr.write(String(err?.stack ?? err) + '\n');
    process.exit(1);
  });
}
