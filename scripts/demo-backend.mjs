#!/usr/bin/env node
// The demo backend that `npm start` serves through the tunnel: a plain node:http server on 127.0.0.1.
//   any path   → 200 JSON {greeting, method, path, time}
//   /echo      → 200 with the request body streamed back unchanged (same Content-Type)
// Port: EE_DEMO_BACKEND_PORT (default 8080). Logs one line per request on stdout. SIGTERM/SIGINT stop it.
import http from 'node:http';

const PORT_TEXT = process.env.EE_DEMO_BACKEND_PORT || '8080';
if (!/^[0-9]+$/.test(PORT_TEXT) || Number(PORT_TEXT) < 1 || Number(PORT_TEXT) > 65535) {
  process.stderr.write(`demo-backend: EE_DEMO_BACKEND_PORT must be an integer from 1 to 65535, got "${PORT_TEXT}"\n`);
  process.exit(2);
}
const port = Number(PORT_TEXT);
const host = '127.0.0.1';

const server = http.createServer((req, res) => {
  const started = Date.now();
  const path = req.url ?? '/';
  res.on('finish', () => {
    process.stdout.write(`${req.method} ${path} ${res.statusCode} ${Date.now() - started} ms\n`);
  });

  if (path === '/echo' || path.startsWith('/echo?')) {
    const headers = {
      'content-type': req.headers['content-type'] ?? 'application/octet-stream',
      'cache-control': 'no-store',
    };
    if (req.headers['content-length'] !== undefined) headers['content-length'] = req.headers['content-length'];
    res.writeHead(200, headers);
    req.pipe(res); // streamed: any size, bounded memory
    return;
  }

  req.resume(); // other paths ignore the body
  req.on('end', () => {
    const body = JSON.stringify({
      greeting: 'hello from the easyenclave demo backend',
      method: req.method,
      path,
      time: new Date().toISOString(),
    });
    res.writeHead(200, {
      'content-type': 'application/json; charset=utf-8',
      'content-length': Buffer.byteLength(body) + 1,
      'cache-control': 'no-store',
    });
    res.end(`${body}\n`);
  });
});

server.on('error', (err) => {
  const why =
    err.code === 'EADDRINUSE'
      ? `port ${port} on ${host} is already in use (set EE_DEMO_BACKEND_PORT to use another)`
      : err.message;
  process.stderr.write(`demo-backend: ${why}\n`);
  process.exit(1);
});

server.listen(port, host, () => {
  process.stdout.write(`demo backend listening on http://${host}:${port}\n`);
});

let stopping = false;
function stop(signal) {
  if (stopping) process.exit(130);
  stopping = true;
  process.stdout.write(`${signal}: stopping\n`);
  server.close(() => process.exit(0));
  server.closeIdleConnections();
  // Keep-alive connections still busy after a moment are cut.
  setTimeout(() => server.closeAllConnections(), 2000).unref();
}
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
