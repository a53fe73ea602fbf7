// Client-relayed challenges (GET /v1/apps/:app/attestation): the control plane forwards a nonce chosen by an
// HTTP client to one agent as an ordinary `attest_request` (reason `client`) and hands the agent's
// `attest_response` back to that client, untouched, for the client to verify itself.
//
// Such an answer is routed by its nonce, before the attestation flow sees it, so it is never judged, recorded
// or counted as the agent's own attestation, and it never spends or disturbs the control plane's pending
// challenge. A late answer (after the client gave up) is dropped quietly for a grace period rather than being
// taken for an unknown nonce, which would fail the agent: a public caller must not be able to do that.
//
// A client may never have a relay quote over the nonce of a challenge the control plane is waiting for, on
// any agent: agents answer relays in another report_data domain, but refusing such a nonce outright (409
// nonce_in_use) keeps the relay from ever being an oracle for a pending challenge.

import type { AttestResponseMessage } from '@easyenclave/protocol';
import type { ApiError } from '../http-errors.js';
import type { TunnelHub } from './hub.js';
import { RELAY_BURST, RELAY_PER_SECOND, type AgentLink, type PendingRelay } from './link.js';

/** Relays waiting for their answer per agent; more get 503 busy. A relay that timed out stops counting. */
export const MAX_PENDING_RELAYS_PER_AGENT = 2;
/** How long after a relay timed out a late answer is still recognised and dropped. */
export const RELAY_LATE_GRACE_MS = 60_000;
/** Timed-out relays remembered per agent for their grace period: all that the per-agent relay rate can start
 *  in one grace period, so none is forgotten early (a forgotten nonce's answer would fail the agent). */
export const MAX_LATE_RELAYS_PER_AGENT = RELAY_BURST + (RELAY_PER_SECOND * RELAY_LATE_GRACE_MS) / 1000;

export type RelayOutcome = { ok: true; response: AttestResponseMessage } | { ok: false; error: ApiError };

/**
 * The control plane's pending challenge nonces over all agents (one index per hub), in issue order. An entry
 * is live while its link still waits for that nonce; stale ones (answered, missed, disconnected) are dropped
 * from the front as new challenges come in, so the index holds about one deadline's worth of challenges.
 */
const pendingChallenges = new WeakMap<TunnelHub, Map<string, AgentLink>>();

const stillPending = (link: AgentLink, nonce_hex: string): boolean =>
  !link.closed && link.challenge?.nonce_hex === nonce_hex;

/** Indexes a challenge just issued on `link` (attestation-flow.ts). */
export function notePendingChallenge(hub: TunnelHub, link: AgentLink, nonce_hex: string): void {
  let index = pendingChallenges.get(hub);
  if (index === undefined) pendingChallenges.set(hub, (index = new Map()));
  for (const [nonce, l] of index) {
    if (stillPending(l, nonce)) break;
    index.delete(nonce);
  }
  index.set(nonce_hex, link);
}

/** Is this nonce the pending challenge of any agent of this hub? */
export function isPendingChallenge(hub: TunnelHub, nonce_hex: string): boolean {
  const link = pendingChallenges.get(hub)?.get(nonce_hex);
  return link !== undefined && stillPending(link, nonce_hex);
}

/** Reserves a relay on this link (capacity and rate); false when it cannot take one now. */
export function reserveRelay(link: AgentLink, now_wall_ms: number): boolean {
  if (link.closed || link.relayCount >= MAX_PENDING_RELAYS_PER_AGENT) return false;
  return link.relay_tokens.take(now_wall_ms);
}

/** Sends the client's nonce to the agent and waits (at most `timeout_ms`) for its answer. */
export function relayChallenge(
  hub: TunnelHub,
  link: AgentLink,
  nonce_hex: string,
  timeout_ms: number,
): Promise<RelayOutcome> {
  if (isPendingChallenge(hub, nonce_hex)) {
    return Promise.resolve({
      ok: false,
      error: { status: 409, code: 'nonce_in_use', message: 'this nonce is a pending challenge of the control plane' },
    });
  }
  if ((link.relayCount > 0 && link.relays.has(nonce_hex)) || link.isLateRelay(nonce_hex, Date.now())) {
    return Promise.resolve({
      ok: false,
      error: { status: 409, code: 'nonce_in_use', message: 'this nonce is already being used with this agent' },
    });
  }
  return new Promise<RelayOutcome>((resolve) => {
    const relay: PendingRelay = {
      settle: resolve,
      timer: setTimeout(() => {
        relay.settle = null;
        // It stops counting against the agent's relays now, but its nonce is remembered a while so a late
        // answer is recognised (and dropped) instead of failing the agent.
        link.relays.delete(nonce_hex);
        link.noteLateRelay(nonce_hex, Date.now() + RELAY_LATE_GRACE_MS, MAX_LATE_RELAYS_PER_AGENT);
        resolve({
          ok: false,
          error: { status: 504, code: 'agent_timeout', message: `the agent did not answer within ${timeout_ms} ms` },
        });
      }, timeout_ms),
    };
    relay.timer.unref();
    link.relays.set(nonce_hex, relay);
    hub.send(link, {
      type: 'attest_request',
      nonce: nonce_hex,
      deadline_s: Math.max(1, Math.ceil(timeout_ms / 1000)),
      reason: 'client',
    });
  });
}

/** Takes an attest_response that answers a relayed challenge; false when it is not one (the normal flow runs). */
export function takeRelayedResponse(link: AgentLink, msg: AttestResponseMessage): boolean {
  if (link.takeLateRelay(msg.nonce, Date.now())) return true; // its client gave up: dropped quietly
  if (link.relayCount === 0) return false;
  const relay = link.relays.get(msg.nonce);
  if (relay === undefined) return false;
  link.relays.delete(msg.nonce);
  clearTimeout(relay.timer);
  relay.settle?.({ ok: true, response: msg });
  return true;
}

/** The link went away: every waiting client gets an error now. */
export function failRelays(link: AgentLink): void {
  if (link.relayCount === 0) return;
  for (const relay of link.relays.values()) {
    clearTimeout(relay.timer);
    relay.settle?.({
      ok: false,
      error: {
        status: 502,
        code: 'agent_disconnected',
        message: 'the agent disconnected before answering',
        retry_after_s: 1,
      },
    });
  }
  link.relays.clear();
}
