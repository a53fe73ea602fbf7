// The `register` message: network check, app-name ownership (first repo wins), the release's registration
// and its TTL, then the first attestation challenge. The agent gets no traffic until that challenge passes.

import { CloseCode, type RegisterMessage } from '@easyenclave/protocol';
import { networkPolicy, newSessionId } from '@easyenclave/attestation';
import type { TunnelHub } from './hub.js';
import type { AgentLink } from './link.js';
import { challenge } from './attestation-flow.js';
import { claimYields } from '../app-claims.js';

export async function handleRegister(hub: TunnelHub, link: AgentLink, msg: RegisterMessage): Promise<void> {
  const { store, clock, config, log } = hub.deps;
  const now = clock.now();
  const refuse = (code: string, message: string) => {
    log.warn(
      { app_name: msg.app_name, repo: msg.repo, agent_id: msg.agent_id, code },
      `registration refused: ${message}`,
    );
    hub.send(link, { type: 'error', code, message: message.slice(0, 1000) });
    hub.closeLink(link, CloseCode.REGISTRATION_REFUSED, message);
  };
  if (hub.draining) return refuse('draining', 'control plane is shutting down');
  const network = networkPolicy(msg.network);
  if (!network) return refuse('unknown_network', `unknown network "${msg.network}"`);

  // An agent id is bound to its first app and repo (the store checks that for good), to its node, and while
  // a live link holds it, to that link's attested keyset. Agent ids are public: a claimant that is not the
  // holder is refused without touching the holder's link or records.
  const holder = hub.byAgentId.get(msg.agent_id);
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
  if (msg.node_token === undefined && hub.market?.tokenBinding) {
    const bound = await hub.market.tokenBinding(msg.agent_id);
    if (bound !== undefined)
      return refuse('node_token_required', `agent "${msg.agent_id}" is bound to node ${bound}: present its node token`);
  }

  // A new name is a new claim: rate-limited per remote address (app-claims.ts).
  if (!hub.knownApps.has(msg.app_name) && !hub.claims.take(link.remote_addr))
    return refuse('claim_rate_limited', `too many new app names from this address; try again later`);

  let node_id: string | null = null;
  if (msg.node_token !== undefined) {
    if (!hub.market) return refuse('market_unavailable', 'this control plane does not bind agents to market nodes');
    const bound = await hub.market.bindToken(
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
      { app_name: msg.app_name, from_repo: old.repo, from_network: old.network, repo: msg.repo, network: msg.network },
      'app name claim passed to a new owner',
    );
    hub.closeOwnerLinks(msg.app_name, old.repo, old.network);
  }
  // One entry per app, replaced only when it changes; the link's registration shares its strings.
  let known = hub.knownApps.get(msg.app_name);
  if (known === undefined || known.repo !== result.app.repo || known.network !== result.app.network) {
    hub.knownApps.set(msg.app_name, (known = { repo: result.app.repo, network: result.app.network }));
  }
  if (link.closed) {
    // The socket went away while we were writing: undo the 'connected' we just recorded.
    if (!contender) await store.markAgentDisconnected(msg.agent_id, clock.now(), 'disconnected during registration');
    return;
  }
  link.reg = {
    app_name: msg.app_name,
    repo: known.repo, // === msg.repo (registerAgent refuses another repo or network)
    release_tag: msg.release_tag,
    network: known.network,
    sealed: network.sealed,
    agent_id: msg.agent_id,
    created_at_ms: registration.created_at_ms,
    expires_at_ms: registration.expires_at_ms,
  };
  link.node_id = node_id;
  link.session_id = newSessionId();
  link.contender = contender;
  if (!contender) hub.index(link);
  const expired = now >= registration.expires_at_ms;
  hub.send(link, {
    type: 'registered',
    app_name: msg.app_name,
    agent_id: msg.agent_id,
    expires_at: new Date(registration.expires_at_ms).toISOString(),
    status: expired
      ? 'expired'
      : now >= registration.expires_at_ms - config.registration_warn_ms
        ? 'expiring'
        : 'active',
    session_id: link.session_id,
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
  challenge(hub, link, 'register');
}
