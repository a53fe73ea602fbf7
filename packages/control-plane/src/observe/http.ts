// Request-level observation: API latency per route pattern, proxied-request latency per entry point and app,
// and the request id carried into asynchronous work (correlation.ts) so ledger lines name their request.
import type { ServerResponse } from 'node:http';
import type { FastifyInstance } from 'fastify';
import { withRequestId } from '../correlation.js';
import type { ControlPlaneMetrics, ProxyEntry } from '../metrics.js';

/** Route label for a request that matched no route (bounded: never the raw path). */
const UNMATCHED_ROUTE = 'unmatched';

export function observeApi(app: FastifyInstance, metrics: ControlPlaneMetrics): void {
  // Callback style on purpose: the rest of the request's life runs inside `done`, so inside the id's context.
  app.addHook('onRequest', (req, _reply, done) => withRequestId(req.id, done));
  app.addHook('onResponse', (req, reply, done) => {
    metrics.apiRequest(req.method, req.routeOptions.url ?? UNMATCHED_ROUTE, reply.statusCode, reply.elapsedTime / 1000);
    done();
  });
}

/** Times one proxied request to the end of its response (or to the client going away). */
export function observeProxy(metrics: ControlPlaneMetrics, res: ServerResponse, entry: ProxyEntry, app: string): void {
  const start_ms = performance.now();
  res.once('close', () => metrics.proxyRequest(entry, app, res.statusCode, (performance.now() - start_ms) / 1000));
}
