// What a client may hold on either listener (API and app proxy) without sending anything useful: the
// header block has a deadline (Node's headersTimeout, checked often enough to mean it), a request body must
// start, and keep flowing while we read it, within body_timeout_ms (bodies have no total deadline: large
// uploads stream), and open connections are capped in total and per address. A refusal is answered in the
// one error shape (408, 503, 400) and the socket is closed after a short linger, so the answer is read
// before the close rather than lost to a reset.

import type http from 'node:http';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import type { ControlPlaneConfig } from '../config.js';
import { rawErrorResponse, type ApiError } from '../http-errors.js';
import { TaggedIncomingMessage } from './request-id.js';

/** Node checks header deadlines on an interval (30 s by default): at most this coarse. */
const MAX_DEADLINE_CHECK_INTERVAL_MS = 1000;
const MIN_DEADLINE_CHECK_INTERVAL_MS = 25;
/** After an answer that ends the connection, how long the peer may take to read it before we cut. */
export const LINGER_AFTER_ANSWER_MS = 2000;
/** Keep-alive connections idle this long are closed (above common load balancers' 60 s idle timeout). */
const KEEP_ALIVE_TIMEOUT_MS = 65_000;

export function edgeServerOptions(
  config: Pick<ControlPlaneConfig, 'max_header_bytes' | 'headers_timeout_ms'>,
): http.ServerOptions {
  const interval_ms = Math.max(
    MIN_DEADLINE_CHECK_INTERVAL_MS,
    Math.min(MAX_DEADLINE_CHECK_INTERVAL_MS, Math.floor(config.headers_timeout_ms / 4)),
  );
  return {
    IncomingMessage: TaggedIncomingMessage,
    maxHeaderSize: config.max_header_bytes,
    keepAliveTimeout: KEEP_ALIVE_TIMEOUT_MS,
    // No deadline on a whole request: a body streams for as long as it keeps flowing (EdgeGuard watches it).
    requestTimeout: 0,
    headersTimeout: config.headers_timeout_ms,
    connectionsCheckingInterval: interval_ms,
  };
}

/** Ends the socket with `answer`, then destroys it once the peer had time to read it. */
export function answerAndClose(socket: Duplex, answer: string): void {
  if (socket.destroyed) return;
  if (socket.writable) socket.end(answer);
  setTimeout(() => socket.destroy(), LINGER_AFTER_ANSWER_MS).unref();
}

/** RFC 9112 §3.2: a request with more than one Host field is answered 400. */
export function hasDuplicateHost(raw: readonly string[]): boolean {
  let seen = false;
  for (let i = 0; i < raw.length; i += 2) {
    const k = raw[i]!;
    if (k.length !== 4 || k.toLowerCase() !== 'host') continue;
    if (seen) return true;
    seen = true;
  }
  return false;
}

const DUPLICATE_HOST: ApiError = { status: 400, code: 'bad_request', message: 'more than one Host header' };

function hasBody(req: http.IncomingMessage): boolean {
  const cl = req.headers['content-length'];
  return req.headers['transfer-encoding'] !== undefined || (cl !== undefined && cl !== '0');
}

export type EdgeLimits = Pick<
  ControlPlaneConfig,
  'body_timeout_ms' | 'max_connections' | 'max_connections_per_address'
>;

/** The TCP socket under a TLS one (what 'connection' saw), or the socket itself. */
const tcpOf = (s: Duplex): Socket => (s as Duplex & { _parent?: Socket })._parent ?? (s as Socket);

/** One per listener: connection caps, the duplicate-Host rule and the request-body deadline. */
export class EdgeGuard {
  private total = 0;
  private readonly per_address = new Map<string, number>();
  private readonly counted = new Map<Socket, string>();
  private readonly refused = new WeakSet<Duplex>();

  constructor(private readonly limits: EdgeLimits) {}

  attach(server: http.Server, tls = false): void {
    server.on('connection', (socket: Socket) => this.admit(socket, tls));
  }

  get connections(): number {
    return this.total;
  }

  private admit(socket: Socket, tls: boolean): void {
    const address = socket.remoteAddress ?? '';
    const n = this.per_address.get(address) ?? 0;
    if (this.total >= this.limits.max_connections || n >= this.limits.max_connections_per_address) {
      this.refused.add(socket);
      if (tls) return void socket.destroy(); // before the handshake there is no way to say why
      const which = this.total >= this.limits.max_connections ? 'in total' : 'from this address';
      answerAndClose(
        socket,
        rawErrorResponse({
          status: 503,
          code: 'too_many_connections',
          message: `too many open connections ${which}`,
          retry_after_s: 1,
        }),
      );
      return;
    }
    this.total++;
    this.per_address.set(address, n + 1);
    this.counted.set(socket, address);
    socket.once('close', () => this.release(socket));
  }

  /** Stops counting a connection (an agent's tunnel after its upgrade: the hub bounds those). */
  release(socket: Duplex): void {
    const tcp = tcpOf(socket);
    const address = this.counted.get(tcp);
    if (address === undefined) return;
    this.counted.delete(tcp);
    this.total--;
    const n = this.per_address.get(address)! - 1;
    if (n === 0) this.per_address.delete(address);
    else this.per_address.set(address, n);
    if (this.total < 0) throw new Error('EdgeGuard: negative connection count');
  }

  /** Call first for every request: false when the request was answered (or dropped) here. */
  onRequest(req: http.IncomingMessage, res: http.ServerResponse): boolean {
    if (this.refused.has(req.socket)) {
      res.destroy();
      return false;
    }
    if (hasDuplicateHost(req.rawHeaders)) {
      answerAndClose(req.socket, rawErrorResponse(DUPLICATE_HOST, req));
      return false;
    }
    if (hasBody(req)) watchBody(req, res, this.limits.body_timeout_ms);
    return true;
  }

  /** The same for an upgrade request. */
  onUpgrade(req: http.IncomingMessage, socket: Duplex): boolean {
    if (this.refused.has(socket)) {
      socket.destroy();
      return false;
    }
    if (hasDuplicateHost(req.rawHeaders)) {
      answerAndClose(socket, rawErrorResponse(DUPLICATE_HOST, req));
      return false;
    }
    return true;
  }
}

/**
 * A request body must start within timeout_ms of the head and never pause longer while it is being read.
 * Checked once per period from the socket's byte counter, not per chunk; time during which the control
 * plane itself is not reading (the request paused for the tunnel's flow control, or data left unread) never
 * counts against the client.
 */
function watchBody(req: http.IncomingMessage, res: http.ServerResponse, timeout_ms: number): void {
  const socket = req.socket;
  let seen = socket.bytesRead;
  const timer = setTimeout(function check() {
    if (req.complete || socket.destroyed) return;
    const now = socket.bytesRead;
    if (now !== seen || req.isPaused() || req.readableLength > 0) {
      seen = now;
      timer.refresh();
      return;
    }
    if (res.headersSent) socket.destroy();
    else
      answerAndClose(
        socket,
        rawErrorResponse(
          {
            status: 408,
            code: 'request_timeout',
            message: `no request body bytes for ${timeout_ms} ms`,
          },
          req,
        ),
      );
  }, timeout_ms);
  timer.unref();
  const stop = () => clearTimeout(timer);
  req.once('end', stop);
  req.once('close', stop);
}
