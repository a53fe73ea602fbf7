// The tunnel hub: the socket shell of the tunnel. It accepts agent WebSockets (capping handshakes: admission.ts),
// hands their control messages to dispatch.ts for the controllers (registration.ts, attestation-flow.ts,
// attestation-relay.ts, receipts.ts), keeps liveness and health, sweeps, drains, and is the one place that closes
// agent sockets. The links live in the registry (pure data), and the router picks one for each proxied request:
// the proxy asks the router, never the hub. Controllers get narrow ports built here, not the hub.

import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocketServer, type WebSocket } from 'ws';
import type { Logger } from 'pino';
import {
  CloseCode,
  MAX_CONTROL_MESSAGE_BYTES,
  MAX_WS_MESSAGE_BYTES,
  closeReason,
  MuxSession,
  QueueBudget,
  ResetCode,
  type ControlToAgent,
} from '@easyenclave/protocol';
import type { EvidenceVerifier, Keyset } from '@easyenclave/attestation';
import type { Clock } from '../clock.js';
import type { ControlPlaneConfig } from '../config.js';
import type { Store } from '../store/index.js';
import type { ProxyMetrics } from '../metrics.js';
import { HandshakeCaps, type UpgradeRefusal } from './admission.js';
import { AgentLink } from './link.js';
import { AttestationFlow } from './attestation-flow.js';
import { RelayDesk } from './attestation-relay.js';
import type { MarketHooks } from './ports.js';
import { dispatchControl, type DispatchPort } from './dispatch.js';
import type { ReceiptSink } from './receipts.js';
import { Registrar } from './registration.js';
import { LinkRegistry } from './registry.js';
import { Router } from './router.js';
import { AgentSocket, LinkChannel, remoteAddress, type LinkEvents } from './socket.js';
import { Upkeep } from './upkeep.js';

export interface HubDeps {
  store: Store;
  verifier: EvidenceVerifier;
  clock: Clock;
  config: ControlPlaneConfig;
  log: Logger;
  metrics?: ProxyMetrics;
  /** The links (made by the caller when the market reads them as its live view). */
  registry?: LinkRegistry;
  /** Node binding and routing order; none = agents are bound to no node and ranked alike. */
  market?: MarketHooks | null;
  /** Takes the usage receipts agents send (tunnel/receipts.ts); none: receipts are not accepted. */
  receipts?: ReceiptSink | null;
}

export type { UpgradeRefusal } from './admission.js';

const SWEEP_INTERVAL_MS = 1000;
/** How often lapsed app claims and old health events are pruned (upkeep.ts). */
const PRUNE_INTERVAL_MS = 10 * 60_000;
/** A peer that ignores the close handshake is cut off after this long. */
const CLOSE_GRACE_MS = 2000;
/** The WebSocket library's own message cap closes with a bare 1009; ours (MAX_WS_MESSAGE_BYTES, checked in
 *  onMessage) closes with a reason, so the library's is set higher (docs/protocol.md, "Maximum message size"). */
export const WS_LIBRARY_MAX_PAYLOAD_BYTES = 4 * MAX_WS_MESSAGE_BYTES;

export class TunnelHub implements LinkEvents {
  readonly wss = new WebSocketServer({
    noServer: true,
    maxPayload: WS_LIBRARY_MAX_PAYLOAD_BYTES,
    perMessageDeflate: false,
    clientTracking: false,
    WebSocket: AgentSocket,
  });
  readonly registry: LinkRegistry;
  readonly router: Router;
  readonly relays: RelayDesk;
  /** Request-body bytes queued toward agents, over all links (see QueueBudget). */
  readonly budget: QueueBudget;
  readonly #attestation: AttestationFlow;
  readonly #registrar: Registrar;
  readonly #upkeep: Upkeep;
  readonly #dispatch: DispatchPort;
  /** Links between their upgrade and the end of their first attestation (admission.ts). */
  readonly #handshakes: HandshakeCaps;
  #sweeper: NodeJS.Timeout | null = null;
  #pruner: NodeJS.Timeout | null = null;
  draining = false;

  constructor(readonly deps: HubDeps) {
    const { config, clock, log, metrics, store } = deps;
    const market = deps.market ?? null;
    const registry = (this.registry = deps.registry ?? new LinkRegistry());
    this.#handshakes = new HandshakeCaps(config);
    this.budget = new QueueBudget(config.max_buffered_stream_bytes);
    const send = (link: AgentLink, msg: ControlToAgent) => this.send(link, msg);
    const close = (link: AgentLink, code: number, reason: string) => this.closeLink(link, code, reason);
    this.router = new Router({
      registry,
      clock,
      config,
      rank: market ? (node_id) => market.rank(node_id) : () => undefined,
      closeRetired: (link) => close(link, CloseCode.REPLACED, 'replaced by a newer connection'),
    });
    this.relays = new RelayDesk(send);
    const live = deps; // read at each check: a policy reload (or a test) may swap deps.verifier
    this.#attestation = new AttestationFlow({
      config,
      clock,
      log,
      metrics,
      store,
      get verifier() {
        return live.verifier;
      },
      registry,
      relays: this.relays,
      send,
      close,
      endHandshake: (link) => this.endHandshake(link),
      promote: (link, keyset) => this.promote(link, keyset),
      onAttested: market ? (link, ppid) => market.onAttested(link, ppid) : async () => undefined,
      wake: (app) => this.router.wake(app),
    });
    this.#registrar = new Registrar({
      config,
      clock,
      log,
      store,
      registry,
      market,
      draining: () => this.draining,
      send,
      close,
      closeOwnerLinks: (app, repo, network) => this.closeOwnerLinks(app, repo, network),
      index: (link) => this.index(link),
      challenge: (link, reason) => this.#attestation.challenge(link, reason),
    });
    this.#upkeep = new Upkeep({
      config,
      clock,
      log,
      store,
      registry,
      close,
      cut: (link, reason) => {
        this.closeLink(link, CloseCode.DEAD_PEER, reason);
        link.ws.terminate();
      },
      challenge: (link, reason) => this.#attestation.challenge(link, reason),
      policyGeneration: () => this.#attestation.policyGeneration,
      wake: (app) => this.router.wake(app),
    });
    this.#dispatch = {
      registrar: this.#registrar,
      attestation: this.#attestation,
      upkeep: this.#upkeep,
      receipts: deps.receipts ?? null,
      send,
      close,
      log,
    };
    market?.listen({
      routingChanged: () => this.router.wakeAll(),
      refuse: (link, reason) => close(link, CloseCode.POLICY_VIOLATION, reason),
    });
  }

  // The registry's indexes, for readers that take the hub (the HTTP routes, launchers, tests).
  get links(): ReadonlySet<AgentLink> {
    return this.registry.links;
  }
  get byApp(): ReadonlyMap<string, readonly AgentLink[]> {
    return this.registry.byApp;
  }
  get byAgentId(): ReadonlyMap<string, AgentLink> {
    return this.registry.byAgentId;
  }
  get knownApps(): LinkRegistry['knownApps'] {
    return this.registry.knownApps;
  }

  async start(): Promise<void> {
    const { store, clock, log } = this.deps;
    await store.markAllAgentsDisconnected(clock.now());
    for (const app of await store.listApps()) this.registry.noteApp(app.app_name, app.repo, app.network);
    this.#sweeper = setInterval(() => this.sweep(), SWEEP_INTERVAL_MS);
    this.#sweeper.unref();
    this.#pruner = setInterval(() => {
      this.prune().catch((err: unknown) => log.warn({ err }, 'pruning app claims and health events failed'));
    }, PRUNE_INTERVAL_MS);
    this.#pruner.unref();
  }

  /** Prunes lapsed app claims and old health events now (also every PRUNE_INTERVAL_MS). */
  prune(): Promise<{ apps: string[]; health_events: number }> {
    return this.#upkeep.prune();
  }

  /** HTTP upgrade on /v1/tunnel: null when taken, or why not (the server answers that in HTTP). */
  handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): UpgradeRefusal | null {
    if (this.draining) return 'draining';
    if (this.#handshakes.full(remoteAddress(req))) return 'too_many_handshakes';
    this.wss.handleUpgrade(req, socket, head, (ws) => this.accept(ws, req));
    return null;
  }

  private accept(ws: WebSocket, req: IncomingMessage): void {
    const { config, clock } = this.deps;
    const channel = new LinkChannel(this, ws, req.socket, config.max_header_bytes, this.budget);
    const link = new AgentLink(ws, new MuxSession(channel), remoteAddress(req), clock.now());
    channel.link = link;
    this.registry.add(link);
    this.#handshakes.begin(link.remote_addr);
    link.startHandshake();
    // Its message, pong, error and close events now reach onMessage / onClosed (see AgentSocket).
    (ws as AgentSocket).link = link;
    (ws as AgentSocket).events = this;
  }

  /** A WebSocket message from an agent: binary = mux frames, text = a JSON control message. */
  onMessage(link: AgentLink, data: Buffer, isBinary: boolean): void {
    link.seen(Date.now());
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
    void dispatchControl(this.#dispatch, link, data.toString('utf8'));
  }

  onSocketError(link: AgentLink, err: Error): void {
    this.deps.log.debug({ err: err.message, agent_id: link.agent_id }, 'agent socket error');
  }

  onAgentGoaway(link: AgentLink): void {
    link.drain(); // the agent is shutting down: no new streams
    this.deps.log.info({ agent_id: link.agent_id }, 'agent draining');
  }

  onProtocolError(link: AgentLink, err: Error): void {
    this.closeLink(link, CloseCode.PROTOCOL_ERROR, err.message);
  }

  send(link: AgentLink, msg: ControlToAgent): void {
    if (link.ws.readyState === link.ws.OPEN) link.ws.send(JSON.stringify(msg));
  }

  /** Indexes a registered link; a link of the same agent id it displaced is retired (after, never before). */
  private index(link: AgentLink): void {
    const displaced = this.registry.index(link);
    if (displaced !== null) this.retire(displaced);
  }

  /**
   * A contender (a second link for a live agent id, see registration.ts) passed attestation with `keyset`. It
   * takes the id over when it proved the holder's keyset (the same agent process, reconnecting) or the holder
   * is gone; otherwise it is refused and false is returned. Indexed before the store write, so the retired
   * holder records no disconnect.
   */
  private async promote(link: AgentLink, keyset: Keyset): Promise<boolean> {
    const reg = link.reg!;
    const holder = this.registry.byAgentId.get(reg.agent_id);
    if (holder !== undefined && holder !== link && !holder.closed && !holder.attestedWith(keyset)) return false;
    link.promote();
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

  /** A reconnect with the same agent id replaced this link: let its streams finish, then close it. */
  private retire(old: AgentLink): void {
    old.drain();
    if (old.session.activeStreams === 0) this.closeLink(old, CloseCode.REPLACED, 'replaced by a newer connection');
  }

  /** An app name passed to a new owner: the old owner's links (never attested, or not lately) go. */
  private closeOwnerLinks(app_name: string, repo: string, network: string): void {
    for (const l of [...this.registry.links])
      if (l.reg?.app_name === app_name && l.reg.repo === repo && l.reg.network === network)
        this.closeLink(l, CloseCode.REGISTRATION_REFUSED, 'the app name passed to another owner');
  }

  /** The link finished its first attestation (or went away): it no longer counts against the handshake caps. */
  private endHandshake(link: AgentLink): void {
    if (link.endHandshake()) this.#handshakes.end(link.remote_addr);
  }

  /** Closes an agent's socket (the only place that does) and takes the link out of routing. */
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
    setTimeout(() => link.ws.terminate(), CLOSE_GRACE_MS).unref();
    this.detach(link, reason);
  }

  /** The agent's socket closed (AgentSocket). */
  onClosed(link: AgentLink, code: number, reason: string): void {
    this.endHandshake(link);
    this.deps.log.info({ agent_id: link.agent_id, app_name: link.reg?.app_name, code, reason }, 'agent disconnected');
    this.detach(link, reason || `closed ${code}`);
  }

  /** Removes a link from routing and fails its streams. Idempotent. */
  private detach(link: AgentLink, reason: string): void {
    if (!link.markClosed()) return;
    this.endHandshake(link);
    link.takeChallenge();
    this.relays.failAll(link);
    link.session.destroy(ResetCode.INTERNAL_ERROR, 'agent disconnected');
    const reg = link.reg;
    if (this.registry.remove(link) && reg !== null) {
      this.deps.store.markAgentDisconnected(reg.agent_id, this.deps.clock.now(), reason).catch((err) => {
        this.deps.log.error({ err }, 'failed to record disconnect');
      });
    }
  }

  /** The attestation policy changed: every attested agent is challenged again (attestation-flow.ts). */
  reattestAll(): number {
    return this.#attestation.reattestAll();
  }

  /** Liveness, the register deadline, re-attestation and the health timeout (also every SWEEP_INTERVAL_MS). */
  sweep(): void {
    this.#upkeep.sweep();
  }

  /** No new agents; GOAWAY tells connected ones to dial again (a successor, after a handoff). Idempotent. */
  beginDrain(): void {
    if (this.draining) return;
    this.draining = true;
    for (const link of this.registry.links) link.session.goaway(ResetCode.NO_ERROR);
  }

  /** Graceful shutdown: GOAWAY to every agent, wait for in-flight streams (bounded), then close. */
  async drain(timeout_ms: number): Promise<void> {
    this.beginDrain();
    const deadline = Date.now() + timeout_ms;
    while (Date.now() < deadline && [...this.registry.links].some((l) => l.session.activeStreams > 0)) {
      await new Promise((r) => setTimeout(r, 20));
    }
    this.close();
  }

  close(): void {
    if (this.#sweeper) clearInterval(this.#sweeper);
    this.#sweeper = null;
    if (this.#pruner) clearInterval(this.#pruner);
    this.#pruner = null;
    this.router.close();
    for (const link of [...this.registry.links])
      this.closeLink(link, CloseCode.GOING_AWAY, 'control plane shutting down');
  }
}
