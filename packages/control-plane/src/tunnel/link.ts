// One connected agent as the control plane sees it: its socket, its stream session, and the live state that
// decides whether it may receive traffic (registered, attested, healthy, not expired, not draining).

import type { WebSocket } from 'ws';
import type { MuxSession } from '@easyenclave/protocol';
import type { Keyset } from '@easyenclave/attestation';
import type { AttestResponseMessage } from '@easyenclave/protocol';
import type { ApiError } from '../http-errors.js';

export interface LinkRegistration {
  app_name: string;
  repo: string;
  release_tag: string;
  network: string;
  sealed: boolean;
  agent_id: string;
  created_at_ms: number;
  expires_at_ms: number;
}

export interface PendingChallenge {
  nonce_hex: string;
  reason: 'register' | 'interval' | 'policy' | 'client';
  issued_at_ms: number;
  timer: NodeJS.Timeout;
  /** For client-relayed challenges: who is waiting for the evidence. */
  on_evidence?: (quote: Buffer, keyset: Keyset | undefined, ok: boolean, reasons: string[]) => void;
}

/**
 * A challenge relayed for an HTTP client (GET /v1/apps/:app/attestation, see attestation-relay.ts). Keyed by
 * the client's nonce; it is never this link's own attestation. `settle` is null once the client stopped
 * waiting; a timed-out relay moves to the link's late relays (a late answer is dropped quietly).
 */
export interface PendingRelay {
  settle: ((r: { ok: true; response: AttestResponseMessage } | { ok: false; error: ApiError }) => void) | null;
  timer: NodeJS.Timeout;
}

export type HealthStatus = 'pass' | 'fail';

/** Control messages an agent may send: a burst of 50, refilled at 20 per second. */
export const CONTROL_BURST = 50;
export const CONTROL_PER_SECOND = 20;
/** Client-relayed challenges per agent: each answer costs the agent a control message, so they stay well
 *  under CONTROL_PER_SECOND (a public endpoint must never be able to get an agent closed for flooding). */
export const RELAY_BURST = 10;
export const RELAY_PER_SECOND = 5;

/** A token bucket over wall-clock milliseconds. */
export class TokenBucket {
  private tokens: number;
  private refill_ms = Date.now();

  constructor(
    readonly burst: number,
    readonly per_second: number,
  ) {
    this.tokens = burst;
  }

  take(now_wall_ms: number): boolean {
    const refill = Math.floor(((now_wall_ms - this.refill_ms) * this.per_second) / 1000);
    if (refill > 0) {
      this.tokens = Math.min(this.burst, this.tokens + refill);
      this.refill_ms = now_wall_ms;
    }
    if (this.tokens <= 0) return false;
    this.tokens--;
    return true;
  }
}

export class AgentLink {
  reg: LinkRegistration | null = null;
  /** Random per connection, sent in `registered`; every answer to our own challenges is signed over it. */
  session_id: string | null = null;
  /** The market node this agent is bound to (by its node token or its verified PPID), or null. */
  node_id: string | null = null;
  attested = false;
  /**
   * The keyset of the last successful attestation: a reconnect must prove this one to take the agent id over,
   * and the launcher's jobs seal to it and verify usage with it.
   */
  keyset: Keyset | null = null;
  /**
   * Registered for an agent id that another live link holds: not indexed, writes no records under that id,
   * and takes the id over only once it attests with the holder's keyset (tunnel/registration.ts).
   */
  contender = false;
  last_attest_ms: number | null = null;
  attest_failure: string | null = null;
  evidence_type: string | null = null;
  challenge: PendingChallenge | null = null;
  next_attest_at_ms = Number.POSITIVE_INFINITY;
  /** The hub's policy generation when the evidence of the last successful attestation was verified. */
  policy_generation = 0;

  health: HealthStatus | null = null;
  last_health_ms: number | null = null;
  last_pass_ms: number | null = null;
  health_missed = false;
  last_health_persist_ms = 0;

  /** Wall-clock time of the last message or pong (liveness uses real time, never the injected clock). */
  last_seen_wall_ms = Date.now();
  /** Wall-clock time of the upgrade: the register deadline counts from here. */
  readonly accepted_wall_ms = Date.now();
  draining = false;
  closed = false;
  /** Counted against the control plane's cap on concurrent handshakes until its first attestation ends. */
  in_handshake = false;
  /** Client-relayed challenges by nonce (hex), and their rate: made on the first relay (most agents never get one). */
  private relay_map: Map<string, PendingRelay> | null = null;
  private relay_bucket: TokenBucket | null = null;
  get relays(): Map<string, PendingRelay> {
    return (this.relay_map ??= new Map());
  }
  /** Pending relays, without allocating the map. */
  get relayCount(): number {
    return this.relay_map === null ? 0 : this.relay_map.size;
  }
  /** Relays that timed out, by nonce → wall-clock expiry of their grace; oldest first (insertion order). */
  private late_relays: Map<string, number> | null = null;

  /** Remembers a timed-out relay's nonce until `expires_wall_ms`; the oldest goes when `max` are held. */
  noteLateRelay(nonce_hex: string, expires_wall_ms: number, max: number): void {
    const late = (this.late_relays ??= new Map());
    late.set(nonce_hex, expires_wall_ms);
    for (const [n, exp] of late) {
      if (late.size <= max && exp > Date.now()) break;
      late.delete(n);
    }
  }

  isLateRelay(nonce_hex: string, now_wall_ms: number): boolean {
    const exp = this.late_relays?.get(nonce_hex);
    return exp !== undefined && exp > now_wall_ms;
  }

  /** A late answer to a timed-out relay: forgets the nonce and says whether it was one. */
  takeLateRelay(nonce_hex: string, now_wall_ms: number): boolean {
    if (this.late_relays === null) return false;
    const late = this.isLateRelay(nonce_hex, now_wall_ms);
    this.late_relays.delete(nonce_hex);
    return late;
  }

  get relay_tokens(): TokenBucket {
    return (this.relay_bucket ??= new TokenBucket(RELAY_BURST, RELAY_PER_SECOND));
  }
  // Token bucket for JSON control messages: an agent needs a handful per interval; a flood is an attack.
  private readonly control_tokens = new TokenBucket(CONTROL_BURST, CONTROL_PER_SECOND);

  takeControlToken(now_wall_ms: number): boolean {
    return this.control_tokens.take(now_wall_ms);
  }

  constructor(
    readonly ws: WebSocket,
    readonly session: MuxSession,
    readonly remote_addr: string,
    readonly connected_at_ms: number,
  ) {}

  get agent_id(): string | null {
    return this.reg?.agent_id ?? null;
  }

  /** Healthy: a passing heartbeat within the health timeout. */
  healthy(now_ms: number, health_timeout_ms: number): boolean {
    return this.health === 'pass' && this.last_pass_ms !== null && now_ms - this.last_pass_ms <= health_timeout_ms;
  }

  expired(now_ms: number): boolean {
    return this.reg !== null && now_ms >= this.reg.expires_at_ms;
  }

  /** Everything that must hold for a new stream to be opened toward this agent. */
  routable(now_ms: number, health_timeout_ms: number): boolean {
    return (
      this.reg !== null &&
      !this.closed &&
      !this.draining &&
      this.attested &&
      !this.session.closed &&
      !this.session.goaway_received &&
      !this.expired(now_ms) &&
      this.healthy(now_ms, health_timeout_ms)
    );
  }

  /** Why this agent gets no traffic (first reason), or null when routable. */
  blocker(
    now_ms: number,
    health_timeout_ms: number,
  ): 'offline' | 'draining' | 'unattested' | 'expired' | 'unhealthy' | null {
    if (this.closed || this.session.closed || this.reg === null) return 'offline';
    if (this.draining || this.session.goaway_received) return 'draining';
    if (!this.attested) return 'unattested';
    if (this.expired(now_ms)) return 'expired';
    if (!this.healthy(now_ms, health_timeout_ms)) return 'unhealthy';
    return null;
  }
}
