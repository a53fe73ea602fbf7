// A request-level load generator for the graceful-restart benchmark, in its own process:
//   import { runHttpLoad } from './http-load.mjs'
//   node bench/http-load.mjs '<json>' → one JSON line
// Options: { targets: [{ label, url, headers, connections }], duration_s, timeout_ms = 10000,
//            error_pause_ms = 10 }
// Each connection is a worker that sends one GET at a time over a keep-alive http.Agent (maxSockets =
// connections) until the deadline, and records every request's outcome. Unlike autocannon (which, on a
// closed connection, silently re-sends and, on a refused connect, reconnects in a tight loop counting each
// attempt as an error), every failure here is exactly one request a client saw fail, with its time, kind,
// and whether it went out on a reused keep-alive socket (the case HTTP clients conventionally retry).
// After a failure a worker pauses error_pause_ms so a dead port does not turn into a busy loop.

import http from 'node:http';
import { fileURLToPath } from 'node:url';
import { runJsonChild } from './json-child.mjs';

const SELF = fileURLToPath(import.meta.url);

export function runHttpLoad(opts) {
  return runJsonChild(SELF, opts, ((opts.duration_s ?? 5) + 40) * 1000, 'http-load child');
}

function request(agent, u, headers, timeout_ms) {
  return new Promise((resolve) => {
    const t0 = Date.now();
    let reused = false;
    let settled = false;
    const done = (r) => {
      if (!settled) {
        settled = true;
        resolve({ t0, t1: Date.now(), reused, ...r });
      }
    };
    const req = http.request(
      { host: u.hostname, port: u.port, path: u.pathname + u.search, method: 'GET', headers, agent },
      (res) => {
        const chunks = [];
        let n = 0;
        res.on('data', (c) => {
          n += c.length;
          if (n <= 4096) chunks.push(c);
        });
        res.on('end', () => {
          const body = res.statusCode >= 400 ? Buffer.concat(chunks).toString().slice(0, 300) : undefined;
          done({ status: res.statusCode, body });
        });
        res.on('error', (e) => done({ status: res.statusCode, error: `response ${e.code ?? e.message}` }));
        res.on('aborted', () => done({ status: res.statusCode, error: 'response aborted' }));
      },
    );
    req.on('socket', () => (reused = req.reusedSocket));
    req.setTimeout(timeout_ms, () => req.destroy(Object.assign(new Error('timeout'), { code: 'TIMEOUT' })));
    req.on('error', (e) => done({ status: 0, error: e.code ?? e.message }));
    req.end();
  });
}

async function main() {
  const o = JSON.parse(process.argv[2]);
  const start = Date.now();
  const deadline = start + (o.duration_s ?? 5) * 1000;
  const timeout_ms = o.timeout_ms ?? 10_000;
  const pause = o.error_pause_ms ?? 10;
  const perTarget = {};
  const failures = [];
  const MAX_FAILURE_LOG = 20_000;
  const workers = [];
  for (const t of o.targets) {
    const u = new URL(t.url);
    const agent = new http.Agent({ keepAlive: true, maxSockets: t.connections });
    const s = (perTarget[t.label] = { ok: 0, failed: 0, kinds: {}, first_fail_ms: null, last_fail_ms: null });
    for (let i = 0; i < t.connections; i++) {
      workers.push(
        (async () => {
          for (let k = 0; k < 10_000_000 && Date.now() < deadline; k++) {
            const r = await request(agent, u, t.headers ?? {}, timeout_ms);
            if (!r.error && r.status >= 200 && r.status < 300) {
              s.ok++;
              continue;
            }
            s.failed++;
            let code = '';
            if (r.body) {
              try {
                code = JSON.parse(r.body)?.error?.code ?? '';
              } catch {
                code = r.body.slice(0, 60);
              }
            }
            const kind = r.error
              ? `${r.error}${r.reused ? ' (reused socket)' : ' (new socket)'}`
              : `HTTP ${r.status}${code ? ` ${code}` : ''}`;
            s.kinds[kind] = (s.kinds[kind] ?? 0) + 1;
            s.first_fail_ms ??= r.t0;
            s.last_fail_ms = r.t1;
            if (failures.length < MAX_FAILURE_LOG) failures.push({ target: t.label, t0: r.t0, t1: r.t1, kind });
            await new Promise((res) => setTimeout(res, pause));
          }
        })(),
      );
    }
  }
  await Promise.all(workers);
  process.stdout.write(
    JSON.stringify({ start_ms: start, end_ms: Date.now(), targets: perTarget, failures }) + '\n',
    () => process.exit(0),
  ); // exit even if a socket lingers
}

if (process.argv[1] === SELF) {
  main().catch((err) => {
    process.stderr.write(String(err?.stack ?? err) + '\n');
    process.exit(1);
  });
}
