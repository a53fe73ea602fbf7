// Graceful shutdown of HTTP/1.1 keep-alive connections without the classic reset race. Closing every idle
// connection at once (http.Server#closeIdleConnections) resets the ones on which a client is writing its next
// request right now. Instead: while draining, every response carries `Connection: close` (the busy
// connections close themselves after their next answer), and only connections that have been idle for a
// while are closed by us; whatever is left at the deadline is cut.

import type http from 'node:http';
import type { Socket } from 'node:net';

/** A keep-alive connection unused this long is not in a client's hot loop: closing it races nothing. */
const IDLE_BEFORE_CLOSE_MS = 500;
const POLL_MS = 25;

interface ConnState {
  active: number;
  last_ms: number;
}

export class ConnectionTracker {
  private readonly conns = new Map<Socket, ConnState>();

  track(server: http.Server): void {
    server.on('connection', (socket: Socket) => {
      this.conns.set(socket, { active: 0, last_ms: Date.now() });
      socket.once('close', () => this.conns.delete(socket));
    });
    server.on('request', (req: http.IncomingMessage, res: http.ServerResponse) => {
      const st = this.conns.get(req.socket);
      if (!st) return;
      st.active++;
      res.once('close', () => {
        st.active--;
        st.last_ms = Date.now();
      });
    });
    // An upgraded socket (WebSocket) leaves HTTP: the tunnel hub drains it.
    server.on('upgrade', (req: http.IncomingMessage) => this.conns.delete(req.socket));
  }

  get size(): number {
    return this.conns.size;
  }

  /** Waits until every tracked connection has closed, closing idle ones, cutting the rest at the deadline. */
  async drain(deadline_ms: number): Promise<void> {
    while (this.conns.size > 0 && Date.now() < deadline_ms) {
      const now = Date.now();
      for (const [socket, st] of this.conns) {
        if (st.active === 0 && now - st.last_ms >= IDLE_BEFORE_CLOSE_MS) socket.destroy();
      }
      await new Promise((r) => setTimeout(r, POLL_MS));
    }
    for (const socket of this.conns.keys()) socket.destroy();
  }
}
