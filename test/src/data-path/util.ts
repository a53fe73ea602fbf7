// Shared helpers of the data-path suites: an HTTP client with full control over the request (Host header,
// hop-by-hop headers, chunked bodies), the two public entry points of the control plane, and extra backend
// routes layered over `startBackend` without changing it.

import http from 'node:http';
import { createHash } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import type { Duplex } from 'node:stream';
import assert from 'node:assert/strict';
import { WebSocketServer, type WebSocket } from 'ws';
import type { Backend } from '../helpers/network.js';

/** A way into the control plane's proxy: `/v1/proxy/demo/...` on the API port, or `Host: demo.app.test`. */
export interface Entry {
  name: 'api-path' | 'host';
  /** Base URL to dial (http://127.0.0.1:port). */
  base: string;
  /** What to put before the app path. */
  prefix: string;
  /** Host header to send (undefined: Node's default, the address dialled). */
  host: string | undefined;
  /** The X-Forwarded-Host the backend must see. */
  forwarded_host: string;
}

export function entries(cp: { api_url: string; proxy_url: string }, app = 'demo'): Entry[] {
  const api = new URL(cp.api_url);
  return [
    { name: 'api-path', base: cp.api_url, prefix: `/v1/proxy/${app}`, host: undefined, forwarded_host: api.host },
    { name: 'host', base: cp.proxy_url, prefix: '', host: `${app}.app.test`, forwarded_host: `${app}.app.test` },
  ];
}

export interface Reply {
  status: number;
  headers: http.IncomingHttpHeaders;
  rawHeaders: string[];
  body: Buffer;
  json<T = any>(): T;
}

export interface CallOptions {
  method?: string;
  headers?: Record<string, string | string[]>;
  /** A whole body (sent with Content-Length unless `chunked`), or chunks written one by one (chunked). */
  body?: Buffer | string | Buffer[];
  agent?: http.Agent | false;
}

const noKeepAlive = new http.Agent({ keepAlive: false, maxSockets: Infinity });

/** One HTTP request with http.request; the whole response body is collected. */
export function call(base: string, path: string, opts: CallOptions = {}): Promise<Reply> {
  const u = new URL(base);
  return new Promise<Reply>((resolve, reject) => {
    const headers: Record<string, string | string[]> = { ...(opts.headers ?? {}) };
    const body = opts.body;
    if (body !== undefined && !Array.isArray(body)) headers['content-length'] = String(Buffer.byteLength(body));
    const req = http.request(
      { host: u.hostname, port: u.port, method: opts.method ?? 'GET', path, headers, agent: opts.agent ?? noKeepAlive },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('error', reject);
        res.on('end', () => {
          const buf = Buffer.concat(chunks);
          resolve({
            status: res.statusCode!,
            headers: res.headers,
            rawHeaders: res.rawHeaders,
            body: buf,
            json: () => JSON.parse(buf.toString('utf8')),
          });
        });
      },
    );
    req.on('error', reject);
    if (Array.isArray(body)) {
      for (const c of body) req.write(c);
      req.end();
    } else {
      req.end(body);
    }
  });
}

/** Calls `path` (an app path such as `/echo?x=1`) through an entry point. */
export function via(e: Entry, path: string, opts: CallOptions = {}): Promise<Reply> {
  const headers = { ...(opts.headers ?? {}) };
  if (e.host !== undefined && !Object.keys(headers).some((k) => k.toLowerCase() === 'host')) headers['host'] = e.host;
  return call(e.base, e.prefix + path, { ...opts, headers });
}

/** Asserts the one error shape: JSON `{error:{code,message}}` with the given status (and code, if given). */
export function assertApiError(
  r: Reply,
  status: number,
  code?: string | RegExp,
  what = '',
): { code: string; message: string } {
  const text = r.body.toString('utf8');
  assert.equal(r.status, status, `${what}: expected HTTP ${status}, got ${r.status}: ${text}`);
  assert.match(String(r.headers['content-type']), /^application\/json/, `${what}: error content-type`);
  let parsed: any;
  assert.doesNotThrow(() => (parsed = JSON.parse(text)), `${what}: error body is not JSON: ${text}`);
  assert.equal(typeof parsed?.error, 'object', `${what}: no "error" object in ${text}`);
  assert.equal(typeof parsed.error.code, 'string', `${what}: error.code must be a string in ${text}`);
  assert.equal(typeof parsed.error.message, 'string', `${what}: error.message must be a string in ${text}`);
  assert.ok(parsed.error.message.length > 0, `${what}: empty error.message`);
  if (typeof code === 'string') assert.equal(parsed.error.code, code, `${what}: error code in ${text}`);
  else if (code) assert.match(parsed.error.code, code, `${what}: error code in ${text}`);
  return parsed.error;
}

export const sha256 = (b: Buffer | string) => createHash('sha256').update(b).digest('hex');

// ---------- Extra backend routes ----------

export type ExtraHandler = (req: http.IncomingMessage, res: http.ServerResponse) => boolean;
export type ExtraUpgrade = (req: http.IncomingMessage, socket: Duplex, head: Buffer) => boolean;

/** Puts extra routes in front of a `startBackend` backend: a handler returning true took the request (or the
 *  upgrade); otherwise the backend's own routes run as before. */
export function extendBackend(b: Backend, extra: { request?: ExtraHandler; upgrade?: ExtraUpgrade }): void {
  if (extra.request) {
    const own = b.server.listeners('request') as Array<(req: http.IncomingMessage, res: http.ServerResponse) => void>;
    b.server.removeAllListeners('request');
    b.server.on('request', (req: http.IncomingMessage, res: http.ServerResponse) => {
      if (extra.request!(req, res)) return;
      for (const l of own) l(req, res);
    });
  }
  if (extra.upgrade) {
    const own = b.server.listeners('upgrade') as Array<
      (req: http.IncomingMessage, socket: Duplex, head: Buffer) => void
    >;
    b.server.removeAllListeners('upgrade');
    b.server.on('upgrade', (req: http.IncomingMessage, socket: Duplex, head: Buffer) => {
      if (extra.upgrade!(req, socket, head)) return;
      for (const l of own) l(req, socket, head);
    });
  }
}

/** Routes for status codes and response headers:
 *  /status/N      → status N, headers x-backend: yes, two set-cookie, cache-control, a text body (none for 204/304)
 *  /die           → the backend drops the connection without answering (counts `died`) */
export function statusRoutes(b: Backend): { died: () => number } {
  let died = 0;
  extendBackend(b, {
    request: (req, res) => {
      const url = req.url ?? '/';
      const m = /^\/status\/(\d{3})/.exec(url);
      if (m) {
        const status = Number(m[1]);
        req.resume();
        req.on('end', () => {
          const body = status === 204 || status === 304 ? '' : `status ${status} body`;
          const raw = [
            'X-Backend',
            'yes',
            'Set-Cookie',
            'a=1; Path=/',
            'Set-Cookie',
            'b=2; Path=/',
            'Cache-Control',
            'max-age=7',
          ];
          if (body)
            raw.push('Content-Type', 'text/plain; charset=utf-8', 'Content-Length', String(Buffer.byteLength(body)));
          res.writeHead(status, raw);
          res.end(body);
        });
        return true;
      }
      if (url.startsWith('/die')) {
        died++;
        req.socket.destroy();
        return true;
      }
      return false;
    },
  });
  return { died: () => died };
}

/** WebSocket routes the test can observe: `/held...` is an echo server whose server-side sockets are handed to
 *  the test (to close from the server side); `/refuse...` answers the upgrade with an ordinary 403. */
export function wsRoutes(b: Backend): {
  held: WebSocket[];
  requests: http.IncomingMessage[];
  nextHeld(): Promise<WebSocket>;
} {
  const wss = new WebSocketServer({ noServer: true, perMessageDeflate: false });
  const held: WebSocket[] = [];
  const requests: http.IncomingMessage[] = [];
  const waiting: Array<(ws: WebSocket) => void> = [];
  extendBackend(b, {
    upgrade: (req, socket, head) => {
      const url = req.url ?? '/';
      if (url.startsWith('/refuse')) {
        const body = JSON.stringify({ refused: true, url });
        socket.end(
          `HTTP/1.1 403 Forbidden\r\nContent-Type: application/json\r\nX-Refused: yes\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
        );
        return true;
      }
      if (url.startsWith('/held')) {
        wss.handleUpgrade(req, socket, head, (ws) => {
          ws.on('message', (data, isBinary) => ws.send(data, { binary: isBinary }));
          held.push(ws);
          requests.push(req);
          const w = waiting.shift();
          if (w) w(ws);
        });
        return true;
      }
      return false;
    },
  });
  return {
    held,
    requests,
    nextHeld: () => new Promise<WebSocket>((r) => waiting.push(r)),
  };
}

/** Resets a process's peak RSS (VmHWM) to its current RSS, so the next peak belongs to the next phase. */
export function resetPeakRss(pid: number): void {
  writeFileSync(`/proc/${pid}/clear_refs`, '5');
}

/** Resolves with the value of `p`, or rejects naming `what` once `ms` pass (a stated deadline, not a benchmark). */
export function deadline<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let t: NodeJS.Timeout;
  return Promise.race([
    p.finally(() => clearTimeout(t)),
    new Promise<never>((_, reject) => {
      t = setTimeout(() => reject(new Error(`${what}: not done within ${ms} ms`)), ms);
    }),
  ]);
}
