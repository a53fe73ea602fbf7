// The `register` message: network check, agent-id binding, app-name claim (app-claims.ts), the release's
// registration and its TTL, then the first attestation challenge. The agent gets no traffic until that
// challenge passes. Works through a narrow port; it never touches a socket itself.

import type { Logger } from 'pino';
import { CloseCode, type ControlToAgent, type RegisterMessage } from '@easyenclave/protocol';
import { networkPolicy, newSessionId } from '@easyenclave/attestation';
import type { Clock } from '../clock.js';
import type { ControlPlaneConfig } from '../config.js';
import type { Store } from '../store/index.js';
import { claimYields, MAX_TRACKED_CLAIM_ADDRESSES } from '../app-claims.js';
import { TokenBucket, type AgentLink, type PendingChallenge } from './link.js';
import type { MarketHooks } from './ports.js';
import type { LinkRegistry } from './registry.js';

export interface RegistrationPort {
  readonly config: ControlPlaneConfig;
  readonly clock: Clock;
  readonly log: Logger;
  readonly store: Pick<Store, 'registerAgent' | 'markAgentDisconnected'>;
  readonly registry: LinkRegistry;
  readonly market: MarketHooks | null;
  draining(): boolean;
  send(link: AgentLink, msg: ControlToAgent): void;
  close(link: AgentLink, code: number, reason: string): void;
  /** An app name passed to a new owner: the old owner's links go. */
  closeOwnerLinks(app_name: string, repo: string, network: string): void;
  /** Indexes a registered link for routing, retiring a link of the same agent id it displaces. */
  index(link: AgentLink): void;
  /** The link registered (and is indexed, unless a contender): challenge it. */
  challenge(link: AgentLink, reason: PendingChallenge['reason']): boolean;
}

/** New app-name claims per remote address: a token bucket each, for at most MAX_TRACKED_CLAIM_ADDRESSES. */
export class ClaimLimiter {
  readonly #buckets = new Map<string, TokenBucket>();
  constructor(readonly per_hour: number) {}
  take(addr: string): boolean {
    let b = this.#buckets.get(addr);
    if (b !== undefined)
      this.#buckets.delete(addr); // re-inserted below: the map stays in order of last use
    else b = new TokenBucket(this.per_hour, this.per_hour / 3600);
    this.#buckets.set(addr, b);
    if (this.#buckets.size > MAX_TRACKED_CLAIM_ADDRESSES) this.#buckets.delete(this.#buckets.keys().next().value!);
    return b.take(Date.now());
  }
}

export class Registrar {
  readonly #claims: ClaimLimiter;

  constructor(private readonly port: RegistrationPort) {
    this.#claims = new ClaimLimiter(port.config.app_claims_per_hour);
  }

  async register(link: AgentLink, msg: RegisterMessage): Promise<void> {
    const { store, clock, config, log, registry, market } = this.port;
    const now = clock.now();
    const refuse = (code: string, message: string) => {
      log.warn(
        { app_name: msg.app_name, repo: msg.repo, agent_id: msg.agent_id, code },
        `registration refused: ${message}`,
      );
      this.port.send(link, { type: 'error', code, message: message.slice(0, 1000) });
      this.port.close(link, CloseCode.REGISTRATION_REFUSED, message);
    };
    if (this.port.draining()) return refuse('draining', 'control plane is shutting down');
    const network = networkPolicy(msg.network);
    if (!network) return refuse('unknown_network', `unknown network "${msg.network}"`);

    // An agent id is bound to its first app and repo (the store checks that for good), to its node, and while
    // a live link holds it, to that link's attested keyset. Agent ids are public: a claimant that is not the
    // holder is refused without touching the holder's link or records.
    const holder = registry.byAgentId.get(msg.agent_id);
    const contender = holder !== undefined && !holder.closed;
    if (contender) {
      const h = holder.reg!;
      if (h.app_name !== msg.app_name || h.repo !== msg.repo || h.network !== msg.network)
        return refuse('agent_id_taken', `agent "${msg.agent_id}" belongs to app "${h.app_name}" of repo "${h.repo}"`);
      if (!holder.attested || holder.keyset === null)
        return refuse('agent_id_in_use', `agent "${msg.agent_id}" is connected and still attesting; try again later`);
      if (holder.node_id === null && msg.node_token !== undefined)
        return refuse('agent_id_in_use', `agent "${msg.agent_id}" is connected and bound to no node`);
    }
    if (msg.node_token === undefined && market !== null) {
      const bound = await market.tokenBinding(msg.agent_id);
      if (bound !== undefined)
        return refuse(
          'node_token_required',
          `agent "${msg.agent_id}" is bound to node ${bound}: present its node token`,
        );
    }
    // A new name is a new claim: rate-limited per remote address (app-claims.ts).
    if (!registry.knownApps.has(msg.app_name) && !this.#claims.take(link.remote_addr))
      return refuse('claim_rate_limited', `too many new app names from this address; try again later`);

    let node_id: string | null = null;
    if (msg.node_token !== undefined) {
      if (market === null)
        return refuse('market_unavailable', 'this control plane does not bind agents to market nodes');
      const bound = await market.bindToken(
        { agent_id: msg.agent_id, network: msg.network, app_name: msg.app_name },
        msg.node_token,
      );
      if (!bound.ok) return refuse(bound.code, bound.message);
      node_id = bound.node_id;
      if (contender && node_id !== holder.node_id)
        return refuse('agent_bound_elsewhere', `agent ${msg.agent_id} is bound to another node`);
    }
    if (link.closed) return;

    const result = await store.registerAgent({
      agent_id: msg.agent_id,
      app_name: msg.app_name,
      repo: msg.repo,
      release_tag: msg.release_tag,
      network: msg.network,
      remote_addr: link.remote_addr,
      now_ms: now,
      ttl_ms: config.registration_ttl_ms,
      connect: !contender, // a contender writes nothing under the id until it has taken it over
      takeover: (held, live) =>
        claimYields(held, network, networkPolicy(held.network)?.sealed ?? true, live, clock.now()),
    });
    if (!result.ok) {
      if ('agent_bound_to' in result) {
        const b = result.agent_bound_to;
        return refuse('agent_id_taken', `agent "${msg.agent_id}" belongs to app "${b.app_name}" of repo "${b.repo}"`);
      }
      const owner = result.app;
      if (owner.repo !== msg.repo)
        return refuse('app_name_taken', `app "${msg.app_name}" belongs to repo "${owner.repo}", not "${msg.repo}"`);
      return refuse(
        'network_mismatch',
        `app "${msg.app_name}" is registered on network "${owner.network}", not "${msg.network}"`,
      );
    }
    const registration = result.registration;
    if (result.taken_from !== undefined) {
      const old = result.taken_from;
      log.warn(
        {
          app_name: msg.app_name,
          from_repo: old.repo,
          from_network: old.network,
          repo: msg.repo,
          network: msg.network,
        },
        'app name claim passed to a new owner',
      );
      this.port.closeOwnerLinks(msg.app_name, old.repo, old.network);
    }
    const known = registry.noteApp(msg.app_name, result.app.repo, result.app.network);
    if (link.closed) {
      // The socket went away while we were writing: undo the 'connected' we just recorded.
      if (!contender) await store.markAgentDisconnected(msg.agent_id, clock.now(), 'disconnected during registration');
      return;
    }
    const session_id = newSessionId();
    link.register(
      {
        app_name: msg.app_name,
        repo: known.repo, // === msg.repo (registerAgent refuses another repo or network)
        release_tag: msg.release_tag,
        network: known.network,
        sealed: network.sealed,
        agent_id: msg.agent_id,
        created_at_ms: registration.created_at_ms,
        expires_at_ms: registration.expires_at_ms,
      },
      node_id,
      session_id,
      contender,
    );
    if (!contender) this.port.index(link);
    const expired = now >= registration.expires_at_ms;
    this.port.send(link, {
      type: 'registered',
      app_name: msg.app_name,
      agent_id: msg.agent_id,
      expires_at: new Date(registration.expires_at_ms).toISOString(),
      status: expired
        ? 'expired'
        : now >= registration.expires_at_ms - config.registration_warn_ms
          ? 'expiring'
          : 'active',
      session_id,
    });
    log.info(
      {
        app_name: msg.app_name,
        repo: msg.repo,
        release_tag: msg.release_tag,
        agent_id: msg.agent_id,
        network: msg.network,
      },
      'agent registered',
    );
    this.port.challenge(link, 'register');
  }
}
