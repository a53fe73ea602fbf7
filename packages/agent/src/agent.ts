// The agent: dials the control plane (never listens), registers, answers attestation challenges, sends
// health heartbeats and serves proxied streams against its backend. It reconnects forever with full-jitter
// backoff, and on the control plane's GOAWAY it dials a fresh connection at once while the old one drains.

import { EventEmitter } from 'node:events';
import net from 'node:net';
import { WebSocket } from 'ws';
import { pino, type Logger } from 'pino';
import type { Pool } from 'undici';
import {
  CloseCode,
  DEAD_AFTER_MS,
  MAX_HEAD_FRAME_BYTES,
  MAX_WS_MESSAGE_BYTES,
  MuxSession,
  PING_INTERVAL_MS,
  RECONNECT_RESET_AFTER_MS,
  parseControlMessage,
  closeReason,
  tickBatched,
  type AgentToControl,
  type AttestRequestMessage,
  type RequestHead,
  type MuxStream,
} from '@easyenclave/protocol';
import {
  computeReportData,
  generateKeyset,
  publicKeyset,
  REPORT_DATA_DOMAINS,
  signPossession,
  type AgentKeys,
  type QuoteProvider,
} from '@easyenclave/attestation';
import type { AgentConfig } from './config.js';
import { fullJitterDelay } from './backoff.js';
import { forwardToBackend, newBackendPool } from './forwarder.js';
import { SealedHttp } from './sealed.js';
import { forwardUpgradeToBackend } from './upgrade.js';
import { selectQuoteProvider } from './quote-configfs.js';
import { AgentMetrics, serveAgentOps } from './ops.js';
import { OPS_DEFAULT_BIND, type OpsServer } from '@easyenclave/protocol/ops/server';

export const AGENT_VERSION = '0.1.0';
const BINARY = { binary: true } as const;
const zeroMask = (mask: Buffer) => void mask.fill(0); // masking protects browsers' intermediaries, not us: skip the XOR
const LIVENESS_TICK_MS = 5_000;
const HEALTH_CHECK_TIMEOUT_MS = 2_000;

interface Conn {
  ws: WebSocket;
  session: MuxSession;
  opened_at: number;
  registered: boolean;
  /** From `registered`: signed into the proof of possession of every answer on this connection. */
  session_id: string | null;
  attested: boolean;
  last_seen: number;
}

export interface AgentOptions {
  logger?: Logger;
  quote_provider?: QuoteProvider;
}

export class Agent extends EventEmitter {
  readonly log: Logger;
  readonly keys: AgentKeys = generateKeyset();
  /** Opens sealed requests with keys.hpke and seals their responses (docs/confidential.md). */
  readonly sealed = new SealedHttp(this.keys);
  private readonly provider: QuoteProvider;
  private readonly pool: Pool;
  private current: Conn | null = null;
  private readonly draining = new Set<Conn>();
  private attempt = 0;
  private reconnect_timer: NodeJS.Timeout | null = null;
  private health_timer: NodeJS.Timeout | null = null;
  private liveness_timer: NodeJS.Timeout | null = null;
  private stopped = false;
  attested = false;
  /** Metrics of the operations port; null when EE_METRICS_PORT is unset. */
  readonly metrics: AgentMetrics | null;
  /** The operations port once start() opened it (null when off); rejects if it could not listen. */
  ops: Promise<OpsServer> | null = null;

  constructor(
    readonly config: AgentConfig,
    opts: AgentOptions = {},
  ) {
    super();
    this.log =
      opts.logger ??
      pino({ level: config.log_level, base: { svc: 'agent', app: config.app_name, agent_id: config.agent_id } });
    // Without an injected provider: configfs-tsm on TDX, the sandbox on sandbox-1, and on a sealed network
    // without TDX a NoTdxError here (logged), so `ee agent` exits non-zero instead of falling back.
    this.provider = opts.quote_provider ?? selectQuoteProvider(config, this.log);
    this.pool = newBackendPool(config.backend_url, config.max_streams);
    this.metrics = config.metrics_port == null ? null : new AgentMetrics(this);
  }

  /** Proxied requests in flight on the current tunnel. */
  get activeStreams(): number {
    return this.current?.session.activeStreams ?? 0;
  }

  start(): void {
    if (this.metrics !== null && this.ops === null) {
      this.ops = serveAgentOps(
        this,
        this.metrics,
        this.config.metrics_bind ?? OPS_DEFAULT_BIND,
        this.config.metrics_port!,
      );
      this.ops.then(
        (s) => this.log.info({ url: s.url }, 'operations port: /metrics and /ready'),
        (err: unknown) => this.log.error({ err }, 'operations port could not listen'),
      );
    }
    this.connect();
    this.health_timer = setInterval(() => void this.sendHealth(), this.config.health_interval_ms);
    this.liveness_timer = setInterval(() => this.checkLiveness(), LIVENESS_TICK_MS);
  }

  /** Graceful stop: GOAWAY, let in-flight streams finish (bounded by the drain timeout), then close. */
  async stop(drain_timeout_ms = this.config.drain_timeout_ms): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    for (const t of [this.reconnect_timer, this.health_timer, this.liveness_timer]) if (t) clearTimeout(t);
    const conns = [...this.draining, ...(this.current ? [this.current] : [])];
    for (const c of conns) c.session.goaway();
    const deadline = Date.now() + drain_timeout_ms;
    while (
      Date.now() < deadline &&
      conns.some((c) => c.session.activeStreams > 0 && c.ws.readyState === WebSocket.OPEN)
    ) {
      await new Promise((r) => setTimeout(r, 20));
    }
    // Close and wait (bounded) for the control plane's close frame, so it sees 1001 and not a dropped socket.
    await Promise.all(
      conns.map(
        (c) =>
          new Promise<void>((resolve) => {
            if (c.ws.readyState === WebSocket.CLOSED) return resolve();
            const t = setTimeout(() => {
              c.ws.terminate();
              resolve();
            }, 1000);
            c.ws.once('close', () => {
              clearTimeout(t);
              resolve();
            });
            if (c.ws.readyState === WebSocket.CONNECTING) c.ws.terminate();
            else c.ws.close(CloseCode.GOING_AWAY, 'agent stopping');
          }),
      ),
    );
    await this.pool.close().catch(() => {});
    await this.ops?.then((s) => s.close()).catch(() => {});
  }

  private connect(): void {
    if (this.stopped) return;
    const ws = new WebSocket(this.config.control_ws, {
      perMessageDeflate: false,
      maxPayload: MAX_WS_MESSAGE_BYTES,
      handshakeTimeout: 10_000,
      generateMask: zeroMask,
    });
    // A frame for a socket that is not open (stopping while dialling) is dropped, never thrown.
    let sendFrame = (frame: Buffer, cb: (err?: Error | null) => void) =>
      ws.readyState === WebSocket.OPEN ? ws.send(frame, BINARY, cb) : cb(new Error('tunnel not open'));
    // Once the socket exists, batch each tick's frames into one write (see tickBatched).
    ws.once('upgrade', (res) => (sendFrame = tickBatched(res.socket, sendFrame)));
    const conn: Conn = {
      ws,
      session: new MuxSession({
        role: 'acceptor',
        send: (frame, cb) => sendFrame(frame, cb),
        max_streams: this.config.max_streams,
        // The control plane enforces the client-facing header limit; the agent only bounds the frame.
        max_header_bytes: MAX_HEAD_FRAME_BYTES,
        onStream: (stream, head) => this.serve(stream, head),
        onGoaway: () => this.onGoaway(conn),
        onProtocolError: (err) => {
          this.log.error({ err: err.message }, 'protocol error from control plane');
          ws.close(CloseCode.PROTOCOL_ERROR, closeReason(err.message));
        },
      }),
      opened_at: Date.now(),
      registered: false,
      session_id: null,
      attested: false,
      last_seen: Date.now(),
    };
    this.current = conn;
    let busy = false;
    ws.on('open', () => {
      conn.opened_at = Date.now();
      conn.last_seen = Date.now();
      this.emit('connected');
      this.send(conn, {
        type: 'register',
        repo: this.config.repo,
        release_tag: this.config.release_tag,
        app_name: this.config.app_name,
        network: this.config.network,
        agent_id: this.config.agent_id,
        agent_version: AGENT_VERSION,
        ...(this.config.node_token !== undefined ? { node_token: this.config.node_token } : {}),
      });
    });
    ws.on('message', (data: Buffer, isBinary: boolean) => {
      conn.last_seen = Date.now();
      if (isBinary) conn.session.handleFrame(data);
      else void this.onControl(conn, data.toString('utf8'));
    });
    ws.on('pong', () => (conn.last_seen = Date.now()));
    ws.on('unexpected-response', (_req, res) => {
      // The control plane is up but busy (handshake cap, draining): retry soon, without escalating.
      busy = res.statusCode === 503;
      this.log.debug({ status: res.statusCode }, 'tunnel handshake refused');
      ws.terminate();
    });
    ws.on('error', (err) => this.log.debug({ err: err.message }, 'tunnel socket error'));
    ws.on('close', (code, reason) => {
      conn.session.destroy();
      this.draining.delete(conn);
      if (this.current !== conn) return;
      this.current = null;
      this.attested = false;
      if (conn.registered) this.log.warn({ code, reason: reason.toString() }, 'tunnel closed');
      this.emit('disconnected', code, reason.toString());
      // Only a connection that proved good (attested, or up for a while) resets the backoff: an agent the
      // control plane keeps refusing must not redial in a tight loop.
      if (Date.now() - conn.opened_at >= RECONNECT_RESET_AFTER_MS || conn.attested) this.attempt = 0;
      this.scheduleReconnect(busy ? Math.floor(Math.random() * 1000) : undefined);
    });
  }

  private scheduleReconnect(delay_ms?: number): void {
    if (this.stopped || this.reconnect_timer) return;
    const delay = delay_ms ?? fullJitterDelay(this.attempt++);
    this.reconnect_timer = setTimeout(() => {
      this.reconnect_timer = null;
      this.connect();
    }, delay);
  }

  /** The control plane is going away: keep the old connection for in-flight streams, dial a new one now. */
  private onGoaway(conn: Conn): void {
    if (this.current !== conn) return;
    this.log.info('control plane sent GOAWAY: reconnecting');
    this.draining.add(conn);
    this.current = null;
    this.attested = false;
    this.attempt = 0;
    this.connect();
  }

  private send(conn: Conn, msg: AgentToControl): void {
    if (conn.ws.readyState === WebSocket.OPEN) conn.ws.send(JSON.stringify(msg));
  }

  private async onControl(conn: Conn, text: string): Promise<void> {
    const parsed = parseControlMessage(text);
    if (!parsed.ok) {
      this.log.error({ error: parsed.error }, 'bad control message from control plane');
      return;
    }
    const msg = parsed.message;
    switch (msg.type) {
      case 'registered':
        conn.registered = true;
        conn.session_id = msg.session_id;
        this.log.info({ status: msg.status, expires_at: msg.expires_at }, 'registered');
        this.emit('registered', msg);
        await this.sendHealth();
        return;
      case 'attest_request':
        return this.answerChallenge(conn, msg);
      case 'attest_result':
        if (msg.ok) {
          if (!this.attested) this.log.info('attested');
          this.attested = true;
          conn.attested = true;
          this.emit('attested');
        } else {
          this.attested = false;
          this.log.error({ reasons: msg.reasons }, 'attestation refused by the control plane');
          this.emit('attest_failed', msg.reasons);
        }
        return;
      case 'error':
        this.log.error({ code: msg.code }, `control plane error: ${msg.message}`);
        this.emit('refused', msg.code, msg.message);
        return;
    }
  }

  /**
   * A client's relayed nonce is quoted in the relay domain and never signed for this connection; the control
   * plane's own challenges in the tunnel domain, with a proof of possession over this connection's session id.
   * So evidence a client obtains can never answer a control-plane challenge, here or on another connection.
   */
  private async answerChallenge(conn: Conn, req: AttestRequestMessage): Promise<void> {
    const relayed = req.reason === 'client';
    const session_id = conn.session_id;
    if (!relayed && session_id === null) {
      this.log.error('attest_request before registered: no session id to prove possession with');
      return;
    }
    const keyset = publicKeyset(this.keys);
    const domain = relayed ? REPORT_DATA_DOMAINS.relay : REPORT_DATA_DOMAINS.tunnel;
    const report_data = computeReportData(domain, Buffer.from(req.nonce, 'hex'), keyset);
    try {
      const quote = await this.provider.getQuote(report_data);
      const m = (this.provider as { measurements?: Record<string, string> }).measurements ?? {};
      this.send(conn, {
        type: 'attest_response',
        nonce: req.nonce,
        quote: quote.toString('base64'),
        report_data: report_data.toString('hex'),
        measurements: { ...m },
        keyset,
        ...(session_id !== null && !relayed ? { pop_signature: signPossession(this.keys, req.nonce, session_id) } : {}),
      });
    } catch (err) {
      this.log.error({ err: (err as Error).message }, 'could not produce a quote');
    }
  }

  /** Backend reachability decides pass/fail: an HTTP GET of EE_HEALTH_PATH (< 500), else a TCP connect. */
  async checkBackend(): Promise<{ ok: boolean; detail?: string }> {
    const url = new URL(this.config.backend_url);
    if (this.config.health_path) {
      try {
        const res = await this.pool.request({
          method: 'GET',
          path: this.config.health_path,
          headersTimeout: HEALTH_CHECK_TIMEOUT_MS,
          bodyTimeout: HEALTH_CHECK_TIMEOUT_MS,
        });
        await res.body.dump();
        return res.statusCode < 500 ? { ok: true } : { ok: false, detail: `backend health answered ${res.statusCode}` };
      } catch (err) {
        return { ok: false, detail: `backend unreachable: ${(err as Error).message}` };
      }
    }
    return new Promise((resolve) => {
      const sock = net.connect({
        host: url.hostname,
        port: Number(url.port || (url.protocol === 'https:' ? 443 : 80)),
      });
      const done = (r: { ok: boolean; detail?: string }) => {
        sock.destroy();
        resolve(r);
      };
      sock.setTimeout(HEALTH_CHECK_TIMEOUT_MS, () => done({ ok: false, detail: 'backend connect timeout' }));
      sock.once('connect', () => done({ ok: true }));
      sock.once('error', (err: Error & { code?: string }) =>
        done({ ok: false, detail: `backend unreachable: ${err.code ?? err.message}` }),
      );
    });
  }

  private async sendHealth(): Promise<void> {
    const conn = this.current;
    if (!conn?.registered) return;
    const r = await this.checkBackend();
    this.send(
      conn,
      r.ok ? { type: 'health', status: 'pass' } : { type: 'health', status: 'fail', detail: r.detail!.slice(0, 500) },
    );
  }

  private checkLiveness(): void {
    const now = Date.now();
    // Connections left behind by a GOAWAY close once their last stream is done.
    for (const conn of this.draining) {
      if (conn.session.activeStreams === 0) conn.ws.close(CloseCode.GOING_AWAY, 'drained');
    }
    for (const conn of [this.current, ...this.draining]) {
      if (!conn || conn.ws.readyState !== WebSocket.OPEN) continue;
      if (now - conn.last_seen > DEAD_AFTER_MS) {
        this.log.warn('control plane silent for too long: reconnecting');
        conn.ws.terminate();
      } else if (now - conn.last_seen > PING_INTERVAL_MS) {
        conn.ws.ping();
      }
    }
  }

  private serve(stream: MuxStream, head: RequestHead): void {
    if (head.upgrade) forwardUpgradeToBackend(this.config.backend_url, stream, head);
    else forwardToBackend(this.pool, stream, head, this.sealed);
  }
}
