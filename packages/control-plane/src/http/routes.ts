// Fastify plugin with the control plane's JSON API for this issue: health, resolve (public), apps (admin),
// metrics. Proxying and the tunnel bypass fastify (see server.ts): they are raw streams on the hot path.

import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { APP_NAME_RE } from '@easyenclave/protocol';
import { networkPolicy } from '@easyenclave/attestation';
import { bearerToken, tokensEqual } from '../auth.js';
import { mayReceiveTraffic } from '../app-status.js';
import type { TunnelHub } from '../tunnel/hub.js';
import type { ProxyMetrics } from '../metrics.js';

export interface RoutesDeps {
  hub: TunnelHub;
  metrics: ProxyMetrics;
  admin_token: string | undefined;
  started_at_ms: number;
}

const iso = (ms: number | null | undefined) => (ms === null || ms === undefined ? null : new Date(ms).toISOString());

export function apiError(reply: FastifyReply, status: number, code: string, message: string): FastifyReply {
  return reply.code(status).type('application/json; charset=utf-8').send({ error: { code, message } });
}

export async function routes(app: FastifyInstance, deps: RoutesDeps): Promise<void> {
  const { hub } = deps;
  const { store, clock, config } = hub.deps;

  const requireAdmin = async (req: FastifyRequest, reply: FastifyReply) => {
    if (deps.admin_token === undefined) return;
    const token = bearerToken(req.headers.authorization);
    if (token === null) return apiError(reply, 401, 'unauthorized', 'missing Authorization: Bearer <admin token>');
    if (!tokensEqual(token, deps.admin_token)) return apiError(reply, 401, 'unauthorized', 'invalid admin token');
  };

  const appParam = (req: FastifyRequest, reply: FastifyReply): string | null => {
    const name = (req.params as { app: string }).app;
    if (!APP_NAME_RE.test(name)) {
      void apiError(reply, 404, 'unknown_app', `no app named "${name.slice(0, 80)}"`);
      return null;
    }
    return name;
  };

  app.get('/health', async () => {
    // Counted from memory (one pass over the links, no query): cheap enough to poll during a reconnect storm.
    const now = clock.now();
    let routable = 0;
    for (const l of hub.links) if (l.blocker(now, config.health_timeout_ms) === null) routable++;
    return {
      status: hub.draining ? 'draining' : 'ok',
      uptime_s: Math.floor((Date.now() - deps.started_at_ms) / 1000),
      agents_connected: hub.links.size,
      agents_routable: routable,
      apps_known: hub.knownApps.size,
    };
  });

  app.get('/metrics', { preHandler: requireAdmin }, async (_req, reply) => {
    deps.metrics.agents.set(hub.links.size);
    let streams = 0;
    for (const l of hub.links) streams += l.session.activeStreams;
    deps.metrics.streams.set(streams);
    return reply.type(deps.metrics.registry.contentType).send(await deps.metrics.registry.metrics());
  });

  app.get('/v1/resolve/:app', async (req, reply) => {
    const name = appParam(req, reply);
    if (name === null) return reply;
    const known = hub.knownApps.get(name);
    if (!known) return apiError(reply, 404, 'unknown_app', `no app named "${name}"`);
    const view = hub.status(name);
    if (!mayReceiveTraffic(view.status)) {
      const why: Record<string, string> = {
        offline: 'has no connected agent',
        draining: 'has only draining agents',
        unattested: 'is not attested',
        expired: 'has an expired registration',
        unhealthy: 'is not passing health checks',
      };
      return apiError(reply, 403, `app_${view.status}`, `app "${name}" ${why[view.status] ?? view.status}`);
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
  });

  app.get('/v1/apps', { preHandler: requireAdmin }, async () => {
    const apps = await store.listApps();
    return {
      apps: apps.map((a) => {
        const view = hub.status(a.app_name);
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
  });

  app.get('/v1/apps/:app', { preHandler: requireAdmin }, async (req, reply) => {
    const name = appParam(req, reply);
    if (name === null) return reply;
    const row = await store.getApp(name);
    if (!row) return apiError(reply, 404, 'unknown_app', `no app named "${name}"`);
    const now = clock.now();
    const view = hub.status(name);
    const [registrations, agents, attestations, health] = await Promise.all([
      store.listRegistrations(name),
      store.listAgents(name),
      store.listAttestations({ app_name: name, limit: 20 }),
      store.listHealthEvents({ app_name: name, limit: 20 }),
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
  });
}

/** Unknown networks count as sealed: fail closed. */
function isSealed(network: string): boolean {
  return networkPolicy(network)?.sealed ?? true;
}
