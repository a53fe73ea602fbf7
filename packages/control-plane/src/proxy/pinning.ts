// Pinning of sealed requests (docs/confidential.md, Pinning): a request sealed to an agent's key names the key
// in its clear `EE-Sealed: v1; key=<id>` header; it is delivered only to the agent of the app holding that key
// (never to another agent, which could not open it anyway), and never retried elsewhere. When that agent is
// gone or its node may no longer serve, the answer is 409 sealed_key_gone (verify the app again and seal to
// the new key); when it is only busy or briefly unhealthy, 503 sealed_key_unavailable with Retry-After.
//
// The key id is read with a small pattern rather than the sealing module's parser: the control plane never
// opens sealed messages and does not load HPKE; a malformed header is left for the agent to refuse.
import { createHash } from 'node:crypto';
import type { ApiError } from '../http-errors.js';
import type { Keyset } from '@easyenclave/attestation';
import type { ControlPlaneConfig } from '../config.js';
import type { Router } from '../tunnel/router.js';
import type { AgentLink } from '../tunnel/link.js';

const KEY_PARAM = /^v1(?:;.*)?;\s*key=([0-9a-f]{64})\s*(?:;|$)/;

/** The key id a sealed request names (64 hex), or null when it names none. */
export function pinnedKeyId(header: string | string[] | undefined): string | null {
  if (typeof header !== 'string' || header.length > 32_768) return null;
  return KEY_PARAM.exec(header)?.[1] ?? null;
}

/** SHA-256 of the raw X25519 key, per keyset object (a link keeps its keyset for its connection). */
const ids = new WeakMap<Keyset, string>();
function keyIdOf(k: Keyset): string {
  let id = ids.get(k);
  if (id === undefined) {
    id = createHash('sha256').update(Buffer.from(k.hpke_public_key, 'hex')).digest('hex');
    ids.set(k, id);
  }
  return id;
}

/** The agent of `app_name` holding `key_id` if it can take the request now, else the error to answer. */
export function pinnedAgent(
  tunnel: { router: Router; config: ControlPlaneConfig },
  app_name: string,
  key_id: string,
): AgentLink | ApiError {
  const { health_timeout_ms, max_streams_per_agent } = tunnel.config;
  const { router } = tunnel;
  const now = router.now();
  const link = router.links(app_name).find((l) => !l.closed && l.keyset !== null && keyIdOf(l.keyset) === key_id);
  const gone = (why: string): ApiError => ({
    status: 409,
    code: 'sealed_key_gone',
    message: `the request is sealed to key ${key_id}, and ${why}: verify the app again and seal to its current key`,
  });
  if (link === undefined) return gone(`no agent of "${app_name}" holds it now`);
  const blocker = link.blocker(now, health_timeout_ms);
  if (blocker === 'offline' || blocker === 'draining' || blocker === 'expired') return gone(`its agent is ${blocker}`);
  if (link.node_id !== null && !router.mayServe(link.node_id)) return gone('its node may not serve traffic now');
  if (blocker !== null || link.session.activeStreams >= max_streams_per_agent)
    return {
      status: 503,
      code: 'sealed_key_unavailable',
      message: `the agent holding key ${key_id} is ${blocker ?? 'at its stream limit'}; retry shortly`,
      retry_after_s: 1,
    };
  return link;
}
