// One connected agent as the control plane sees it: its socket, its stream session, and the live state that
// decides whether it may receive traffic (registered, attested, healthy, not expired, not draining).
// Every field is read-only outside this file: its state changes only through the methods below, which the
// tunnel's controllers call (registration, attestation, health, liveness) and the registry (node binding).

import type { WebSocket } from 'ws';
import type { MuxSession } from '@easyenclave/protocol';
import type { Keyset } from '@easyenclave/attestation';
import type { AttestResponseMessage } from '@easyenclave/protocol';

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
  reason: 'register' | 'interval' | 'policy';
  issued_at_ms: number;
  timer: NodeJS.Timeout;
}

/**
 * A challenge relayed for an HTTP client (GET /v1/apps/:app/attestation, see attestation-relay.ts). Keyed by
 * the client's nonce; it is never this link's own attestation. `settle` is null once the client stopped
 * waiting; a timed-out relay moves to the link's late relays (a late answer is dropped quietly).
 */
export interface PendingRelay {
  settle: ((r: RelayOutcome) => void) | null;
  timer: NodeJS.Timeout;
}

/** Why a relay ended without the agent's answer; the HTTP route maps each to the error catalogue. */
export type RelayFailure = 'nonce_pending' | 'nonce_in_use' | 'timeout' | 'disconnected';
export type RelayOutcome = { ok: true; response: AttestResponseMessage } | { ok: false; reason: RelayFailure };

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
  #reg: LinkRegistration | null = null;
  #session_id: string | null = null;
  #node_id: string | null = null;
  #attested = false;
  #keyset: Keyset | null = null;
  #contender = false;
  #last_attest_ms: number | null = null;
  #attest_failure: string | null = null;
  #evidence_type: string | null = null;
  #challenge: PendingChallenge | null = null;
  #next_attest_at_ms = Number.POSITIVE_INFINITY;
  #policy_generation = 0;
  #health: HealthStatus | null = null;
  #last_health_ms: number | null = null;
  #last_pass_ms: number | null = null;
  #health_missed = false;
  #last_health_persist_ms = 0;
  #last_seen_wall_ms = Date.now();
  #draining = false;
  #closed = false;
  #in_handshake = false;
  /** Wall-clock time of the upgrade: the register deadline counts from here. */
  readonly accepted_wall_ms = Date.now();

  constructor(
    readonly ws: WebSocket,
    readonly session: MuxSession,
    readonly remote_addr: string,
    readonly connected_at_ms: number,
  ) {}

  get reg(): LinkRegistration | null {
    return this.#reg;
  }
  /** Random per connection, sent in `registered`; every answer to our own challenges is signed over it. */
  get session_id(): string | null {
    return this.#session_id;
  }
  /** The market node this agent is bound to (by its node token or its verified PPID), or null. */
  get node_id(): string | null {
    return this.#node_id;
  }
  get attested(): boolean {
    return this.#attested;
  }
  /** The keyset of the last successful attestation: a reconnect must prove this one to take the agent id over. */
  get keyset(): Keyset | null {
    return this.#keyset;
  }
  /**
   * Registered for an agent id that another live link holds: not indexed, writes no records under that id,
   * and takes the id over only once it attests with the holder's keyset (tunnel/registration.ts).
   */
  /** Was this link's last successful attestation made with `k`? */
  attestedWith(k: Keyset): boolean {
    const a = this.#keyset;
    return a !== null && a.hpke_public_key === k.hpke_public_key && a.receipt_public_key === k.receipt_public_key;
  }
  get contender(): boolean {
    return this.#contender;
  }
  get last_attest_ms(): number | null {
    return this.#last_attest_ms;
  }
  get attest_failure(): string | null {
    return this.#attest_failure;
  }
  get evidence_type(): string | null {
    return this.#evidence_type;
  }
  get challenge(): PendingChallenge | null {
    return this.#challenge;
  }
  get next_attest_at_ms(): number {
    return this.#next_attest_at_ms;
  }
  /** The hub's policy generation when the evidence of the last successful attestation was verified. */
  get policy_generation(): number {
    return this.#policy_generation;
  }
  get health(): HealthStatus | null {
    return this.#health;
  }
  get last_health_ms(): number | null {
    return this.#last_health_ms;
  }
  get last_pass_ms(): number | null {
    return this.#last_pass_ms;
  }
  get health_missed(): boolean {
    return this.#health_missed;
  }
  /** Wall-clock time of the last message or pong (liveness uses real time, never the injected clock). */
  get last_seen_wall_ms(): number {
    return this.#last_seen_wall_ms;
  }
  get draining(): boolean {
    return this.#draining;
  }
  get closed(): boolean {
    return this.#closed;
  }
  /** Counted against the control plane's cap on concurrent handshakes until its first attestation ends. */
  get in_handshake(): boolean {
    return this.#in_handshake;
  }
  get agent_id(): string | null {
    return this.#reg?.agent_id ?? null;
  }

  // ---- Registration (registration.ts) and the registry ----

  register(reg: LinkRegistration, node_id: string | null, session_id: string, contender: boolean): void {
    if (this.#reg !== null) throw new Error(`link of ${this.#reg.agent_id} is registered already`);
    this.#reg = reg;
    this.#node_id = node_id;
    this.#session_id = session_id;
    this.#contender = contender;
  }
  /** The registry binds a link to a market node (node token at register, or the PPID after attestation). */
  bindNode(node_id: string): void {
    this.#node_id = node_id;
  }
  /** A contender took its agent id over (the registry indexes it now). */
  promote(): void {
    this.#contender = false;
  }

  // ---- Attestation (attestation-flow.ts) ----

  beginChallenge(c: PendingChallenge): void {
    if (this.#challenge !== null) throw new Error('a challenge is pending already');
    this.#challenge = c;
  }
  /** Takes the pending challenge (single use: whatever the outcome, it is spent) and stops its timer. */
  takeChallenge(): PendingChallenge | null {
    const c = this.#challenge;
    this.#challenge = null;
    if (c !== null) clearTimeout(c.timer);
    return c;
  }
  attestOk(a: {
    keyset: Keyset;
    evidence_type: string;
    now_ms: number;
    policy_generation: number;
    next_attest_at_ms: number;
  }): void {
    this.#attested = true;
    this.#keyset = a.keyset;
    this.#attest_failure = null;
    this.#last_attest_ms = a.now_ms;
    this.#evidence_type = a.evidence_type;
    this.#policy_generation = a.policy_generation;
    this.#next_attest_at_ms = a.next_attest_at_ms;
  }
  /** Stops routing at once (before anything else can interleave) and keeps the reasons. */
  attestFailed(reasons: string): void {
    this.#attested = false;
    this.#attest_failure = reasons;
  }

  // ---- Health and liveness (the hub) ----

  /** A health report; says whether it changed the state (a transition is recorded as an event). */
  reportHealth(status: HealthStatus, now_ms: number): boolean {
    const transition = this.#health !== status || this.#health_missed;
    this.#health = status;
    this.#last_health_ms = now_ms;
    if (status === 'pass') {
      this.#last_pass_ms = now_ms;
      this.#health_missed = false;
    }
    return transition;
  }
  /** Whether the health row should be written now (a transition, or `interval_ms` since the last write). */
  takeHealthPersist(transition: boolean, now_ms: number, interval_ms: number): boolean {
    if (!transition && now_ms - this.#last_health_persist_ms < interval_ms) return false;
    this.#last_health_persist_ms = now_ms;
    return true;
  }
  healthMissed(): void {
    this.#health_missed = true;
  }
  seen(now_wall_ms: number): void {
    this.#last_seen_wall_ms = now_wall_ms;
  }
  /** No new streams: the agent sent GOAWAY, or a reconnect replaced this link. */
  drain(): void {
    this.#draining = true;
  }
  startHandshake(): void {
    this.#in_handshake = true;
  }
  /** Ends the handshake; true when it was still counted. */
  endHandshake(): boolean {
    if (!this.#in_handshake) return false;
    this.#in_handshake = false;
    return true;
  }
  /** Marks the link closed; false when it was already. */
  markClosed(): boolean {
    if (this.#closed) return false;
    this.#closed = true;
    return true;
  }

  /** Client-relayed challenges by nonce (hex), and their rate: made on the first relay (most agents never get one). */
  private relay_map: Map<string, PendingRelay> | null = null;
  private relay_bucket: TokenBucket | null = null;
  /** Pending relays, without allocating the map. */
  get relayCount(): number {
    return this.relay_map === null ? 0 : this.relay_map.size;
  }
  hasRelay(nonce_hex: string): boolean {
    return this.relay_map?.has(nonce_hex) === true;
  }
  addRelay(nonce_hex: string, relay: PendingRelay): void {
    (this.relay_map ??= new Map()).set(nonce_hex, relay);
  }
  /** Takes a pending relay out (it no longer counts), or undefined when there is none for that nonce. */
  takeRelay(nonce_hex: string): PendingRelay | undefined {
    const relay = this.relay_map?.get(nonce_hex);
    if (relay !== undefined) this.relay_map!.delete(nonce_hex);
    return relay;
  }
  /** Takes every pending relay out (the link is going away). */
  takeAllRelays(): PendingRelay[] {
    if (this.relay_map === null) return [];
    const all = [...this.relay_map.values()];
    this.relay_map.clear();
    return all;
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
