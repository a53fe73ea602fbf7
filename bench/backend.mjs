// A minimal benchmark backend (node:http, keep-alive), run as its own process:
//   node bench/backend.mjs [port]     → prints one JSON line {"port": N} once listening
// Routes:
//   GET  /small     → a 100-byte text body
//   GET  /bytes/N   → N bytes, streamed in 64 KiB chunks from one preallocated buffer, with backpressure
//   POST /sink      → consumes the body (any size), answers {"bytes": n}
//   anything else   → 404
// The backend does as little work as possible so that it is never the bottleneck it is compared against.

import http from 'node:http';

const SMALL = Buffer.from('x'.repeat(99) + '\n'); // 100 bytes
const CHUNK = Buffer.alloc(64 * 1024, 0x61);
const MAX_BYTES = 64 * 1024 * 1024 * 1024; // 64 GiB: bounds /bytes/N

function streamBytes(res, total) {
  res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': total });
  let sent = 0;
  const pump = () => {
    while (sent < total) {
      const n = Math.min(CHUNK.length, total - sent);
      const ok = res.write(n === CHUNK.length ? CHUNK : CHUNK.subarray(0, n));
      sent += n;
      if (!ok) return void res.once('drain', pump);
    }
    res.end();
  };
  res.on('close', () => (sent = total)); // client went away: stop
  pump();
}

const server = http.createServer({ keepAliveTimeout: 65_000, requestTimeout: 0 }, (req, res) => {
  const url = req.url ?? '/';
  if (url === '/small') {
    req.resume();
    res.writeHead(200, { 'content-type': 'text/plain', 'content-length': SMALL.length });
    res.end(SMALL);
    return;
  }
  if (url.startsWith('/bytes/')) {
    req.resume();
    const n = Number(url.slice('/bytes/'.length));
    if (!Number.isSafeInteger(n) || n < 0 || n > MAX_BYTES) {
      res.writeHead(400).end('bad size\n');
      return;
    }
    streamBytes(res, n);
    return;
  }
  if (url === '/sink') {
    let n = 0;
    req.on('data', (c) => (n += c.length));
    req.on('end', () => {
      const body = JSON.stringify({ bytes: n });
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
      res.end(body);
    });
    return;
  }
  req.resume();
  res.writeHead(404, { 'content-length': 10 }).end('not found\n');
});

server.listen(Number(process.argv[2] ?? 0), '127.0.0.1', () => {
  process.stdout.write(JSON.stringify({ port: server.address().port }) + '\n');
});
const stop = () => {
  server.closeAllConnections();
  server.close(() => process.exit(0));
  setTimeout(() => process.exit(0), 1000).unref();
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
