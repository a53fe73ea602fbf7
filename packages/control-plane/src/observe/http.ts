// Request-level observation: API latency per route pattern, proxied-request latency per entry point and app.
// (Ledger lines name their request through LedgerStore.submit and correlation.ts, not here.)
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { FastifyBaseLogger, FastifyInstance } from 'fastify';
import type { AccessLog } from '../http/access-log.js';
import { requestIdOf } from '../http/request-id.js';
import type { ControlPlaneMetrics, ProxyEntry } from '../metrics.js';

/** Route label for a request that matched no route (bounded: never the raw path). */
const UNMATCHED_ROUTE = 'unmatched';

export function observeApi(app: FastifyInstance, metrics: ControlPlaneMetrics): void {
  app.addHook('onResponse', (req, reply, done) => {
    metrics.apiRequest(req.method, req.routeOptions.url ?? UNMATCHED_ROUTE, reply.statusCode, reply.elapsedTime / 1000);
    done();
  });
}

export interface ProxyObservers {
  metrics: ControlPlaneMetrics;
  log: FastifyBaseLogger;
  access_log: AccessLog;
}

/** Times one proxied request to the end of its response (or to the client going away), and logs its line. */
export function observeProxy(
  o: ProxyObservers,
  req: IncomingMessage,
  res: ServerResponse,
  entry: ProxyEntry,
  app: string,
): void {
  const start_ms = performance.now();
  // `on`, not `once`: a response closes once, and `once` wraps every listener in a closure of its own.
  res.on('close', () => {
    const duration_ms = performance.now() - start_ms;
    o.metrics.proxyRequest(entry, app, res.statusCode, duration_ms / 1000);
    const request_id = requestIdOf(req);
    o.access_log.proxied(o.log, req, {
      request_id,
      entry,
      app,
      status: res.statusCode,
      duration_ms,
      aborted: !res.writableFinished,
    });
  });
}
