// The "one Node hop" reference target: a minimal reverse proxy, node:http server in front of an undici Pool
// (keep-alive, pipelining 1, 128 connections), run as its own process:
//   node bench/node-proxy.mjs <backend_url> [port]   → prints one JSON line {"port": N} once listening
// It streams bodies both ways with backpressure (the request's IncomingMessage is the dispatch body; the
// response pauses undici while res.write returns false, resumes on 'drain'), drops hop-by-hop headers, and
// answers 502 if the backend fails before the response head. Nothing else: no tunnel, no auth, no JSON heads.
// It is the floor for what one Node HTTP hop costs on this machine, next to the direct backend and nginx.

import http from 'node:http';
import { Pool } from 'undici';

const backendUrl = process.argv[2];
if (!backendUrl) {
  process.stderr.write('usage: node bench/node-proxy.mjs <backend_url> [port]\n');
  process.exit(2);
}
const pool = new Pool(new URL(backendUrl).origin, {
  connections: 128,
  pipelining: 1,
  keepAliveTimeout: 30_000,
  connect: { timeout: 5_000 },
});

// RFC 9110 hop-by-hop headers (the same list as the tunnel's), plus those a Connection header names.
const HOP_BY_HOP = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'transfer-encoding',
  'te',
  'trailer',
  'upgrade',
  'proxy-authenticate',
  'proxy-authorization',
]);
// Not passed to undici: host (undici sets the backend's own) and expect (undici does not support it; Node's
// server already answered 100-continue).
const DROP_REQUEST = new Set([...HOP_BY_HOP, 'host', 'expect']);

/** Flat [k, v, k, v, …] without hop-by-hop headers or those named in Connection. */
function filterRaw(raw, drop) {
  let named = null;
  for (let i = 0; i < raw.length; i += 2) {
    if (String(raw[i]).toLowerCase() === 'connection')
      for (const t of String(raw[i + 1]).split(',')) (named ??= new Set()).add(t.trim().toLowerCase());
  }
  const out = [];
  for (let i = 0; i + 1 < raw.length; i += 2) {
    const k = typeof raw[i] === 'string' ? raw[i] : raw[i].toString('latin1');
    const lower = k.toLowerCase();
    if (drop.has(lower) || named?.has(lower)) continue;
    out.push(k, typeof raw[i + 1] === 'string' ? raw[i + 1] : raw[i + 1].toString('latin1'));
  }
  return out;
}

const server = http.createServer({ keepAliveTimeout: 65_000, requestTimeout: 0 }, (req, res) => {
  const hasBody =
    req.headers['content-length'] !== undefined
      ? req.headers['content-length'] !== '0'
      : req.headers['transfer-encoding'] !== undefined;
  if (!hasBody) req.resume();
  let controller = null;
  let waitingDrain = false;
  const onDrain = () => {
    waitingDrain = false;
    controller?.resume();
  };
  // The client went away before the response ended: stop the backend request.
  res.on('close', () => {
    if (!res.writableFinished) controller?.abort(new Error('client closed'));
  });
  pool.dispatch(
    {
      method: req.method,
      path: req.url,
      headers: filterRaw(req.rawHeaders, DROP_REQUEST),
      body: hasBody ? req : null,
      headersTimeout: 0,
      bodyTimeout: 300_000,
    },
    {
      onRequestStart(c) {
        controller = c;
      },
      onResponseStart(c, status, headers, statusMessage) {
        res.writeHead(
          status,
          statusMessage || undefined,
          filterRaw(
            c.rawHeaders ??
              Object.entries(headers).flatMap(([k, v]) => (Array.isArray(v) ? v.flatMap((x) => [k, x]) : [k, v])),
            HOP_BY_HOP,
          ),
        );
      },
      onResponseData(c, chunk) {
        if (!res.write(chunk) && !waitingDrain) {
          waitingDrain = true;
          c.pause();
          res.once('drain', onDrain);
        }
      },
      onResponseEnd() {
        res.end();
      },
      onResponseError(_c, err) {
        if (!res.headersSent) {
          const body = `bad gateway: ${err.code ?? err.message}\n`;
          res.writeHead(502, { 'content-type': 'text/plain', 'content-length': Buffer.byteLength(body) }).end(body);
        } else {
          res.destroy(err);
        }
      },
    },
  );
});

server.listen(Number(process.argv[3] ?? 0), '127.0.0.1', () => {
  process.stdout.write(JSON.stringify({ port: server.address().port }) + '\n');
});
const stop = () => {
  server.closeAllConnections();
  server.close(() => process.exit(0));
  pool.destroy().catch(() => {});
  setTimeout(() => process.exit(0), 1000).unref();
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
