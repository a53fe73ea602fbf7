// A real network for the sealed-HTTP tests: a control plane, an agent whose tunnel runs through a capturing
// TCP proxy (every byte the control plane sent to or received from the agent), a client-side capturing proxy
// in front of the control plane's API, and a backend that records what it received in plaintext.
import http from 'node:http';
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import { randomBytes } from 'node:crypto';
import { computeReportData, REPORT_DATA_DOMAINS } from '@easyenclave/attestation';
import { SealedHttpRequest, type HttpHeaderList, type OpenedResponse } from '@easyenclave/protocol/seal/index';
import { onCleanup, startAgent, startCp, waitRoutable } from '../helpers/network.js';
import type { Agent } from '@easyenclave/agent';

/** Bytes captured per proxy, capped so a bulk test cannot exhaust memory (canary tests move little). */
const MAX_CAPTURE_BYTES = 64 * 1024 * 1024;

export interface Capture {
  port: number;
  bytes(): Buffer;
  clear(): void;
}

/** A TCP proxy to 127.0.0.1:target that keeps a copy of the bytes in both directions. */
export async function captureProxy(target: number): Promise<Capture> {
  let chunks: Buffer[] = [];
  let size = 0;
  const keep = (d: Buffer) => {
    if (size + d.length <= MAX_CAPTURE_BYTES) {
      chunks.push(Buffer.from(d));
      size += d.length;
    }
  };
  const sockets = new Set<net.Socket>();
  const server = net.createServer((down) => {
    const up = net.connect(target, '127.0.0.1');
    for (const s of [down, up]) {
      sockets.add(s);
      s.on('close', () => sockets.delete(s));
      s.on('error', () => {
        down.destroy();
        up.destroy();
      });
    }
    down.on('data', keep);
    up.on('data', keep);
    down.pipe(up);
    up.pipe(down);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  onCleanup(
    () =>
      new Promise<void>((r) => {
        for (const s of sockets) s.destroy();
        server.close(() => r());
      }),
  );
  return {
    port: (server.address() as AddressInfo).port,
    bytes: () => Buffer.concat(chunks),
    clear: () => {
      chunks = [];
      size = 0;
    },
  };
}

export interface Seen {
  method: string;
  url: string;
  headers: http.IncomingHttpHeaders;
  body: Buffer;
  completed: boolean;
}

export interface TestBackend {
  url: string;
  seen: Seen[];
  /** Resolves the SSE route's second event. */
  releaseSse(): void;
  /** Requests whose body was aborted before it ended. */
  aborted: number;
}

/** POST /chat: JSON echo (SSE when the body has "stream":true: one event, then the rest once released);
 *  GET|HEAD /whoami: who asked (and a Set-Cookie); POST /sink: byte count; GET /bytes/N: N bytes. */
export async function startTestBackend(): Promise<TestBackend> {
  let release: () => void = () => {};
  let released = new Promise<void>((r) => (release = r));
  const b: TestBackend = {
    url: '',
    seen: [],
    releaseSse: () => release(),
    aborted: 0,
  };
  const server = http.createServer((req, res) => {
    const seen: Seen = {
      method: req.method!,
      url: req.url!,
      headers: req.headers,
      body: Buffer.alloc(0),
      completed: false,
    };
    b.seen.push(seen);
    const chunks: Buffer[] = [];
    let n = 0;
    req.on('data', (c: Buffer) => {
      n += c.length;
      if (!req.url!.startsWith('/sink')) chunks.push(c);
    });
    req.on('aborted', () => b.aborted++);
    req.on('end', () => {
      seen.completed = true;
      seen.body = Buffer.concat(chunks);
      const m = /^\/bytes\/(\d+)$/.exec(req.url!);
      if (m) {
        const total = Number(m[1]);
        res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': total });
        let sent = 0;
        const pump = () => {
          while (sent < total) {
            const k = Math.min(65_536, total - sent);
            const chunk = Buffer.alloc(k, sent & 0xff);
            sent += k;
            if (!res.write(chunk)) return void res.once('drain', pump);
          }
          res.end();
        };
        return pump();
      }
      if (req.url === '/sink') return json(res, 200, { body_bytes: n });
      if (req.url === '/whoami') {
        res.setHeader('set-cookie', `session=${req.headers['x-canary'] ?? 'none'}`);
        return json(
          res,
          200,
          { method: req.method, url: req.url, authorization: req.headers.authorization ?? null },
          req.method === 'HEAD',
        );
      }
      if (req.url === '/chat' && seen.body.includes('"stream":true')) {
        res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
        res.write(`data: first ${seen.body.toString('utf8')}\n\n`);
        void released.then(() => {
          res.write('data: second\n\n');
          res.end('data: [DONE]\n\n');
          released = new Promise<void>((r) => (release = r));
        });
        return;
      }
      json(res, req.url === '/chat' ? 200 : 404, {
        echo: seen.body.toString('utf8'),
        authorization: req.headers.authorization ?? null,
      });
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  b.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  onCleanup(
    () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  );
  return b;
}

function json(res: http.ServerResponse, status: number, body: unknown, head_only = false): void {
  const s = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(s) });
  res.end(head_only ? undefined : s);
}

export interface SealedNet {
  cp: { api_url: string };
  agent: Agent;
  backend: TestBackend;
  /** Client ↔ control plane bytes. */
  client: Capture;
  /** Control plane ↔ agent bytes (the tunnel). */
  tunnel: Capture;
  /** The agent's X25519 public key (hex), from the relayed attestation, its binding checked. */
  hpke_public_key: string;
  /** Base URL of the proxy route through the client capture: `${base}/v1/proxy/demo`. */
  app_url: string;
}

export async function startSealedNet(): Promise<SealedNet> {
  const cp = await startCp();
  const backend = await startTestBackend();
  const tunnel = await captureProxy(Number(new URL(cp.api_url).port));
  const agent = startAgent({ control_ws: `ws://127.0.0.1:${tunnel.port}/v1/tunnel`, backend_url: backend.url });
  await waitRoutable(cp);
  const client = await captureProxy(Number(new URL(cp.api_url).port));
  // The key a client seals to comes from the agent's evidence over the client's own nonce.
  const nonce = randomBytes(32);
  const res = await fetch(`${cp.api_url}/v1/apps/demo/attestation?nonce=${nonce.toString('hex')}`);
  const ev = (await res.json()) as {
    keyset: { hpke_public_key: string; receipt_public_key: string };
    report_data: string;
  };
  if (computeReportData(REPORT_DATA_DOMAINS.relay, nonce, ev.keyset).toString('hex') !== ev.report_data)
    throw new Error('keyset not bound');
  return {
    cp,
    agent,
    backend,
    client,
    tunnel,
    hpke_public_key: ev.keyset.hpke_public_key,
    app_url: `http://127.0.0.1:${client.port}/v1/proxy/demo`,
  };
}

export interface SealedCall {
  method: string;
  path: string;
  headers?: HttpHeaderList;
  body?: Uint8Array | ReadableStream<Uint8Array> | null;
}

/** Seals a request to `public_key`, sends it with fetch, opens the answer. */
export async function sealedFetch(app_url: string, public_key: string, c: SealedCall): Promise<OpenedResponse> {
  const req = await SealedHttpRequest.create(public_key, c);
  const headers = new Headers();
  for (const [k, v] of req.headers) headers.append(k, v);
  const res = await fetch(`${app_url}${c.path}`, {
    method: c.method,
    headers,
    body: req.body,
    duplex: 'half',
  } as RequestInit);
  return req.openResponse(res);
}

export async function readAll(body: ReadableStream<Uint8Array> | null): Promise<Buffer> {
  if (body === null) return Buffer.alloc(0);
  const parts: Buffer[] = [];
  for await (const c of body as unknown as AsyncIterable<Uint8Array>) parts.push(Buffer.from(c));
  return Buffer.concat(parts);
}
