// The operations port of the agent and the launcher: GET /metrics (Prometheus text) and GET /ready (200 when the
// process can do its work, 503 with the reason when not), as cloudflared serves them. Off unless a port is
// configured; meant for a loopback address (the default bind), since neither endpoint is authenticated. A plain
// node:http server: two read-only routes do not justify a framework in these small processes.
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Registry } from 'prom-client';

/** The default bind: reachable from the machine only. */
export const OPS_DEFAULT_BIND = '127.0.0.1';
/** Longest time a scrape may take to be answered before the socket is closed. */
export const OPS_REQUEST_TIMEOUT_MS = 10_000;

export type Readiness = { ready: true } | { ready: false; reason: string };

export interface OpsServerOptions {
  readonly bind: string;
  /** 0 = any free port (tests). */
  readonly port: number;
  readonly registry: Registry;
  readonly readiness: () => Readiness;
}

export interface OpsServer {
  readonly url: string;
  close(): Promise<void>;
}

export async function startOpsServer(o: OpsServerOptions): Promise<OpsServer> {
  const server: Server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { allow: 'GET, HEAD', 'content-type': 'text/plain' }).end('method not allowed\n');
      return;
    }
    if (path === '/ready') {
      const r = o.readiness();
      res.writeHead(r.ready ? 200 : 503, { 'content-type': 'application/json', 'cache-control': 'no-store' });
      res.end(JSON.stringify(r.ready ? { ready: true } : { ready: false, reason: r.reason }));
      return;
    }
    if (path === '/metrics') {
      o.registry.metrics().then(
        (text) => res.writeHead(200, { 'content-type': o.registry.contentType }).end(text),
        () => res.writeHead(500, { 'content-type': 'text/plain' }).end('metrics unavailable\n'),
      );
      return;
    }
    res.writeHead(404, { 'content-type': 'text/plain' }).end('not found\n');
  });
  server.requestTimeout = OPS_REQUEST_TIMEOUT_MS;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(o.port, o.bind, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const { port } = server.address() as AddressInfo;
  const host = o.bind.includes(':') ? `[${o.bind}]` : o.bind;
  return {
    url: `http://${host}:${port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
