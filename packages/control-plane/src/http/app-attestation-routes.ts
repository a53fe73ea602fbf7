// GET /v1/apps/:app/attestation?nonce=<64 hex>[&agent=<agent_id>]: fresh evidence from one of an app's agents,
// bound to a nonce the caller chose, so a client (the SDK, `ee`) can verify the agent itself before sending it
// anything, instead of trusting the control plane's verdict. The control plane relays the nonce over the
// tunnel (see tunnel/attestation-relay.ts) and returns the agent's answer exactly as the agent produced it;
// it does not judge it, and the relay is never recorded as, nor disturbs, the agent's own attestation. Agents
// quote relayed nonces in the relay report_data domain (ee-relay-v1) without a proof of possession, and a nonce
// that is any agent's pending challenge is refused (409 nonce_in_use), so this public route is never an oracle
// for the control plane's own challenges.
//
// Public, so bounded: at once MAX_RELAYS_PER_CALLER per caller address, MAX_RELAYS_PER_APP per app and
// MAX_CONCURRENT_RELAYS over all, and per agent a few pending and a rate (attestation-relay.ts, link.ts),
// each refused with 503 busy + Retry-After. Slow agents of one app and one caller's requests can hold only
// their own shares, never every app's relay.
import type { FastifyInstance } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { AgentId } from '@easyenclave/protocol';
import { isSandboxQuote, parseNonceHex } from '@easyenclave/attestation';
import type { TunnelHub } from '../tunnel/hub.js';
import type { AgentLink } from '../tunnel/link.js';
import type { RelayDesk, RelayOutcome } from '../tunnel/attestation-relay.js';
import type { ControlPlaneConfig } from '../config.js';
import { type ApiFailure, apiFailure, type ErrorCode } from './error-catalogue.js';
import { AppAttestationView, AppParams, Nonce } from './routes-schemas.js';
import { coded, errorResponses, isAppName } from './schemas.js';

/** Relays waiting for agents at once, over all apps; more get 503 busy. A memory bound, far above one
 *  app's or one caller's share. */
export const MAX_CONCURRENT_RELAYS = 256;
/** Relays waiting at once for the agents of one app. */
export const MAX_RELAYS_PER_APP = 8;
/** Relays one caller (remote address) may have waiting at once. */
export const MAX_RELAYS_PER_CALLER = 4;

/** Counts per key, an entry only while non-zero (so the maps hold at most MAX_CONCURRENT_RELAYS keys). */
class Counts {
  readonly #n = new Map<string, number>();
  get(key: string): number {
    return this.#n.get(key) ?? 0;
  }
  add(key: string, d: 1 | -1): void {
    const n = this.get(key) + d;
    if (n > 0) this.#n.set(key, n);
    else this.#n.delete(key);
  }
}
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

/** Why no agent of the app can answer (the catalogue's status: 503 where waiting helps, 403 where not). */
const BLOCKED: Record<string, { code: ErrorCode; text: string; retry_after_s?: number }> = {
  offline: { code: 'app_offline', text: 'has no connected agent', retry_after_s: 5 },
  draining: { code: 'app_draining', text: 'has only draining agents', retry_after_s: 1 },
  unhealthy: { code: 'app_unhealthy', text: 'is not passing health checks', retry_after_s: 5 },
  unattested: { code: 'app_unattested', text: 'is not attested' },
  expired: { code: 'app_expired', text: 'has an expired registration' },
};

const RelayQuery = z.object({
  nonce: coded(Nonce, 'invalid_nonce'),
  agent: coded(
    z.string({ error: 'query parameter "agent" must be an agent id' }).pipe(AgentId).optional(),
    'invalid_agent',
  ),
});

/**
 * Relays `nonce_hex` to one agent (a relay already reserved on it) and answers its evidence untouched, or
 * throws the relay's error. Also used by reservations, which return the chosen agent's evidence.
 */
/** What a relay needs of the control plane: the tunnel's relay desk and the limits. */
export interface RelayAccess {
  readonly relays: RelayDesk;
  readonly config: ControlPlaneConfig;
}

/** The catalogue's answer to a relay that ended without the agent's evidence. */
function relayFailure(reason: Exclude<RelayOutcome, { ok: true }>['reason'], timeout_ms: number): ApiFailure {
  switch (reason) {
    case 'nonce_pending':
      return apiFailure('nonce_in_use', 'this nonce is a pending challenge of the control plane');
    case 'nonce_in_use':
      return apiFailure('nonce_in_use', 'this nonce is already being used with this agent');
    case 'timeout':
      return apiFailure('agent_timeout', `the agent did not answer within ${timeout_ms} ms`);
    case 'disconnected':
      return apiFailure('agent_disconnected', 'the agent disconnected before answering', { retry_after_s: 1 });
  }
}

export async function relayEvidence(access: RelayAccess, link: AgentLink, nonce_hex: string): Promise<AppAttestation> {
  const reg = link.reg!;
  const timeout_ms = Math.min(access.config.attest_deadline_ms, MAX_RELAY_TIMEOUT_MS);
  const outcome = await access.relays.relay(link, nonce_hex, timeout_ms);
  if (!outcome.ok) throw relayFailure(outcome.reason, timeout_ms);
  const r = outcome.response;
  const sandbox = isSandboxQuote(Buffer.from(r.quote, 'base64'));
  return {
    app: reg.app_name,
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
}

function shuffled<T>(xs: T[]): T[] {
  for (let i = xs.length - 1; i > 0; i--) {
    const j = Math.floor(Math.random() * (i + 1));
    [xs[i], xs[j]] = [xs[j]!, xs[i]!];
  }
  return xs;
}

export async function appAttestationRoutes(base: FastifyInstance, opts: { hub: TunnelHub }): Promise<void> {
  const app = base.withTypeProvider<ZodTypeProvider>();
  const { hub } = opts;
  const { config, clock } = hub.deps;
  let inflight = 0;
  const perApp = new Counts();
  const perCaller = new Counts();

  /** The agents a relay may go to; throws the error saying why there are none. */
  const candidates = (name: string, agent_id: string | undefined): AgentLink[] => {
    const now = clock.now();
    if (agent_id !== undefined) {
      const link = hub.byAgentId.get(agent_id);
      if (!link || link.reg?.app_name !== name)
        throw apiFailure('unknown_agent', `no connected agent "${agent_id}" of app "${name}"`, { param: 'agent' });
      const blocker = link.blocker(now, config.health_timeout_ms);
      if (blocker !== null)
        throw apiFailure('agent_unavailable', `agent "${agent_id}" is ${blocker}`, { retry_after_s: 1 });
      return [link];
    }
    const links = [...(hub.byApp.get(name) ?? [])].filter((l) => l.routable(now, config.health_timeout_ms));
    if (links.length > 0) return links;
    const status = hub.router.status(name).status;
    const b = BLOCKED[status] ?? BLOCKED.offline!;
    throw apiFailure(b.code, `app "${name}" ${b.text}`, b.retry_after_s ? { retry_after_s: b.retry_after_s } : {});
  };

  app.get(
    '/v1/apps/:app/attestation',
    {
      schema: {
        tags: ['attestation'],
        summary: "Fresh evidence from one of the app's agents over the caller's nonce, relayed unjudged",
        params: AppParams,
        querystring: RelayQuery,
        response: { 200: AppAttestationView, ...errorResponses(400, 403, 404, 503, 504) },
      },
    },
    async (req, reply) => {
      const name = req.params.app;
      if (!isAppName(name)) throw apiFailure('unknown_app', `no app named "${name.slice(0, 80)}"`);
      const nonce_hex = parseNonceHex(req.query.nonce).toString('hex');
      if (!hub.knownApps.has(name)) throw apiFailure('unknown_app', `no app named "${name}"`);
      const found = candidates(name, req.query.agent);
      const busy = () => apiFailure('busy', 'too many attestation requests at once', { retry_after_s: 1 });
      const caller = req.ip;
      if (
        inflight >= MAX_CONCURRENT_RELAYS ||
        perApp.get(name) >= MAX_RELAYS_PER_APP ||
        perCaller.get(caller) >= MAX_RELAYS_PER_CALLER
      )
        throw busy();
      const now_wall = Date.now();
      const link = shuffled(found).find((l) => hub.relays.reserve(l, now_wall));
      if (link === undefined) throw busy();
      inflight++;
      perApp.add(name, 1);
      perCaller.add(caller, 1);
      let body: AppAttestation;
      try {
        body = await relayEvidence({ relays: hub.relays, config }, link, nonce_hex);
      } finally {
        inflight--;
        perApp.add(name, -1);
        perCaller.add(caller, -1);
      }
      return reply.header('cache-control', 'no-store').send({ ...body });
    },
  );
}
