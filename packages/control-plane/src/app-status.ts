// Pure: what an app's status is, from its connected agents and the clock. Used by resolve, the admin API and
// the proxy, so all three always agree on whether an app may receive traffic.

import type { AgentLink } from './tunnel/link.js';

export type AppStatus = 'active' | 'expiring' | 'expired' | 'unattested' | 'unhealthy' | 'draining' | 'offline';

export interface AppStatusView {
  status: AppStatus;
  routable_agents: number;
  connected_agents: number;
  /** Latest registration expiry among agents that could serve (ms), or null with none connected. */
  expires_at_ms: number | null;
  last_attest_ms: number | null;
  sealed: boolean | null;
}

// When nothing can serve, report the blocker closest to being fixed by itself first.
const BLOCKER_ORDER: AppStatus[] = ['draining', 'unhealthy', 'unattested', 'expired', 'offline'];

export function appStatus(
  links: Iterable<AgentLink>,
  now_ms: number,
  limits: { health_timeout_ms: number; registration_warn_ms: number },
): AppStatusView {
  let routable = 0;
  let connected = 0;
  let expires: number | null = null;
  let routable_expires: number | null = null;
  let last_attest: number | null = null;
  let sealed: boolean | null = null;
  let best_blocker = BLOCKER_ORDER.length - 1;
  for (const l of links) {
    if (l.closed || l.reg === null) continue;
    connected++;
    sealed = l.reg.sealed;
    expires = Math.max(expires ?? 0, l.reg.expires_at_ms);
    if (l.last_attest_ms !== null) last_attest = Math.max(last_attest ?? 0, l.last_attest_ms);
    const b = l.blocker(now_ms, limits.health_timeout_ms);
    if (b === null) {
      routable++;
      routable_expires = Math.max(routable_expires ?? 0, l.reg.expires_at_ms);
    } else {
      best_blocker = Math.min(best_blocker, BLOCKER_ORDER.indexOf(b));
    }
  }
  let status: AppStatus;
  if (routable > 0) status = routable_expires! - now_ms <= limits.registration_warn_ms ? 'expiring' : 'active';
  else status = BLOCKER_ORDER[best_blocker]!;
  return {
    status,
    routable_agents: routable,
    connected_agents: connected,
    expires_at_ms: expires,
    last_attest_ms: last_attest,
    sealed,
  };
}

export function mayReceiveTraffic(status: AppStatus): boolean {
  return status === 'active' || status === 'expiring';
}
