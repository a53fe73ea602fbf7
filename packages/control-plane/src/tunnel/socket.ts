// An agent's WebSocket and its stream session's transport, wired to the hub through a narrow interface
// (LinkEvents) so neither file imports the other's class.
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocket } from 'ws';
import { TickBatcher, type QueueBudget, type SessionOptions } from '@easyenclave/protocol';
import type { AgentLink } from './link.js';

/** What an agent's socket and session report (the hub implements it). */
export interface LinkEvents {
  onMessage(link: AgentLink, data: Buffer, isBinary: boolean): void;
  onSocketError(link: AgentLink, err: Error): void;
  onClosed(link: AgentLink, code: number, reason: string): void;
  /** The agent sent GOAWAY: no new streams toward it. */
  onAgentGoaway(link: AgentLink): void;
  onProtocolError(link: AgentLink, err: Error): void;
}

/**
 * An agent's WebSocket. Its events go straight to the hub's methods instead of through four listener closures
 * per connection (those, their shared scope and the grown listener table cost ~350 B per idle agent). Events
 * the hub does not handle, and any before the link is attached, take the normal EventEmitter path.
 */
export class AgentSocket extends WebSocket {
  events: LinkEvents | null = null;
  link: AgentLink | null = null;

  override emit(event: string | symbol, a?: unknown, b?: unknown): boolean {
    const events = this.events;
    const link = this.link;
    if (events === null || link === null)
      return arguments.length <= 1
        ? super.emit(event)
        : arguments.length === 2
          ? super.emit(event, a)
          : super.emit(event, a, b);
    switch (event) {
      case 'message':
        events.onMessage(link, a as Buffer, b as boolean);
        return true;
      case 'pong':
        link.seen(Date.now());
        return true;
      case 'error':
        events.onSocketError(link, a as Error);
        return true;
      case 'close':
        events.onClosed(link, a as number, (b as Buffer).toString('utf8'));
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

const BINARY = { binary: true } as const;

/**
 * A link's session options and transport in one object with methods, not closures (~0.5 KiB less per idle
 * agent): frames go out batched per event-loop iteration (TickBatcher), session events reach the hub.
 */
export class LinkChannel extends TickBatcher implements SessionOptions {
  readonly role = 'opener' as const;
  link: AgentLink | null = null;

  constructor(
    private readonly events: LinkEvents,
    private readonly ws: WebSocket,
    socket: Duplex,
    readonly max_header_bytes: number,
    readonly budget: QueueBudget,
  ) {
    super(socket);
  }

  send(frame: Buffer, cb: (err?: Error | null) => void): void {
    this.hold();
    this.ws.send(frame, BINARY, cb);
  }

  onGoaway(): void {
    if (this.link !== null) this.events.onAgentGoaway(this.link);
  }

  onProtocolError(err: Error): void {
    if (this.link !== null) this.events.onProtocolError(this.link, err);
  }
}

/** The peer's address as one key per host (an IPv4 peer on a dual-stack socket appears as ::ffff:a.b.c.d). */
export function remoteAddress(req: IncomingMessage): string {
  const a = req.socket.remoteAddress ?? 'unknown';
  return a.startsWith('::ffff:') ? a.slice(7) : a;
}
