// The tunnel hub: accepts agent WebSockets, runs registration and the attestation challenge flow, tracks
// liveness and health, and hands the proxy a routable agent for an app (power of two choices on in-flight
// streams), making requests wait briefly when an app's agents are reconnecting or at their stream limit.

import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocket, WebSocketServer } from 'ws';
import type { Logger } from 'pino';
import {
  CloseCode,
  DEAD_AFTER_MS,
  MAX_CONTROL_MESSAGE_BYTES,
  MAX_WS_MESSAGE_BYTES,
  closeReason,
  MuxSession,
  PING_INTERVAL_MS,
  QueueBudget,
  ResetCode,
  parseAgentMessage,
  TickBatcher,
  type SessionOptions,
  type ControlToAgent,
} from '@easyenclave/protocol';
import type { EvidenceVerifier, Keyset } from '@easyenclave/attestation';
import type { Clock } from '../clock.js';
import type { ControlPlaneConfig } from '../config.js';
import type { Store } from '../store/index.js';
import type { ApiError } from '../http-errors.js';
import { rawErrorResponse } from '../http-errors.js';
import { appStatus, type AppStatusView } from '../app-status.js';
import { handleReceipts, type ReceiptSink } from './receipts.js';
import { AgentLink, TokenBucket } from './link.js';
import { APP_CLAIM_UNATTESTED_TTL_MS, DAY_MS, MAX_TRACKED_CLAIM_ADDRESSES } from '../app-claims.js';
import type { ProxyMetrics } from '../metrics.js';
import { handleRegister } from './registration.js';
import { challenge, handleAttestResponse } from './attestation-flow.js';
import { failRelays } from './attestation-relay.js';

/** What the market (docs/market.md) plugs into the tunnel: agent-to-node binding and the routing order. */
export interface MarketHooks {
  /** A `register` carrying a node token: bind the agent to the token's node, or refuse. */
  bindToken(
    a: { agent_id: string; network: string; app_name: string },
    node_token: string,
  ): Promise<{ ok: true; node_id: string } | { ok: false; code: string; message: string }>;
  /** The node an agent id is bound to by a node token, if any: such an id needs that token to register. */
  tokenBinding?(agent_id: string): Promise<string | undefined>;
  /** A successful attestation (sealed networks bind agents by the PPID of the verified quote here). */
  onAttested?(link: AgentLink, ppid: string | undefined): Promise<void>;
  /** Routing order of a node's agents, lower first; undefined = the node may receive no traffic. O(1): a cache. */
  rank(node_id: string): number | undefined;
}

/** The peer's address as one key per host (an IPv4 peer on a dual-stack socket appears as ::ffff:a.b.c.d). */
function remoteAddress(socket: Duplex): string {
  const a = (socket as { remoteAddress?: string }).remoteAddress ?? 'unknown';
  return a.startsWith('::ffff:') ? a.slice(7) : a;
}

const sameKeyset = (a: Keyset | null, b: Keyset): boolean =>
  a !== null && a.hpke_public_key === b.hpke_public_key && a.receipt_public_key === b.receipt_public_key;

/** Agents not bound to any node come after every eligible node (and share one rank: today's behaviour). */
const UNBOUND_RANK = Number.MAX_SAFE_INTEGER;

export interface HubDeps {
  store: Store;
  verifier: EvidenceVerifier;
  clock: Clock;
  config: ControlPlaneConfig;
  log: Logger;
  metrics?: ProxyMetrics;
}

interface Waiter {
  exclude: ReadonlySet<AgentLink> | null;
  resolve: (r: AgentLink | ApiError) => void;
  timer: NodeJS.Timeout;
}

/**
 * An agent's WebSocket. Its events go straight to the hub's methods instead of through four listener closures
 * per connection (those, their shared scope and the grown listener table cost ~350 B per idle agent). Events
 * the hub does not handle, and any before the link is attached, take the normal EventEmitter path.
 */
class AgentSocket extends WebSocket {
  hub: TunnelHub | null = null;
  link: AgentLink | null = null;

  override emit(event: string | symbol, a?: unknown, b?: unknown): boolean {
    const hub = this.hub;
    const link = this.link;
    if (hub === null || link === null)
      return arguments.length <= 1
        ? super.emit(event)
        : arguments.length === 2
          ? super.emit(event, a)
          : super.emit(event, a, b);
    switch (event) {
      case 'message':
        hub.onMessage(link, a as Buffer, b as boolean);
        return true;
      case 'pong':
        link.last_seen_wall_ms = Date.now();
        return true;
      case 'error':
        hub.deps.log.debug({ err: (a as Error).message, agent_id: link.agent_id }, 'agent socket error');
        return true;
      case 'close':
        hub.endHandshake(link);
        hub.onClosed(link, a as number, (b as Buffer).toString('utf8'));
        return true;
      default:
        return arguments.length <= 1
          ? super.emit(event)
          : arguments.length === 2
            ? super.emit(event, a)
            : super.emit(event, a, b);
    }
  }
}

/**
 * A link's session options and transport in one object with methods, not closures (~0.5 KiB less per idle
 * agent): frames go out batched per event-loop iteration (TickBatcher), session events reach the hub.
 */
class LinkChannel extends TickBatcher implements SessionOptions {
  readonly role = 'opener' as const;
  readonly max_header_bytes: number;
  readonly budget: QueueBudget;
  link: AgentLink | null = null;

  constructor(
    private readonly hub: TunnelHub,
    private readonly ws: WebSocket,
    socket: Duplex,
  ) {
    super(socket);
    this.max_header_bytes = hub.deps.config.max_header_bytes;
    this.budget = hub.budget;
  }

  send(frame: Buffer, cb: (err?: Error | null) => void): void {
    this.hold();
    this.ws.send(frame, BINARY, cb);
  }

  onGoaway(): void {
    if (this.link === null) return;
    this.link.draining = true; // the agent is shutting down: no new streams
    this.hub.deps.log.info({ agent_id: this.link.agent_id }, 'agent draining');
  }

  onProtocolError(err: Error): void {
    if (this.link !== null) this.hub.closeLink(this.link, CloseCode.PROTOCOL_ERROR, err.message);
  }
}

const SWEEP_INTERVAL_MS = 1000;
/** How often lapsed claims and old health events are pruned, and how many claims at most per run. */
const PRUNE_INTERVAL_MS = 10 * 60_000;
const MAX_PRUNED_CLAIMS = 1000;
/** Health events are kept at least this long (and two settlement periods plus grace when that is longer). */
const MIN_HEALTH_EVENT_RETENTION_MS = 90 * DAY_MS;

/** New app-name claims per remote address: a token bucket each, for at most MAX_TRACKED_CLAIM_ADDRESSES. */
class ClaimLimiter {
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
/** The WebSocket library's own message cap closes with a bare 1009; ours (MAX_WS_MESSAGE_BYTES, checked in
 *  onMessage) closes with a reason, so the library's is set higher (docs/protocol.md, "Maximum message size"). */
export const WS_LIBRARY_MAX_PAYLOAD_BYTES = 4 * MAX_WS_MESSAGE_BYTES;
const MAX_WAITERS_PER_APP = 4096;
const BINARY = { binary: true } as const;

export class TunnelHub {
  readonly wss = new WebSocketServer({
    noServer: true,
    maxPayload: WS_LIBRARY_MAX_PAYLOAD_BYTES,
    perMessageDeflate: false,
    clientTracking: false,
    WebSocket: AgentSocket,
  });
  readonly links = new Set<AgentLink>();
  /** Request-body bytes queued toward agents, over all links (see QueueBudget). */
  readonly budget: QueueBudget;
  /** Registered links per app: a plain array (most apps have one or a few agents; a Set costs ~150 B more). */
  readonly byApp = new Map<string, AgentLink[]>();
  readonly byAgentId = new Map<string, AgentLink>();
  /** App name → owning repo, mirrored from the store so the hot path never queries the database. */
  readonly knownApps = new Map<string, { repo: string; network: string }>();
  private readonly waiters = new Map<string, Waiter[]>();
  /** Links between their upgrade and the end of their first attestation, in all and per remote address. A
   *  link counts only while it is in that handshake: the register deadline, the attestation deadline or its
   *  close ends it (endHandshake). */
  private handshakes = 0;
  private readonly handshakesByAddr = new Map<string, number>();
  /** New app-name claims per remote address (registration.ts). */
  readonly claims: ClaimLimiter;
  /** Bumped by reattestAll (attestation policy changes); links attested under an older one are re-challenged. */
  policy_generation = 0;
  private sweeper: NodeJS.Timeout | null = null;
  private pruner: NodeJS.Timeout | null = null;
  draining = false;
  /** Set by the control plane once the market is open. */
  market: MarketHooks | null = null;
  /** Takes the usage receipts agents send (tunnel/receipts.ts); null: receipts are not accepted. */
  receipts: ReceiptSink | null = null;

  constructor(readonly deps: HubDeps) {
    this.budget = new QueueBudget(deps.config.max_buffered_stream_bytes);
    this.claims = new ClaimLimiter(deps.config.app_claims_per_hour);
  }

  async start(): Promise<void> {
    const { store, clock } = this.deps;
    await store.markAllAgentsDisconnected(clock.now());
    for (const app of await store.listApps())
      this.knownApps.set(app.app_name, { repo: app.repo, network: app.network });
    this.sweeper = setInterval(() => this.sweep(), SWEEP_INTERVAL_MS);
    this.sweeper.unref();
    this.pruner = setInterval(() => {
      this.prune().catch((err: unknown) => this.deps.log.warn({ err }, 'pruning app claims and health events failed'));
    }, PRUNE_INTERVAL_MS);
    this.pruner.unref();
  }

  /**
   * Drops lapsed never-attested app claims (with their agents' rows and records) and health events past their
   * retention, so squatted names and old events do not pile up; also forgets the dropped names. Returns what
   * was deleted.
   */
  async prune(): Promise<{ apps: string[]; health_events: number }> {
    const { store, clock, config } = this.deps;
    const now = clock.now();
    const apps = await store.pruneUnattestedClaims(now - APP_CLAIM_UNATTESTED_TTL_MS, MAX_PRUNED_CLAIMS);
    for (const name of apps) if (!this.byApp.has(name)) this.knownApps.delete(name);
    const retention_ms = Math.max(
      MIN_HEALTH_EVENT_RETENTION_MS,
      2 * (config.settlement_period_ms + config.settlement_grace_ms),
    );
    const health_events = await store.pruneHealthEvents(now - retention_ms);
    return { apps, health_events };
  }

  /** An app name passed to a new owner: the old owner's links (never attested, or not lately) go. */
  closeOwnerLinks(app_name: string, repo: string, network: string): void {
    for (const l of [...(this.byApp.get(app_name) ?? [])])
      if (l.reg!.repo === repo && l.reg!.network === network)
        this.closeLink(l, CloseCode.REGISTRATION_REFUSED, 'the app name passed to another owner');
    for (const l of this.links)
      if (l.contender && l.reg?.app_name === app_name && l.reg.repo === repo)
        this.closeLink(l, CloseCode.REGISTRATION_REFUSED, 'the app name passed to another owner');
  }

  /** HTTP upgrade on /v1/tunnel. Caps concurrent handshakes so a restart does not stampede. */
  handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    if (this.draining) {
      socket.end(
        rawErrorResponse({
          status: 503,
          code: 'draining',
          message: 'control plane is shutting down',
          retry_after_s: 1,
        }),
      );
      return;
    }
    const addr = remoteAddress(req.socket);
    const { max_handshakes, max_handshakes_per_address } = this.deps.config;
    if (this.handshakes >= max_handshakes || (this.handshakesByAddr.get(addr) ?? 0) >= max_handshakes_per_address) {
      socket.end(
        rawErrorResponse({
          status: 503,
          code: 'too_many_handshakes',
          message: 'too many agents connecting at once',
          retry_after_s: 1,
        }),
      );
      return;
    }
    this.wss.handleUpgrade(req, socket, head, (ws) => this.accept(ws, req));
  }

  private accept(ws: WebSocket, req: IncomingMessage): void {
    const now = this.deps.clock.now();
    const channel = new LinkChannel(this, ws, req.socket);
    const link = new AgentLink(ws, new MuxSession(channel), remoteAddress(req.socket), now);
    channel.link = link;
    this.links.add(link);
    this.handshakes++;
    this.handshakesByAddr.set(link.remote_addr, (this.handshakesByAddr.get(link.remote_addr) ?? 0) + 1);
    link.in_handshake = true;
    // Its message, pong, error and close events now reach onMessage / onClosed (see AgentSocket).
    (ws as AgentSocket).link = link;
    (ws as AgentSocket).hub = this;
  }

  /** A WebSocket message from an agent: binary = mux frames, text = a JSON control message. */
  onMessage(link: AgentLink, data: Buffer, isBinary: boolean): void {
    link.last_seen_wall_ms = Date.now();
    const limit = isBinary ? MAX_WS_MESSAGE_BYTES : MAX_CONTROL_MESSAGE_BYTES;
    if (data.length > limit)
      return this.closeLink(
        link,
        CloseCode.MESSAGE_TOO_BIG,
        `${isBinary ? 'binary' : 'text'} message of ${data.length} bytes exceeds ${limit}`,
      );
    if (isBinary) {
      if (link.reg === null) return this.closeLink(link, CloseCode.NOT_REGISTERED, 'register before sending frames');
      link.session.handleFrame(data);
      return;
    }
    if (!link.takeControlToken(Date.now()))
      return this.closeLink(link, CloseCode.POLICY_VIOLATION, 'too many control messages');
    void this.onControl(link, data.toString('utf8'));
  }

  private async onControl(link: AgentLink, text: string): Promise<void> {
    try {
      const parsed = parseAgentMessage(text);
      if (!parsed.ok) {
        // Tell an agent that has not registered yet why, so its operator sees it in the agent's log.
        if (link.reg === null) this.send(link, { type: 'error', code: 'invalid_message', message: parsed.error });
        return this.closeLink(link, CloseCode.PROTOCOL_ERROR, parsed.error);
      }
      const msg = parsed.message;
      if (msg.type === 'register') {
        if (link.reg !== null) return this.closeLink(link, CloseCode.PROTOCOL_ERROR, 'already registered');
        await handleRegister(this, link, msg);
      } else if (link.reg === null) {
        this.closeLink(link, CloseCode.NOT_REGISTERED, `send register before ${msg.type}`);
      } else if (msg.type === 'attest_response') {
        await handleAttestResponse(this, link, msg);
      } else if (msg.type === 'receipts') {
        await handleReceipts(this, link, msg);
      } else {
        await this.onHealth(link, msg.status, msg.detail);
      }
    } catch (err) {
      this.deps.log.error({ err, agent_id: link.agent_id }, 'control message handling failed');
      this.closeLink(link, CloseCode.INTERNAL, 'internal error');
    }
  }

  private async onHealth(link: AgentLink, status: 'pass' | 'fail', detail: string | undefined): Promise<void> {
    const now = this.deps.clock.now();
    const transition = link.health !== status || link.health_missed;
    link.health = status;
    link.last_health_ms = now;
    if (status === 'pass') {
      link.last_pass_ms = now;
      link.health_missed = false;
    }
    if ((transition || now - link.last_health_persist_ms >= 30_000) && this.isCurrent(link)) {
      link.last_health_persist_ms = now;
      const reg = link.reg!;
      await this.deps.store.recordHealth({
        agent_id: reg.agent_id,
        app_name: reg.app_name,
        status,
        now_ms: now,
        event: transition,
        ...(detail ? { detail } : {}),
      });
    }
    if (status === 'pass') this.wake(link.reg!.app_name);
  }

  send(link: AgentLink, msg: ControlToAgent): void {
    if (link.ws.readyState === link.ws.OPEN) link.ws.send(JSON.stringify(msg));
  }

  /**
   * Called once a link has registered; indexes it for routing. The new link is indexed *before* the previous
   * one of the same agent id is retired, so the old link's detach sees it is no longer current and records no
   * disconnect (a reconnect over a still-open socket is not an outage).
   */
  index(link: AgentLink): void {
    const reg = link.reg!;
    const prev = this.byAgentId.get(reg.agent_id);
    this.byAgentId.set(reg.agent_id, link);
    const list = this.byApp.get(reg.app_name);
    if (!list) this.byApp.set(reg.app_name, [link]);
    else if (!list.includes(link)) list.push(link);
    if (prev && prev !== link) this.retire(prev);
  }

  /**
   * A contender (a second link for a live agent id, see registration.ts) passed attestation with `keyset`. It
   * takes the id over when it proved the holder's keyset (the same agent process, reconnecting) or the holder
   * is gone; otherwise it is refused and false is returned. Indexed before the store write, so the retired
   * holder records no disconnect.
   */
  async promote(link: AgentLink, keyset: Keyset): Promise<boolean> {
    const reg = link.reg!;
    const holder = this.byAgentId.get(reg.agent_id);
    if (holder !== undefined && holder !== link && !holder.closed && !sameKeyset(holder.keyset, keyset)) return false;
    link.contender = false;
    this.index(link);
    await this.deps.store.upsertAgentConnected({
      agent_id: reg.agent_id,
      app_name: reg.app_name,
      repo: reg.repo,
      release_tag: reg.release_tag,
      network: reg.network,
      remote_addr: link.remote_addr,
      now_ms: this.deps.clock.now(),
    });
    return true;
  }

  /** Only the current link of an agent id writes that agent's records (a retired one is draining away). */
  isCurrent(link: AgentLink): boolean {
    return link.reg !== null && this.byAgentId.get(link.reg.agent_id) === link;
  }

  /** A reconnect with the same agent id replaces the old socket: let its streams finish, then close it. */
  private retire(old: AgentLink): void {
    old.draining = true;
    if (old.session.activeStreams === 0) this.closeLink(old, CloseCode.REPLACED, 'replaced by a newer connection');
  }

  /** The link finished its first attestation (or went away): it no longer counts against the handshake cap. */
  endHandshake(link: AgentLink): void {
    if (!link.in_handshake) return;
    link.in_handshake = false;
    this.handshakes--;
    const addr = link.remote_addr;
    const n = (this.handshakesByAddr.get(addr) ?? 0) - 1;
    if (n > 0) this.handshakesByAddr.set(addr, n);
    else this.handshakesByAddr.delete(addr);
  }

  closeLink(link: AgentLink, code: number, reason: string): void {
    if (link.closed) return;
    if (code !== CloseCode.NORMAL && code !== CloseCode.GOING_AWAY && code !== CloseCode.REPLACED) {
      this.deps.log.warn(
        { agent_id: link.agent_id, app_name: link.reg?.app_name, code, reason },
        'closing agent connection',
      );
    }
    try {
      link.ws.close(code, closeReason(reason));
    } catch {
      link.ws.terminate();
    }
    // A peer that ignores the close handshake is cut off.
    setTimeout(() => link.ws.terminate(), 2000).unref();
    this.detach(link, reason);
  }

  /** The agent's socket closed (AgentSocket). */
  onClosed(link: AgentLink, code: number, reason: string): void {
    this.deps.log.info({ agent_id: link.agent_id, app_name: link.reg?.app_name, code, reason }, 'agent disconnected');
    this.detach(link, reason || `closed ${code}`);
  }

  /** Removes a link from routing and fails its streams. Idempotent. */
  private detach(link: AgentLink, reason: string): void {
    if (link.closed) return;
    link.closed = true;
    this.endHandshake(link);
    if (link.challenge) clearTimeout(link.challenge.timer);
    link.challenge?.on_evidence?.(Buffer.alloc(0), undefined, false, ['agent disconnected']);
    link.challenge = null;
    failRelays(link);
    this.links.delete(link);
    link.session.destroy(ResetCode.INTERNAL_ERROR, 'agent disconnected');
    const reg = link.reg;
    if (!reg) return;
    const list = this.byApp.get(reg.app_name);
    const i = list ? list.indexOf(link) : -1;
    if (i >= 0) list!.splice(i, 1);
    if (list?.length === 0) this.byApp.delete(reg.app_name);
    if (this.byAgentId.get(reg.agent_id) === link) {
      this.byAgentId.delete(reg.agent_id);
      this.deps.store.markAgentDisconnected(reg.agent_id, this.deps.clock.now(), reason).catch((err) => {
        this.deps.log.error({ err }, 'failed to record disconnect');
      });
    }
  }

  // ---- Routing ----

  status(app_name: string): AppStatusView {
    return appStatus(this.byApp.get(app_name) ?? [], this.deps.clock.now(), this.deps.config);
  }

  /**
   * Among routable agents with a free stream slot, those of the best-ranked market node (lowest effective
   * price among eligible nodes; agents of ineligible nodes are skipped, unbound agents come last), then power
   * of two choices on in-flight streams. A full or excluded node fails over to the next one.
   */
  pick(app_name: string, exclude: ReadonlySet<AgentLink> | null): AgentLink | null {
    const set = this.byApp.get(app_name);
    if (!set) return null;
    const now = this.deps.clock.now();
    const { health_timeout_ms, max_streams_per_agent } = this.deps.config;
    const market = this.market;
    let a: AgentLink | null = null;
    let b: AgentLink | null = null;
    let seen = 0;
    let best = Number.POSITIVE_INFINITY;
    for (const l of set) {
      if (exclude?.has(l) || !l.routable(now, health_timeout_ms) || l.session.activeStreams >= max_streams_per_agent)
        continue;
      let rank = UNBOUND_RANK;
      if (l.node_id !== null) {
        const r = market?.rank(l.node_id);
        if (r === undefined) continue;
        rank = r;
      }
      if (rank > best) continue;
      if (rank < best) {
        best = rank;
        seen = 0;
        a = b = null;
      }
      // Reservoir-sample two distinct candidates in one pass.
      seen++;
      if (seen === 1) a = l;
      else if (seen === 2) b = l;
      else if (Math.random() * seen < 2) {
        if (Math.random() < 0.5) a = l;
        else b = l;
      }
    }
    if (a === null || b === null) return a;
    const la = a.session.activeStreams;
    const lb = b.session.activeStreams;
    if (la !== lb) return la < lb ? a : b;
    return Math.random() < 0.5 ? a : b; // ties at random, so light sequential traffic spreads too
  }

  /** A routable agent now, or after waiting up to queue_timeout_ms for one; otherwise the error to send. */
  acquire(
    app_name: string,
    exclude: ReadonlySet<AgentLink> | null,
  ): AgentLink | ApiError | Promise<AgentLink | ApiError> {
    const link = this.pick(app_name, exclude);
    if (link) return link;
    if (!this.knownApps.has(app_name))
      return { status: 404, code: 'unknown_app', message: `no app named "${app_name}"` };
    const view = this.status(app_name);
    if (view.status === 'expired' && view.connected_agents > 0) {
      return { status: 403, code: 'registration_expired', message: `the registration of "${app_name}" has expired` };
    }
    let list = this.waiters.get(app_name);
    if (!list) this.waiters.set(app_name, (list = []));
    if (list.length >= MAX_WAITERS_PER_APP) return this.unavailable(app_name, exclude);
    return new Promise((resolve) => {
      const w: Waiter = {
        exclude,
        resolve,
        timer: setTimeout(() => {
          const l = this.waiters.get(app_name);
          const i = l ? l.indexOf(w) : -1;
          if (i >= 0) l!.splice(i, 1);
          resolve(this.unavailable(app_name, exclude));
        }, this.deps.config.queue_timeout_ms),
      };
      list.push(w);
    });
  }

  /** The error for "no agent could take it": names the reason the app is not serving. */
  unavailable(app_name: string, exclude: ReadonlySet<AgentLink> | null): ApiError {
    const view = this.status(app_name);
    if (view.status === 'active' || view.status === 'expiring') {
      if (this.onlyIneligibleNodes(app_name))
        return {
          status: 503,
          code: 'no_eligible_node',
          message: `no agent of "${app_name}" runs on an eligible node`,
          retry_after_s: 5,
        };
      const why =
        exclude && exclude.size > 0 ? 'no other agent could take the request' : 'all agents are at their stream limit';
      return { status: 503, code: 'agent_overloaded', message: why, retry_after_s: 1 };
    }
    const messages: Record<string, ApiError> = {
      offline: { status: 503, code: 'no_agent', message: `no agent of "${app_name}" is connected`, retry_after_s: 5 },
      draining: {
        status: 503,
        code: 'agent_draining',
        message: `the agents of "${app_name}" are draining`,
        retry_after_s: 1,
      },
      unhealthy: {
        status: 503,
        code: 'unhealthy',
        message: `no agent of "${app_name}" is passing health checks`,
        retry_after_s: 5,
      },
      unattested: { status: 403, code: 'not_attested', message: `no agent of "${app_name}" holds a valid attestation` },
      expired: { status: 403, code: 'registration_expired', message: `the registration of "${app_name}" has expired` },
    };
    return messages[view.status]!;
  }

  /** Every routable agent of the app is bound to a node the market gives no traffic. */
  private onlyIneligibleNodes(app_name: string): boolean {
    const now = this.deps.clock.now();
    let any = false;
    for (const l of this.byApp.get(app_name) ?? []) {
      if (!l.routable(now, this.deps.config.health_timeout_ms)) continue;
      if (l.node_id === null || this.market?.rank(l.node_id) !== undefined) return false;
      any = true;
    }
    return any;
  }

  /** The routing order changed (stake, slash, ban, trust): let waiting requests try again. */
  wakeAll(): void {
    for (const app of [...this.waiters.keys()]) this.wake(app);
  }

  /** A proxied stream on `link` finished: its slot is free, and a retired link may now close. */
  streamDone(link: AgentLink, app_name: string): void {
    if (
      link.draining &&
      !link.closed &&
      link.session.activeStreams === 0 &&
      this.byAgentId.get(link.agent_id ?? '') !== link
    ) {
      this.closeLink(link, CloseCode.REPLACED, 'replaced by a newer connection');
    }
    this.wake(app_name);
  }

  /** Something changed that may let waiting requests through (agent ready, stream finished). */
  wake(app_name: string): void {
    const list = this.waiters.get(app_name);
    if (!list) return;
    while (list.length > 0) {
      const w = list[0]!;
      const link = this.pick(app_name, w.exclude);
      if (!link) break;
      list.shift();
      clearTimeout(w.timer);
      w.resolve(link);
    }
    if (list.length === 0) this.waiters.delete(app_name);
  }

  /**
   * The attestation policy changed: challenge every attested agent now (reason 'policy'). An agent with a
   * challenge already pending is judged under the new policy when it answers; one whose evidence was being
   * verified during the change is challenged again by the sweep. Returns how many challenges were sent now.
   */
  reattestAll(): number {
    this.policy_generation++;
    let sent = 0;
    for (const link of this.links) {
      if (link.attested && !link.closed && !link.challenge && challenge(this, link, 'policy')) sent++;
    }
    this.deps.log.info(
      { challenged: sent, generation: this.policy_generation },
      're-attesting connected agents after a policy change',
    );
    return sent;
  }

  // ---- Periodic work: liveness, attestation interval, health timeout ----

  sweep(): void {
    const now = this.deps.clock.now();
    const { health_timeout_ms } = this.deps.config;
    for (const link of this.links) {
      const silent = Date.now() - link.last_seen_wall_ms;
      if (silent > DEAD_AFTER_MS) {
        this.closeLink(link, CloseCode.DEAD_PEER, 'no traffic or pong for too long');
        link.ws.terminate();
        continue;
      }
      if (silent > PING_INTERVAL_MS) link.ws.ping();
      if (link.reg === null && Date.now() - link.accepted_wall_ms > this.deps.config.register_deadline_ms) {
        this.closeLink(link, CloseCode.NOT_REGISTERED, 'no register message in time');
        continue;
      }
      const reg = link.reg;
      if (!reg || !this.isCurrent(link)) continue;
      if (link.attested && !link.challenge && link.policy_generation < this.policy_generation)
        challenge(this, link, 'policy');
      else if (link.attested && !link.challenge && now >= link.next_attest_at_ms) challenge(this, link, 'interval');
      const last_ok = link.last_pass_ms ?? link.connected_at_ms;
      if (!link.health_missed && link.attested && now - last_ok > health_timeout_ms) {
        link.health_missed = true;
        this.deps.log.warn({ agent_id: reg.agent_id, app_name: reg.app_name }, 'health timeout: agent gets no traffic');
        this.deps.store
          .recordHealth({
            agent_id: reg.agent_id,
            app_name: reg.app_name,
            status: 'missed',
            now_ms: now,
            event: true,
            detail: `no passing health for ${Math.round(health_timeout_ms / 1000)} s`,
          })
          .catch((err) => this.deps.log.error({ err }, 'failed to record missed health'));
      }
    }
  }

  /** Graceful shutdown: GOAWAY to every agent, wait for in-flight streams (bounded), then close. */
  /** No new agents; GOAWAY tells connected ones to dial again (a successor, after a handoff). Idempotent. */
  beginDrain(): void {
    if (this.draining) return;
    this.draining = true;
    for (const link of this.links) link.session.goaway(ResetCode.NO_ERROR);
  }

  async drain(timeout_ms: number): Promise<void> {
    this.beginDrain();
    const deadline = Date.now() + timeout_ms;
    while (Date.now() < deadline && [...this.links].some((l) => l.session.activeStreams > 0)) {
      await new Promise((r) => setTimeout(r, 20));
    }
    this.close();
  }

  close(): void {
    if (this.sweeper) clearInterval(this.sweeper);
    this.sweeper = null;
    if (this.pruner) clearInterval(this.pruner);
    this.pruner = null;
    for (const list of this.waiters.values()) {
      for (const w of list) {
        clearTimeout(w.timer);
        w.resolve({ status: 503, code: 'shutting_down', message: 'control plane is shutting down', retry_after_s: 1 });
      }
    }
    this.waiters.clear();
    for (const link of [...this.links]) this.closeLink(link, CloseCode.GOING_AWAY, 'control plane shutting down');
  }
}
