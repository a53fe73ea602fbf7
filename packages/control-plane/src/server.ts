// Assembles the control plane: store, verifier, tunnel hub, the API server (fastify for JSON routes, raw
// handlers for the proxy and the tunnel) and the host-routed app proxy. Returns a handle for graceful shutdown.

import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import Fastify from 'fastify';
import { pino, type Logger } from 'pino';
import { EvidenceRouter, SandboxVerifier, type EvidenceVerifier } from '@easyenclave/attestation';
import type { ControlPlaneConfig } from './config.js';
import { systemClock, type Clock } from './clock.js';
import { openStore, type Store } from './store/index.js';
import { TunnelHub } from './tunnel/hub.js';
import { forward } from './proxy/forward.js';
import { forwardUpgrade } from './proxy/upgrade.js';
import { appFromHost, parseProxyPath, PROXY_PREFIX } from './http/proxy-routing.js';
import { routes } from './http/routes.js';
import { rawErrorResponse, sendRawError } from './http-errors.js';
import { ProxyMetrics } from './metrics.js';

export interface ControlPlaneOptions {
  clock?: Clock;
  verifier?: EvidenceVerifier;
  logger?: Logger;
}

export interface ControlPlane {
  readonly api_url: string;
  readonly proxy_url: string;
  readonly api_port: number;
  readonly proxy_port: number;
  readonly hub: TunnelHub;
  readonly store: Store;
  /** Graceful: stop accepting, GOAWAY to agents, let in-flight requests finish (bounded), then close. */
  shutdown(drain_timeout_ms?: number): Promise<void>;
}

function listen(server: http.Server, port: number, host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve((server.address() as AddressInfo).port);
    });
  });
}

function urlHost(bind: string): string {
  const h = bind === '0.0.0.0' || bind === '::' ? '127.0.0.1' : bind;
  return h.includes(':') ? `[${h}]` : h;
}

export async function startControlPlane(config: ControlPlaneConfig, opts: ControlPlaneOptions = {}): Promise<ControlPlane> {
  const log = opts.logger ?? pino({ level: config.log_level, base: { svc: 'control-plane' } });
  const clock = opts.clock ?? systemClock;
  const store = await openStore(config.database_url ? { database_url: config.database_url } : { db_path: config.db_path });
  const verifier = opts.verifier ?? new EvidenceRouter({ sandbox: new SandboxVerifier() });
  const hub = new TunnelHub({ store, verifier, clock, config, log });
  await hub.start();
  const metrics = new ProxyMetrics(true);
  const started_at_ms = Date.now();

  const forwarded = (req: IncomingMessage) => ((req.socket as { encrypted?: boolean }).encrypted ? 'https' : 'http');
  const serverOptions: http.ServerOptions = { maxHeaderSize: config.max_header_bytes, keepAliveTimeout: 65_000, requestTimeout: 0 };

  const proxyViaPath = (req: IncomingMessage, res: ServerResponse) => {
    const target = parseProxyPath(req.url!);
    if (!target) return sendRawError(res, { status: 404, code: 'unknown_app', message: 'expected /v1/proxy/{app}/{path}' });
    void forward(hub, req, res, { ...target, forwarded_host: req.headers.host, forwarded_proto: forwarded(req) }, metrics).catch((err) => {
      log.error({ err }, 'proxy failure');
      sendRawError(res, { status: 502, code: 'proxy_error', message: 'internal proxy error' });
    });
  };

  const fastify = Fastify({
    logger: false,
    bodyLimit: 1024 * 1024,
    serverFactory: (handler) => {
      const server = http.createServer(serverOptions, (req, res) => {
        if (req.url!.startsWith(PROXY_PREFIX)) return proxyViaPath(req, res);
        handler(req, res);
      });
      server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
        const url = req.url ?? '/';
        if (url === '/v1/tunnel' || url.startsWith('/v1/tunnel?')) return hub.handleUpgrade(req, socket, head);
        const target = url.startsWith(PROXY_PREFIX) ? parseProxyPath(url) : null;
        if (!target) return void socket.end(rawErrorResponse({ status: 404, code: 'not_found', message: 'no upgrade handler for this path' }));
        void forwardUpgrade(hub, req, socket, head, { ...target, forwarded_host: req.headers.host, forwarded_proto: forwarded(req) });
      });
      return server;
    },
  });
  fastify.setNotFoundHandler((req, reply) => reply.code(404).send({ error: { code: 'not_found', message: `no route for ${req.method} ${req.url.split('?')[0]}` } }));
  fastify.setErrorHandler((err: { statusCode?: number; code?: string; message: string }, _req, reply) => {
    const status = err.statusCode && err.statusCode >= 400 && err.statusCode < 600 ? err.statusCode : 500;
    if (status >= 500) log.error({ err }, 'request failed');
    reply.code(status).send({ error: { code: status >= 500 ? 'internal' : (err.code ?? 'bad_request').toLowerCase(), message: status >= 500 ? 'internal error' : err.message } });
  });
  await fastify.register(routes, { hub, metrics, admin_token: config.admin_token, started_at_ms });
  await fastify.ready();
  const api_server = fastify.server as http.Server;

  const proxy_server = http.createServer(serverOptions, (req, res) => {
    const app_name = appFromHost(req.headers.host, config.app_domain);
    if (!app_name) return sendRawError(res, { status: 404, code: 'unknown_host', message: config.app_domain ? `host must be {app}.${config.app_domain}` : 'EE_APP_DOMAIN is not configured' });
    void forward(hub, req, res, { app_name, path: req.url!, forwarded_host: req.headers.host, forwarded_proto: forwarded(req) }, metrics);
  });
  proxy_server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    const app_name = appFromHost(req.headers.host, config.app_domain);
    if (!app_name) return void socket.end(rawErrorResponse({ status: 404, code: 'unknown_host', message: 'unknown host' }));
    void forwardUpgrade(hub, req, socket, head, { app_name, path: req.url!, forwarded_host: req.headers.host, forwarded_proto: forwarded(req) });
  });

  let api_port: number;
  let proxy_port: number;
  try {
    api_port = await listen(api_server, config.control_port, config.control_bind);
    proxy_port = await listen(proxy_server, config.proxy_port, config.proxy_bind);
  } catch (err) {
    hub.close();
    api_server.close();
    await store.close();
    throw err;
  }
  log.info({ api_port, proxy_port, db: config.database_url ? 'postgres' : config.db_path }, 'control plane listening');

  let shutting: Promise<void> | null = null;
  return {
    api_url: `http://${urlHost(config.control_bind)}:${api_port}`,
    proxy_url: `http://${urlHost(config.proxy_bind)}:${proxy_port}`,
    api_port,
    proxy_port,
    hub,
    store,
    shutdown(drain_timeout_ms = config.drain_timeout_ms) {
      shutting ??= (async () => {
        log.info('shutting down: draining agents and in-flight requests');
        const closed = Promise.all([
          new Promise((r) => api_server.close(r)),
          new Promise((r) => proxy_server.close(r)),
        ]);
        await hub.drain(drain_timeout_ms);
        api_server.closeAllConnections();
        proxy_server.closeAllConnections();
        await closed;
        await store.close();
        log.info('control plane stopped');
      })();
      return shutting;
    },
  };
}
