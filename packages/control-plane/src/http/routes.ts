// Fastify plugin with the control plane's operator API: health and readiness, resolve (public), apps (admin),
// metrics. Proxying and the tunnel bypass fastify (see server.ts): they are raw streams on the hot path.
import type { FastifyInstance } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { networkPolicy } from '@easyenclave/attestation';
import { mayReceiveTraffic } from '../app-status.js';
import type { StoreHealth } from '../store/health.js';
import type { TunnelHub } from '../tunnel/hub.js';
import type { ProxyMetrics } from '../metrics.js';
import { operatorHook } from './auth-hooks.js';
import { apiFailure, type ErrorCode } from './error-catalogue.js';
import { AppDetailView, AppParams, AppsView, HealthView, ReadyView, ResolveView } from './routes-schemas.js';
import { BEARER, errorResponses, isAppName } from './schemas.js';
import { appOfGateRequest, gateErrorHandler, ResolveParams, ResolveQuery, setResolveHeaders } from './resolve-gate.js';

export interface RoutesDeps {
  hub: TunnelHub;
  metrics: ProxyMetrics;
  admin_token: string | undefined;
  started_at_ms: number;
  store: StoreHealth;
}

/** Attestations and health events shown in an app's detail (GET /v1/apps/{app}). */
const APP_RECENT_EVENTS = 20;
const iso = (ms: number | null | undefined) => (ms === null || ms === undefined ? null : new Date(ms).toISOString());

/** Why an app gets no traffic, for an external proxy's auth_request: always 403 (it understands 2xx/401/403). */
const BLOCKED: Record<string, { code: ErrorCode; text: string }> = {
  offline: { code: 'app_offline', text: 'has no connected agent' },
  draining: { code: 'app_draining', text: 'has only draining agents' },
  unattested: { code: 'app_unattested', text: 'is not attested' },
  expired: { code: 'app_expired', text: 'has an expired registration' },
  unhealthy: { code: 'app_unhealthy', text: 'is not passing health checks' },
};

export async function routes(base: FastifyInstance, deps: RoutesDeps): Promise<void> {
  const app = base.withTypeProvider<ZodTypeProvider>();
  const { hub } = deps;
  const { store, clock, config } = hub.deps;
  const operator = operatorHook(deps.admin_token);
  const tags = ['operations'];

  const knownApp = (name: string): string => {
    if (!isAppName(name)) throw apiFailure('unknown_app', `no app named "${name.slice(0, 80)}"`);
    return name;
  };

  app.get(
    '/health',
    {
      schema: {
        tags,
        summary: "Liveness and counts from memory (no query: cheap to poll); the store's last known state",
        response: { 200: HealthView },
      },
    },
    async () => {
      // Counted from memory (one pass over the links, no query): cheap enough to poll during a reconnect storm.
      const now = clock.now();
      let routable = 0;
      for (const l of hub.links) if (l.blocker(now, config.health_timeout_ms) === null) routable++;
      const storeState = deps.store.state;
      return {
        status: hub.draining ? ('draining' as const) : storeState === 'ok' ? ('ok' as const) : ('degraded' as const),
        uptime_s: Math.floor((Date.now() - deps.started_at_ms) / 1000),
        agents_connected: hub.links.size,
        agents_routable: routable,
        apps_known: hub.knownApps.size,
        store: storeState,
        ...(deps.store.lastError !== null ? { store_error: deps.store.lastError } : {}),
      };
    },
  );

  app.get(
    '/ready',
    {
      schema: {
        tags,
        summary: 'Readiness: 200 only when the database answers and the control plane is not draining',
        response: { 200: ReadyView, 503: ReadyView },
      },
    },
    async (_req, reply) => {
      const storeOk = await deps.store.probe();
      const ready = storeOk && !hub.draining;
      if (!ready) reply.code(503).header('retry-after', '1');
      return {
        ready,
        store: deps.store.state,
        draining: hub.draining,
      };
    },
  );

  app.get(
    '/metrics',
    {
      onRequest: operator,
      schema: {
        tags,
        summary: 'Prometheus metrics (text exposition format)',
        security: BEARER,
        response: {
          200: { description: 'Prometheus text exposition format', content: { 'text/plain': { schema: z.string() } } },
          ...errorResponses(401),
        },
      },
    },
    async (_req, reply) => {
      deps.metrics.agents.set(hub.links.size);
      let streams = 0;
      for (const l of hub.links) streams += l.session.activeStreams;
      deps.metrics.streams.set(streams);
      return reply.type(deps.metrics.registry.contentType).send(await deps.metrics.registry.metrics());
    },
  );

  app.get(
    '/v1/resolve/:app',
    {
      schema: {
        tags,
        summary: 'Whether an app may receive traffic, for an external proxy (nginx auth_request, Caddy forward_auth)',
        description:
          'The app state is also in headers (EE-App-Status, EE-App-Agents, EE-App-Sealed, EE-App-Network, ' +
          'EE-App-Last-Attestation, EE-App-Expires-At). With auth_request=1 every refusal is a 403 and the app may be given as its host.',
        params: ResolveParams,
        querystring: ResolveQuery,
        response: { 200: ResolveView, ...errorResponses(400, 403, 404) },
      },
      errorHandler: gateErrorHandler(deps.store),
    },
    async (req, reply) => {
      const name = knownApp(appOfGateRequest(req.params.app, config.app_domain));
      const known = hub.knownApps.get(name);
      if (!known) throw apiFailure('unknown_app', `no app named "${name}"`);
      const view = hub.router.status(name);
      setResolveHeaders(reply, {
        status: view.status,
        agents: view.routable_agents,
        sealed: view.sealed,
        network: known.network,
        last_attest: iso(view.last_attest_ms),
        expires_at: iso(view.expires_at_ms),
      });
      if (!mayReceiveTraffic(view.status)) {
        const b = BLOCKED[view.status];
        if (b === undefined) throw new Error(`resolve: unexpected app status ${view.status}`);
        throw apiFailure(b.code, `app "${name}" ${b.text}`, { status: 403 });
      }
      const proto = (req.headers['x-forwarded-proto'] as string | undefined) ?? 'http';
      const host = req.headers.host ?? `${config.control_bind}:${config.control_port}`;
      return {
        app_name: name,
        status: view.status,
        endpoint: `${proto}://${host}/v1/proxy/${name}`,
        host_endpoint: config.app_domain ? `${name}.${config.app_domain}` : null,
        sealed: view.sealed,
        network: known.network,
        last_attest: iso(view.last_attest_ms),
        expires_at: iso(view.expires_at_ms),
        agents: view.routable_agents,
      };
    },
  );

  app.get(
    '/v1/apps',
    {
      onRequest: operator,
      schema: { tags, summary: 'Every app ever registered', security: BEARER, response: { 200: AppsView } },
    },
    async () => {
      const apps = await store.listApps();
      return {
        apps: apps.map((a) => {
          const view = hub.router.status(a.app_name);
          return {
            app_name: a.app_name,
            repo: a.repo,
            network: a.network,
            status: view.status,
            sealed: view.sealed ?? isSealed(a.network),
            agents_connected: view.connected_agents,
            agents_routable: view.routable_agents,
            expires_at: iso(view.expires_at_ms),
            last_attest: iso(view.last_attest_ms),
            created_at: iso(a.created_at_ms),
          };
        }),
      };
    },
  );

  app.get(
    '/v1/apps/:app',
    {
      onRequest: operator,
      schema: {
        tags,
        summary: 'One app: registrations, agents, the latest attestations and health events',
        security: BEARER,
        params: AppParams,
        response: { 200: AppDetailView, ...errorResponses(401, 404) },
      },
    },
    async (req) => {
      const name = knownApp(req.params.app);
      const row = await store.getApp(name);
      if (!row) throw apiFailure('unknown_app', `no app named "${name}"`);
      const now = clock.now();
      const view = hub.router.status(name);
      const [registrations, agents, attestations, health] = await Promise.all([
        store.listRegistrations(name),
        store.listAgents(name),
        store.listAttestations({ app_name: name, limit: APP_RECENT_EVENTS }),
        store.listHealthEvents({ app_name: name, limit: APP_RECENT_EVENTS }),
      ]);
      return {
        app_name: name,
        repo: row.repo,
        network: row.network,
        sealed: isSealed(row.network),
        status: view.status,
        created_at: iso(row.created_at_ms),
        expires_at: iso(view.expires_at_ms),
        last_attest: iso(view.last_attest_ms),
        registrations: registrations.map((r) => ({
          release_tag: r.release_tag,
          created_at: iso(r.created_at_ms),
          expires_at: iso(r.expires_at_ms),
          status:
            now >= r.expires_at_ms
              ? 'expired'
              : now >= r.expires_at_ms - config.registration_warn_ms
                ? 'expiring'
                : 'active',
        })),
        agents: agents.map((a) => {
          const live = hub.byAgentId.get(a.agent_id);
          return {
            agent_id: a.agent_id,
            release_tag: a.release_tag,
            connected: live !== undefined && !live.closed,
            status: live ? (live.blocker(now, config.health_timeout_ms) ?? 'routable') : 'offline',
            streams_active: live?.session.activeStreams ?? 0,
            remote_addr: a.remote_addr,
            last_connected: iso(a.last_connected_ms),
            last_disconnected: iso(a.last_disconnected_ms),
            health: live?.health ?? a.health_status,
            last_health: iso(live?.last_health_ms ?? a.last_health_ms),
            last_health_pass: iso(live?.last_pass_ms ?? a.last_health_pass_ms),
            attested: live?.attested ?? false,
            last_attest: iso(live?.last_attest_ms ?? a.last_attest_ms),
            evidence_type: live?.evidence_type ?? a.attest_evidence_type,
            attest_failure: live?.attest_failure ?? a.attest_failure,
          };
        }),
        recent_attestations: attestations.map((x) => ({
          agent_id: x.agent_id,
          at: iso(x.at_ms),
          reason: x.reason,
          ok: x.ok,
          missed: x.missed,
          evidence_type: x.evidence_type,
          evidence_hash: x.evidence_hash,
          policy_version: x.policy_version,
          failure: x.failure,
        })),
        recent_health_events: health.map((h) => ({
          agent_id: h.agent_id,
          at: iso(h.at_ms),
          kind: h.kind,
          detail: h.detail,
        })),
      };
    },
  );
}

/** Unknown networks count as sealed: fail closed. */
function isSealed(network: string): boolean {
  return networkPolicy(network)?.sealed ?? true;
}
