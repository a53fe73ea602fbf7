// Long (~460 lines) on purpose: the one place the parts are assembled and torn down, in order.
// Assembles the control plane: store, verifier, tunnel hub, the API server (fastify for JSON routes, raw
// handlers for the proxy and the tunnel) and the host-routed app proxy. Returns a handle for graceful shutdown.

import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import https from 'node:https';
import { readFileSync } from 'node:fs';
import net, { type AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import Fastify, { type FastifyBaseLogger } from 'fastify';
import { serializerCompiler, validatorCompiler } from 'fastify-type-provider-zod';
import type { Logger } from 'pino';
import type { EvidenceVerifier } from '@easyenclave/attestation';
import { checkExposure, ConfigError, type ControlPlaneConfig } from './config.js';
import { systemClock, type Clock } from './clock.js';
import { openStore, type Store } from './store/index.js';
import { TunnelHub } from './tunnel/hub.js';
import { LinkRegistry } from './tunnel/registry.js';
import { upgradeRefusalError } from './proxy/refusals.js';
import { forward, forwardOptions, HOST_ENTRY } from './proxy/forward.js';
import { forwardUpgrade } from './proxy/upgrade.js';
import { appFromHost, parseProxyPath, PROXY_PREFIX } from './http/proxy-routing.js';
import { routes } from './http/routes.js';
import { rawErrorResponse, sendRawError } from './http-errors.js';
import { ControlPlaneMetrics } from './metrics.js';
import { timedVerifier } from './observe/attestation.js';
import { observeApi, observeProxy } from './observe/http.js';
import { observeLedger } from './observe/ledger.js';
import { ConnectionTracker } from './http/connection-drain.js';
import { createVerifier, type ControlPlaneVerifier, type ReloadResult } from './attestation/verifier.js';
import { attestationRoutes } from './http/attestation-routes.js';
import { accountKeyRoutes } from './http/account-keys.js';
import { accountListRoutes } from './http/account-list.js';
import { ledgerRoutes } from './http/ledger-routes.js';
import { captureReceivedBody, IdempotencyKeys } from './http/idempotency.js';
import { LedgerStore } from './ledger-store/ledger-store.js';
import { Market } from './market/market.js';
import { MarketScheduler } from './market/scheduler.js';
import { Reservations } from './market/reservations.js';
import { marketReservationRoutes } from './http/market-reservations.js';
import { marketNodeRoutes } from './http/market-nodes.js';
import { marketLeaseRoutes } from './http/market-leases.js';
import { marketSettlementRoutes } from './http/market-settlement.js';
import { marketListRoutes } from './http/market-lists.js';
import { marketPayoutRoutes } from './http/market-payouts.js';
import { AccessLog } from './http/access-log.js';
import { installErrorHandling } from './http/error-handler.js';
import { openApiRoutes, registerOpenApi } from './http/openapi.js';
import { requestIdOf } from './http/request-id.js';
import { controlPlaneLogger } from './log.js';
import { StoreHealth } from './store/health.js';
import { appAttestationRoutes } from './http/app-attestation-routes.js';
import { capHttpParserPool } from './http/parser-pool.js';
import { onClientError } from './http/client-error.js';
import { JobsService } from './jobs/service.js';
import { LauncherRegistry } from './launchers/registry.js';
import { jobsRoutes } from './http/jobs-routes.js';
import { DeploymentsService } from './deployments/service.js';
import { deploymentsRoutes } from './http/deployments-routes.js';
import { EdgeGuard, edgeServerOptions } from './http/edge-guard.js';
import { frameworkErrors, MAX_PATH_PARAM_CHARS } from './http/resolve-gate.js';

export interface ControlPlaneOptions {
  /** Listening sockets inherited from a predecessor process (see handoff.ts). */
  listen_fds?: { api: number; proxy: number };
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
  readonly ledger: LedgerStore;
  /** The market (docs/market.md) and its scheduler (tests call `scheduler.tick()` after moving the clock). */
  readonly market: Market;
  readonly scheduler: MarketScheduler;
  /** Jobs on node launchers (docs/workloads.md) and the launchers' view. */
  readonly jobs: JobsService;
  readonly deployments: DeploymentsService;
  readonly launchers: LauncherRegistry;
  /** Reservations and usage receipts (docs/confidential.md). */
  readonly reservations: Reservations;
  /** The database's state as /health and /ready report it. */
  readonly storeHealth: StoreHealth;
  /** Every route fastify serves (method and URL, as registered), for checking the OpenAPI document. */
  readonly api_routes: readonly { method: string; url: string }[];
  /** Open HTTP connections per listener, as the connection caps count them (agent tunnels excluded). */
  open_connections(): { api: number; proxy: number };
  /** The OS file descriptors of the two listening sockets, to hand to a successor process. */
  listening_fds(): { api: number; proxy: number };
  readonly verifier: EvidenceVerifier;
  /**
   * Re-reads the attestation policy (and the collateral file); on a change every connected agent is re-attested
   * (reason 'policy'). The file watcher calls the same; a bad policy is logged loudly and the one in force stays.
   * (SIGHUP restarts the whole process, see handoff.ts: the successor loads the policy afresh, or fails to start
   * and this process keeps serving with the policy in force.)
   */
  reloadPolicy(): Promise<ReloadResult>;
  /** Graceful: stop accepting, GOAWAY to agents, let in-flight requests finish (bounded), then close. */
  shutdown(drain_timeout_ms?: number): Promise<void>;
}

/** Listens on a port, or on a listening socket inherited from a predecessor (zero-downtime handoff). */
function listen(server: http.Server, port: number, host: string, fd: number | undefined): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    const done = () => {
      server.off('error', reject);
      resolve((server.address() as AddressInfo).port);
    };
    if (fd !== undefined) server.listen({ fd }, done);
    else server.listen(port, host, done);
  });
}

/** Stops accepting new connections WITHOUT closing idle keep-alive ones (http.Server#close would): a
 *  client may be writing its next request on one right now. While draining, responses carry
 *  `Connection: close`, so every client moves to the successor after its next answer. */
function stopAccepting(server: http.Server): Promise<void> {
  return new Promise((resolve) => net.Server.prototype.close.call(server, () => resolve()));
}

function handleFd(server: http.Server): number {
  const fd = (server as unknown as { _handle?: { fd?: number } })._handle?.fd;
  if (typeof fd !== 'number' || fd < 0) throw new Error('listening socket has no file descriptor');
  return fd;
}

function urlHost(bind: string): string {
  const h = bind === '0.0.0.0' || bind === '::' ? '127.0.0.1' : bind;
  return h.includes(':') ? `[${h}]` : h;
}

/** EE_TLS_CERT_FILE / EE_TLS_KEY_FILE, read once at start (a restart, or a SIGHUP handoff, picks up renewed files). */
function loadTls(config: ControlPlaneConfig): { cert: Buffer; key: Buffer } | null {
  if (config.tls_cert_file === undefined || config.tls_key_file === undefined) return null;
  const read = (variable: string, file: string) => {
    try {
      return readFileSync(file);
    } catch (err) {
      throw new ConfigError(variable, `${variable}: cannot read ${file}: ${(err as Error).message}`);
    }
  };
  return { cert: read('EE_TLS_CERT_FILE', config.tls_cert_file), key: read('EE_TLS_KEY_FILE', config.tls_key_file) };
}

const IDEMPOTENCY_PRUNE_INTERVAL_MS = 10 * 60 * 1000;
/** Largest JSON body of an API request (proxied bodies are streamed and limited by EE_MAX_BODY_BYTES). */
export const API_BODY_LIMIT_BYTES = 1024 * 1024;

export async function startControlPlane(
  config: ControlPlaneConfig,
  opts: ControlPlaneOptions = {},
): Promise<ControlPlane> {
  checkExposure(config);
  const tls = loadTls(config);
  const log = opts.logger ?? controlPlaneLogger(config.log_level);
  const clock = opts.clock ?? systemClock;
  capHttpParserPool(); // see http/parser-pool.ts: ~2 KiB per agent that connected in a burst otherwise
  // Configuration problems (root CA, collateral, policy) surface here as ConfigError, before anything is opened.
  const cpVerifier: ControlPlaneVerifier | null = opts.verifier ? null : createVerifier(config, log);
  const verifier = opts.verifier ?? cpVerifier!;
  let store: Store;
  let ledger: LedgerStore;
  try {
    store = await openStore(config.database_url ? { database_url: config.database_url } : { db_path: config.db_path });
  } catch (err) {
    cpVerifier?.close();
    throw err;
  }
  try {
    ledger = await LedgerStore.open(store.db, store.dialect, () => clock.now());
  } catch (err) {
    cpVerifier?.close();
    await store.close();
    throw err;
  }
  const storeHealth = new StoreHealth(store.db);
  const idempotency = new IdempotencyKeys(ledger.db);
  const pruneTimer = setInterval(() => {
    idempotency.prune(clock.now()).catch((err: unknown) => log.warn({ err }, 'pruning idempotency keys failed'));
  }, IDEMPOTENCY_PRUNE_INTERVAL_MS).unref();
  const metrics = new ControlPlaneMetrics(true);
  observeLedger(ledger, log, metrics);
  // The links come first (pure data): the market reads them as its live view, the hub owns their sockets.
  const registry = new LinkRegistry();
  let market: Market;
  let reservations: Reservations;
  try {
    market = await Market.open({ ledger, store, live: registry, clock, config, log });
    reservations = await Reservations.open(market, {
      onOutcome: (outcome) => metrics.receipts.labels(outcome).inc(),
    });
  } catch (err) {
    clearInterval(pruneTimer);
    cpVerifier?.close();
    await ledger.close();
    await store.close();
    throw err;
  }
  const hub = new TunnelHub({
    store,
    verifier: timedVerifier(verifier, metrics),
    clock,
    config,
    log,
    metrics,
    registry,
    market,
    receipts: (receipts, source) => reservations.verdicts(receipts, source),
  });
  const tunnel = { router: hub.router, config };
  const scheduler = new MarketScheduler(market, reservations);
  scheduler.start();
  const launchers = new LauncherRegistry(hub, clock, config.health_timeout_ms, log);
  const jobs = await JobsService.open({
    ledger,
    store,
    market,
    registry: launchers,
    clock,
    health_timeout_ms: config.health_timeout_ms,
    log,
  });
  jobs.start();
  const deployments = await DeploymentsService.open({ ledger, store, market, registry: launchers, clock, log });
  deployments.start();
  cpVerifier?.onChange(() => hub.reattestAll());
  await hub.start();
  const started_at_ms = Date.now();

  const forwarded = (req: IncomingMessage) => ((req.socket as { encrypted?: boolean }).encrypted ? 'https' : 'http');
  const serverOptions = edgeServerOptions(config);
  const scheme = tls ? 'https' : 'http';
  const createServer = (handler: http.RequestListener): http.Server =>
    tls
      ? // A TLS handshake gets no longer than a header block (Node's default is 120 s).
        (https.createServer(
          { ...serverOptions, ...tls, handshakeTimeout: config.headers_timeout_ms },
          handler,
        ) as unknown as http.Server)
      : http.createServer(serverOptions, handler);
  const apiGuard = new EdgeGuard(config);
  const proxyGuard = new EdgeGuard(config);

  // `/v1/proxy/{app}` is on the API's origin: see proxy/response-head.ts.
  const pathPolicy = { path_entry: true, path_active_content: config.proxy_path_active_content };
  const access_log = new AccessLog(config.access_log);
  const observers = { metrics, log: log as FastifyBaseLogger, access_log };
  const proxyViaPath = (req: IncomingMessage, res: ServerResponse) => {
    const target = parseProxyPath(req.url!);
    if (!target)
      return sendRawError(res, { status: 404, code: 'unknown_app', message: 'expected /v1/proxy/{app}/{path}' });
    observeProxy(observers, req, res, 'path', target.app_name);
    void forward(
      tunnel,
      req,
      res,
      forwardOptions(target.app_name, target.path, req, forwarded(req), pathPolicy),
      metrics,
    ).catch((err) => {
      log.error({ err, request_id: requestIdOf(req) }, 'proxy failure');
      sendRawError(res, { status: 502, code: 'proxy_error', message: 'internal proxy error' });
    });
  };

  const fastify = Fastify({
    // Every log line of a request carries its id (pino child logger); the access log is ours (error-handler.ts).
    loggerInstance: log as FastifyBaseLogger,
    genReqId: requestIdOf,
    logController: access_log,
    clientErrorHandler: onClientError,
    bodyLimit: API_BODY_LIMIT_BYTES,
    routerOptions: { maxParamLength: MAX_PATH_PARAM_CHARS },
    frameworkErrors,
    serverFactory: (handler) => {
      const server = createServer((req, res) => {
        if (!apiGuard.onRequest(req, res)) return;
        if (hub.draining) res.shouldKeepAlive = false;
        if (req.url!.startsWith(PROXY_PREFIX)) return proxyViaPath(req, res);
        handler(req, res);
      });
      server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
        if (!apiGuard.onUpgrade(req, socket)) return;
        const url = req.url ?? '/';
        if (url === '/v1/tunnel' || url.startsWith('/v1/tunnel?')) {
          apiGuard.release(socket); // an agent's tunnel: the hub bounds those, many may share one address
          const refused = hub.handleUpgrade(req, socket, head);
          if (refused !== null) socket.end(rawErrorResponse(upgradeRefusalError(refused), req));
          return;
        }
        const target = url.startsWith(PROXY_PREFIX) ? parseProxyPath(url) : null;
        if (!target)
          return void socket.end(
            rawErrorResponse({ status: 404, code: 'not_found', message: 'no upgrade handler for this path' }, req),
          );
        void forwardUpgrade(
          tunnel,
          req,
          socket,
          head,
          forwardOptions(target.app_name, target.path, req, forwarded(req), pathPolicy),
        );
      });
      apiGuard.attach(server, tls !== null);
      return server;
    },
  });
  observeApi(fastify, metrics);
  fastify.setValidatorCompiler(validatorCompiler);
  fastify.setSerializerCompiler(serializerCompiler);
  fastify.decorateRequest('principal', null);
  captureReceivedBody(fastify);
  installErrorHandling(fastify, { store: storeHealth });
  const api_routes: { method: string; url: string }[] = [];
  fastify.addHook('onRoute', (r) => {
    for (const method of [r.method].flat()) api_routes.push({ method, url: r.url });
  });
  await registerOpenApi(fastify);
  await fastify.register(routes, {
    hub,
    metrics,
    admin_token: config.admin_token,
    started_at_ms,
    store: storeHealth,
  });
  await fastify.register(openApiRoutes);
  await fastify.register(attestationRoutes, { config, log });
  await fastify.register(ledgerRoutes, { ledger, idempotency, clock, admin_token: config.admin_token });
  await fastify.register(accountListRoutes, { ledger, admin_token: config.admin_token });
  await fastify.register(accountKeyRoutes, { ledger, idempotency, admin_token: config.admin_token });
  await fastify.register(appAttestationRoutes, { hub });
  const marketOpts = {
    market,
    idempotency,
    admin_token: config.admin_token,
    launcher_token: config.launcher_token,
    uptime_token: config.uptime_token,
    reservations,
  };
  await fastify.register(marketNodeRoutes, marketOpts);
  await fastify.register(marketLeaseRoutes, marketOpts);
  await fastify.register(marketSettlementRoutes, marketOpts);
  await fastify.register(marketPayoutRoutes, marketOpts);
  await fastify.register(marketListRoutes, marketOpts);
  await fastify.register(jobsRoutes, {
    jobs,
    registry: launchers,
    ledger,
    idempotency,
    admin_token: config.admin_token,
  });
  await fastify.register(deploymentsRoutes, {
    deployments,
    jobs,
    registry: launchers,
    market,
    ledger,
    idempotency,
    admin_token: config.admin_token,
  });
  await fastify.register(marketReservationRoutes, { ...marketOpts, relay: { relays: hub.relays, config } });
  await fastify.ready();
  const api_server = fastify.server as http.Server;
  const connections = new ConnectionTracker();
  connections.track(api_server);

  const proxy_server = createServer((req, res) => {
    if (!proxyGuard.onRequest(req, res)) return;
    if (hub.draining) res.shouldKeepAlive = false;
    const app_name = appFromHost(req.headers.host, config.app_domain);
    if (!app_name)
      return sendRawError(res, {
        status: 404,
        code: 'unknown_host',
        message: config.app_domain ? `host must be {app}.${config.app_domain}` : 'EE_APP_DOMAIN is not configured',
      });
    observeProxy(observers, req, res, 'host', app_name);
    void forward(tunnel, req, res, forwardOptions(app_name, req.url!, req, forwarded(req), HOST_ENTRY), metrics).catch(
      (err) => {
        log.error({ err, request_id: requestIdOf(req) }, 'proxy failure');
        sendRawError(res, { status: 502, code: 'proxy_error', message: 'internal proxy error' });
      },
    );
  });
  connections.track(proxy_server);
  proxyGuard.attach(proxy_server, tls !== null);
  proxy_server.on('clientError', onClientError);
  proxy_server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    if (!proxyGuard.onUpgrade(req, socket)) return;
    const app_name = appFromHost(req.headers.host, config.app_domain);
    if (!app_name)
      return void socket.end(rawErrorResponse({ status: 404, code: 'unknown_host', message: 'unknown host' }, req));
    void forwardUpgrade(tunnel, req, socket, head, forwardOptions(app_name, req.url!, req, forwarded(req), HOST_ENTRY));
  });

  let api_port: number;
  let proxy_port: number;
  try {
    api_port = await listen(api_server, config.control_port, config.control_bind, opts.listen_fds?.api);
    proxy_port = await listen(proxy_server, config.proxy_port, config.proxy_bind, opts.listen_fds?.proxy);
  } catch (err) {
    hub.close();
    jobs.stop();
    deployments.stop();
    cpVerifier?.close();
    clearInterval(pruneTimer);
    storeHealth.close();
    await scheduler.stop();
    api_server.close();
    await ledger.close();
    await store.close();
    throw err;
  }
  log.info({ api_port, proxy_port, db: config.database_url ? 'postgres' : config.db_path }, 'control plane listening');

  let shutting: Promise<void> | null = null;
  return {
    api_url: `${scheme}://${urlHost(config.control_bind)}:${api_port}`,
    proxy_url: `${scheme}://${urlHost(config.proxy_bind)}:${proxy_port}`,
    api_port,
    proxy_port,
    listening_fds: () => ({ api: handleFd(api_server), proxy: handleFd(proxy_server) }),
    open_connections: () => ({ api: apiGuard.connections, proxy: proxyGuard.connections }),
    hub,
    store,
    ledger,
    market,
    scheduler,
    jobs,
    deployments,
    launchers,
    reservations,
    storeHealth,
    api_routes,
    verifier,
    reloadPolicy() {
      if (cpVerifier === null)
        return Promise.resolve({
          ok: false,
          changed: false,
          policy_version: null,
          error: 'an injected verifier has no policy to reload',
        });
      return cpVerifier.reload('reload');
    },
    shutdown(drain_timeout_ms = config.drain_timeout_ms) {
      shutting ??= (async () => {
        log.info('shutting down: draining agents and in-flight requests');
        cpVerifier?.close();
        jobs.stop();
        deployments.stop();
        const deadline = Date.now() + drain_timeout_ms;
        const closed = Promise.all([stopAccepting(api_server), stopAccepting(proxy_server)]);
        hub.beginDrain(); // GOAWAY: agents dial the successor; our tunnels stay up for our own clients
        await connections.drain(deadline); // keep-alive clients move on after their next answer
        await hub.drain(Math.max(0, deadline - Date.now())); // tunnelled WebSockets and other long streams
        await closed;
        clearInterval(pruneTimer);
        storeHealth.close();
        await scheduler.stop();
        await reservations.stop();
        await ledger.close(); // every acknowledged write is committed before the connection closes
        await store.close();
        log.info('control plane stopped');
      })();
      return shutting;
    },
  };
}
