// GET /v1/apps/:app/attestation?nonce=<64 hex>[&agent=<agent_id>]: fresh evidence from one of an app's agents,
// bound to a nonce the caller chose, so a client (the SDK, `ee`) can verify the agent itself before sending it
// anything, instead of trusting the control plane's verdict. The control plane relays the nonce over the
// tunnel (see tunnel/attestation-relay.ts) and returns the agent's answer exactly as the agent produced it;
// it does not judge it, and the relay is never recorded as, nor disturbs, the agent's own attestation. Agents
// quote relayed nonces in the relay report_data domain (ee-relay-v1) without a proof of possession, and a nonce
// that is any agent's pending challenge is refused (409 nonce_in_use), so this public route is never an oracle
// for the control plane's own challenges.
//
// Public, so bounded: MAX_CONCURRENT_RELAYS at once over all apps, and per agent a few pending and a rate
// (attestation-relay.ts, link.ts), each refused with 503 busy + Retry-After.
import type { FastifyInstance, FastifyReply } from 'fastify';
import { AgentId, APP_NAME_RE } from '@easyenclave/protocol';
import { isSandboxQuote, parseNonceHex } from '@easyenclave/attestation';
import type { TunnelHub } from '../tunnel/hub.js';
import type { AgentLink } from '../tunnel/link.js';
import { relayChallenge, reserveRelay } from '../tunnel/attestation-relay.js';
import type { ApiError } from '../http-errors.js';
import { apiError } from './routes.js';

/** Relays waiting for agents at once, over all apps; more get 503 busy. */
export const MAX_CONCURRENT_RELAYS = 8;
/** Longest a caller waits for the agent's answer (EE_ATTEST_DEADLINE_SEC when that is shorter); then 504. */
export const MAX_RELAY_TIMEOUT_MS = 15_000;

/** The answer of the endpoint (and what the SDK validates). */
export interface AppAttestation {
  app: string;
  agent_id: string;
  network: string;
  sealed: boolean;
  repo: string;
  release_tag: string;
  evidence_type: 'tdx' | 'sandbox';
  sandbox: boolean;
  /** The caller's nonce, lowercase hex. */
  nonce: string;
  /** The agent's quote, base64, as in attest_response. */
  quote: string;
  /** The report_data the agent claims (hex); a verifier recomputes it from nonce and keyset instead. */
  report_data: string;
  /** The agent's per-boot keyset bound into report_data, or null if the agent sent none. */
  keyset: { hpke_public_key: string; receipt_public_key: string } | null;
  /** Informational, as the agent reported them; only the measurements inside a verified quote count. */
  measurements: Record<string, string>;
}

const BLOCKED: Record<string, { status: number; text: string; retry_after_s?: number }> = {
  offline: { status: 503, text: 'has no connected agent', retry_after_s: 5 },
  draining: { status: 503, text: 'has only draining agents', retry_after_s: 1 },
  unhealthy: { status: 503, text: 'is not passing health checks', retry_after_s: 5 },
  unattested: { status: 403, text: 'is not attested' },
  expired: { status: 403, text: 'has an expired registration' },
};

function send(reply: FastifyReply, e: ApiError): FastifyReply {
  if (e.retry_after_s !== undefined) reply.header('retry-after', String(e.retry_after_s));
  return apiError(reply, e.status, e.code, e.message);
}

function shuffled<T>(xs: T[]): T[] {
  for (let i = xs.length - 1; i > 0; i--) {
    const j = Math.floor(Math.random() * (i + 1));
    [xs[i], xs[j]] = [xs[j]!, xs[i]!];
  }
  return xs;
}

export async function appAttestationRoutes(app: FastifyInstance, opts: { hub: TunnelHub }): Promise<void> {
  const { hub } = opts;
  const { config, clock } = hub.deps;
  let inflight = 0;

  /** The agents a relay may go to, or the error saying why there are none. */
  const candidates = (name: string, agent_id: string | undefined): AgentLink[] | ApiError => {
    const now = clock.now();
    if (agent_id !== undefined) {
      const link = hub.byAgentId.get(agent_id);
      if (!link || link.reg?.app_name !== name)
        return { status: 404, code: 'unknown_agent', message: `no connected agent "${agent_id}" of app "${name}"` };
      const blocker = link.blocker(now, config.health_timeout_ms);
      if (blocker !== null)
        return {
          status: 503,
          code: 'agent_unavailable',
          message: `agent "${agent_id}" is ${blocker}`,
          retry_after_s: 1,
        };
      return [link];
    }
    const links = [...(hub.byApp.get(name) ?? [])].filter((l) => l.routable(now, config.health_timeout_ms));
    if (links.length > 0) return links;
    const status = hub.status(name).status;
    const b = BLOCKED[status] ?? BLOCKED.offline!;
    return {
      status: b.status,
      code: `app_${status}`,
      message: `app "${name}" ${b.text}`,
      ...(b.retry_after_s ? { retry_after_s: b.retry_after_s } : {}),
    };
  };

  app.get('/v1/apps/:app/attestation', async (req, reply) => {
    const name = (req.params as { app: string }).app;
    const q = req.query as Record<string, unknown>;
    if (!APP_NAME_RE.test(name)) return apiError(reply, 404, 'unknown_app', `no app named "${name.slice(0, 80)}"`);
    if (typeof q.nonce !== 'string') {
      return apiError(
        reply,
        400,
        'invalid_nonce',
        'query parameter "nonce" is required: 64 hex characters (32 random bytes)',
      );
    }
    let nonce_hex: string;
    try {
      nonce_hex = parseNonceHex(q.nonce).toString('hex');
    } catch (e) {
      return apiError(reply, 400, 'invalid_nonce', (e as Error).message);
    }
    if (q.agent !== undefined && (typeof q.agent !== 'string' || !AgentId.safeParse(q.agent).success)) {
      return apiError(
        reply,
        400,
        'invalid_agent',
        'query parameter "agent" must be an agent id (8-64 characters of A-Z a-z 0-9 _ -)',
      );
    }
    if (!hub.knownApps.has(name)) return apiError(reply, 404, 'unknown_app', `no app named "${name}"`);
    const found = candidates(name, q.agent as string | undefined);
    if (!Array.isArray(found)) return send(reply, found);
    const busy: ApiError = {
      status: 503,
      code: 'busy',
      message: 'too many attestation requests at once',
      retry_after_s: 1,
    };
    if (inflight >= MAX_CONCURRENT_RELAYS) return send(reply, busy);
    const now_wall = Date.now();
    const link = shuffled(found).find((l) => reserveRelay(l, now_wall));
    if (link === undefined) return send(reply, busy);
    const reg = link.reg!;
    inflight++;
    let outcome;
    try {
      outcome = await relayChallenge(hub, link, nonce_hex, Math.min(config.attest_deadline_ms, MAX_RELAY_TIMEOUT_MS));
    } finally {
      inflight--;
    }
    if (!outcome.ok) return send(reply, outcome.error);
    const r = outcome.response;
    const sandbox = isSandboxQuote(Buffer.from(r.quote, 'base64'));
    const body: AppAttestation = {
      app: name,
      agent_id: reg.agent_id,
      network: reg.network,
      sealed: reg.sealed,
      repo: reg.repo,
      release_tag: reg.release_tag,
      evidence_type: sandbox ? 'sandbox' : 'tdx',
      sandbox,
      nonce: nonce_hex,
      quote: r.quote,
      report_data: r.report_data,
      keyset: r.keyset ?? null,
      measurements: r.measurements,
    };
    return reply.header('cache-control', 'no-store').send(body);
  });
}
