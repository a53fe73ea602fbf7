#!/usr/bin/env node
// A small private API: it listens on loopback only and is reached solely through an easyenclave agent's
// outbound tunnel (no inbound port is exposed to the world).
//   GET  /api/private       → {"secret_of_the_day": ..., "served_by": "private-api"}
//   POST /api/notes         → stores the JSON body {text}, answers 201 {id, text}
//   GET  /api/notes         → {"notes": [...]}
// PORT (default 8081; 0 = any free port). Prints "listening <port>" once ready.
import http from 'node:http';

const notes = [];
const MAX_NOTE_BYTES = 4096;

const send = (res, status, body) => {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
  res.end(text);
};

const server = http.createServer((req, res) => {
  const path = (req.url ?? '/').split('?')[0];
  if (req.method === 'GET' && path === '/api/private')
    return send(res, 200, { secret_of_the_day: 'tdx-all-the-way-down', served_by: 'private-api' });
  if (req.method === 'GET' && path === '/api/notes') return send(res, 200, { notes });
  if (req.method === 'POST' && path === '/api/notes') {
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (c) => {
      body += c;
      if (body.length > MAX_NOTE_BYTES) req.destroy();
    });
    req.on('end', () => {
      let text;
      try {
        text = JSON.parse(body).text;
      } catch {
        return send(res, 400, { error: { code: 'bad_json', message: 'expected {"text": "..."}' } });
      }
      if (typeof text !== 'string')
        return send(res, 400, { error: { code: 'bad_note', message: 'text must be a string' } });
      const note = { id: notes.length + 1, text };
      notes.push(note);
      send(res, 201, note);
    });
    return;
  }
  send(res, 404, { error: { code: 'not_found', message: `no route for ${req.method} ${path}` } });
});

server.listen(Number(process.env.PORT ?? 8081), '127.0.0.1', () => {
  process.stdout.write(`listening ${server.address().port}\n`);
});
for (const sig of ['SIGTERM', 'SIGINT']) process.on(sig, () => server.close(() => process.exit(0)));
