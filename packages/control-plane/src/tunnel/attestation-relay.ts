// Client-relayed challenges (GET /v1/apps/:app/attestation): the control plane forwards a nonce chosen by an
// HTTP client to one agent as an ordinary `attest_request` (reason `client`) and hands the agent's
// `attest_response` back to that client, untouched, for the client to verify itself.
//
// Such an answer is routed by its nonce, before the attestation flow sees it, so it is never judged, recorded
// or counted as the agent's own attestation, and it never spends or disturbs the control plane's pending
// challenge. A relay that times out stops counting against the agent at once; its nonce is remembered for a
// grace period so a late answer is dropped quietly rather than taken for an unknown nonce, which would fail
// the agent: a public caller must not be able to do that.
//
// A client may never have a relay quote over the nonce of a challenge the control plane is waiting for, on
// any agent: agents answer relays in another report_data domain, but refusing such a nonce outright
// (`nonce_pending`, which the route answers 409 nonce_in_use) keeps the relay from ever being an oracle for a
// pending challenge. Outcomes are reasons, never HTTP statuses: the route maps them.

import type { AttestResponseMessage, ControlToAgent } from '@easyenclave/protocol';
import { RELAY_BURST, RELAY_PER_SECOND, type AgentLink, type PendingRelay, type RelayOutcome } from './link.js';

/** Relays waiting for their answer per agent; more get 503 busy. A relay that timed out stops counting. */
export const MAX_PENDING_RELAYS_PER_AGENT = 2;
/** How long after a relay timed out a late answer is still recognised and dropped. */
export const RELAY_LATE_GRACE_MS = 60_000;
/** Timed-out relays remembered per agent for their grace period: all that the per-agent relay rate can start
 *  in one grace period, so none is forgotten early (a forgotten nonce's answer would fail the agent). */
export const MAX_LATE_RELAYS_PER_AGENT = RELAY_BURST + (RELAY_PER_SECOND * RELAY_LATE_GRACE_MS) / 1000;

export type { RelayOutcome } from './link.js';

const stillPending = (link: AgentLink, nonce_hex: string): boolean =>
  !link.closed && link.challenge?.nonce_hex === nonce_hex;

export class RelayDesk {
  /**
   * The control plane's pending challenge nonces over all agents, in issue order. An entry is live while its
   * link still waits for that nonce; stale ones (answered, missed, disconnected) are dropped from the front
   * as new challenges come in, so the index holds about one deadline's worth of challenges.
   */
  readonly #challenges = new Map<string, AgentLink>();

  constructor(private readonly send: (link: AgentLink, msg: ControlToAgent) => void) {}

  /** Indexes a challenge just issued on `link` (attestation-flow.ts). */
  notePendingChallenge(link: AgentLink, nonce_hex: string): void {
    for (const [nonce, l] of this.#challenges) {
      if (stillPending(l, nonce)) break;
      this.#challenges.delete(nonce);
    }
    this.#challenges.set(nonce_hex, link);
  }

  /** Is this nonce the pending challenge of any agent? */
  isPendingChallenge(nonce_hex: string): boolean {
    const link = this.#challenges.get(nonce_hex);
    return link !== undefined && stillPending(link, nonce_hex);
  }

  /** Reserves a relay on this link (capacity and rate); false when it cannot take one now. */
  reserve(link: AgentLink, now_wall_ms: number): boolean {
    if (link.closed || link.relayCount >= MAX_PENDING_RELAYS_PER_AGENT) return false;
    return link.relay_tokens.take(now_wall_ms);
  }

  /** Sends the client's nonce to the agent and waits (at most `timeout_ms`) for its answer. */
  relay(link: AgentLink, nonce_hex: string, timeout_ms: number): Promise<RelayOutcome> {
    if (this.isPendingChallenge(nonce_hex)) return Promise.resolve({ ok: false, reason: 'nonce_pending' });
    if (link.hasRelay(nonce_hex) || link.isLateRelay(nonce_hex, Date.now()))
      return Promise.resolve({ ok: false, reason: 'nonce_in_use' });
    return new Promise<RelayOutcome>((resolve) => {
      const relay: PendingRelay = {
        settle: resolve,
        timer: setTimeout(() => {
          relay.settle = null;
          // It stops counting against the agent's relays now, but its nonce is remembered a while so a late
          // answer is recognised (and dropped) instead of failing the agent.
          link.takeRelay(nonce_hex);
          link.noteLateRelay(nonce_hex, Date.now() + RELAY_LATE_GRACE_MS, MAX_LATE_RELAYS_PER_AGENT);
          resolve({ ok: false, reason: 'timeout' });
        }, timeout_ms),
      };
      relay.timer.unref();
      link.addRelay(nonce_hex, relay);
      this.send(link, {
        type: 'attest_request',
        nonce: nonce_hex,
        deadline_s: Math.max(1, Math.ceil(timeout_ms / 1000)),
        reason: 'client',
      });
    });
  }

  /** Takes an attest_response that answers a relayed challenge; false when it is not one (the normal flow runs). */
  take(link: AgentLink, msg: AttestResponseMessage): boolean {
    if (link.takeLateRelay(msg.nonce, Date.now())) return true; // its client gave up: dropped quietly
    const relay = link.takeRelay(msg.nonce);
    if (relay === undefined) return false;
    clearTimeout(relay.timer);
    relay.settle?.({ ok: true, response: msg });
    return true;
  }

  /** The link went away: every waiting client gets its answer now. */
  failAll(link: AgentLink): void {
    for (const relay of link.takeAllRelays()) {
      clearTimeout(relay.timer);
      relay.settle?.({ ok: false, reason: 'disconnected' });
    }
  }
}
