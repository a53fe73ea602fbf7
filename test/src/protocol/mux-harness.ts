// In-memory transport for MuxSession tests: two one-way links, each a frame queue delivered asynchronously
// (setImmediate) or stepwise by hand. The send callback fires when a frame is delivered, as a socket's
// would once the bytes are handed on; a paused link holds both, like a stalled socket.

import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import {
  decodeFrame,
  MuxSession,
  type Frame,
  type MuxStream,
  type RequestHead,
  type ResponseHead,
  type HeaderList,
  type SessionOptions,
} from '@easyenclave/protocol';

type Cb = (err?: Error | null) => void;

export class Link {
  readonly queue: Array<{ frame: Buffer; cb: Cb }> = [];
  /** Every frame sent on this link, decoded, in order (payloads copied out). */
  readonly log: Frame[] = [];
  deliver: (frame: Buffer) => void = () => {};
  paused = false;
  private scheduled = false;

  constructor(readonly manual = false) {}

  readonly send = (frame: Buffer, cb: Cb): void => {
    this.log.push(decodeFrame(Buffer.from(frame)));
    this.queue.push({ frame, cb });
    this.schedule();
  };

  pause(): void {
    this.paused = true;
  }
  resume(): void {
    this.paused = false;
    this.schedule();
  }

  /** Delivers up to n queued frames now; returns how many. */
  step(n = Infinity): number {
    let done = 0;
    while (done < n && this.queue.length > 0) {
      const { frame, cb } = this.queue.shift()!;
      cb();
      this.deliver(frame);
      done++;
    }
    return done;
  }

  private schedule(): void {
    if (this.manual || this.paused || this.scheduled || this.queue.length === 0) return;
    this.scheduled = true;
    setImmediate(() => {
      this.scheduled = false;
      if (this.paused) return;
      this.step(this.queue.length); // what was queued so far; later frames go on the next turn
      this.schedule();
    });
  }

  dataBytes(stream_id?: number): number {
    let n = 0;
    for (const f of this.log)
      if (f.type === 2 && (stream_id === undefined || f.stream_id === stream_id)) n += f.data.length;
    return n;
  }
}

export interface Pair {
  opener: MuxSession;
  acceptor: MuxSession;
  /** opener → acceptor */
  up: Link;
  /** acceptor → opener */
  down: Link;
  errors: { opener: Error[]; acceptor: Error[] };
  goaways: Array<[number, number]>;
}

export function pair(
  opts: {
    onStream?: (s: MuxStream, head: RequestHead) => void;
    max_streams?: number;
    manual?: boolean;
    acceptor?: Partial<SessionOptions>;
  } = {},
): Pair {
  const up = new Link(opts.manual),
    down = new Link(opts.manual);
  const errors = { opener: [] as Error[], acceptor: [] as Error[] };
  const goaways: Array<[number, number]> = [];
  const acceptor = new MuxSession({
    role: 'acceptor',
    send: down.send,
    onStream: opts.onStream,
    max_streams: opts.max_streams,
    onProtocolError: (e) => errors.acceptor.push(e),
    ...opts.acceptor,
  });
  const opener = new MuxSession({
    role: 'opener',
    send: up.send,
    onGoaway: (l, c) => goaways.push([l, c]),
    onProtocolError: (e) => errors.opener.push(e),
  });
  up.deliver = (b) => acceptor.handleFrame(b);
  down.deliver = (b) => opener.handleFrame(b);
  return { opener, acceptor, up, down, errors, goaways };
}

export const tick = (): Promise<void> => new Promise((r) => setImmediate(r));

/** Waits until pred() holds, failing after `ms`. */
export async function until(pred: () => boolean, what = 'condition', ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!pred()) {
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}`);
    await tick();
  }
}

/** Waits until both links have been idle (empty, paused or manual) for a few turns of the event loop. */
export async function settle(p: Pair): Promise<void> {
  let quiet = 0;
  while (quiet < 5) {
    await tick();
    const idle = (l: Link): boolean => l.paused || l.manual || l.queue.length === 0;
    quiet = idle(p.up) && idle(p.down) ? quiet + 1 : 0;
  }
}

export const REQ: RequestHead = {
  method: 'POST',
  path: '/upload',
  headers: [['content-type', 'application/octet-stream']],
  timeout_ms: 30_000,
};
export const RES: ResponseHead = { status: 200, headers: [['x-served-by', 'test']] };

export interface Received {
  chunks: Buffer[];
  bytes: number;
  held: number;
  ended: boolean;
  head: ResponseHead | null;
  trailers: HeaderList | null;
  reset: [number, string] | null;
  body(): Buffer;
  /** Acknowledges up to n held bytes (all when omitted). */
  consume(n?: number): void;
}

/** Attaches receive-side callbacks. `auto` consumes each chunk as it arrives (optionally a turn later). */
export function receive(s: MuxStream, auto: false | 'sync' | 'async' = 'sync'): Received {
  const r: Received = {
    chunks: [],
    bytes: 0,
    held: 0,
    ended: false,
    head: null,
    trailers: null,
    reset: null,
    body: () => Buffer.concat(r.chunks),
    consume(n = r.held) {
      n = Math.min(n, r.held);
      r.held -= n;
      s.consumed(n);
    },
  };
  s.onHeaders = (h) => {
    r.head = h;
  };
  s.onData = (c) => {
    r.chunks.push(Buffer.from(c));
    r.bytes += c.length;
    r.held += c.length;
    if (auto === 'sync') r.consume(c.length);
    else if (auto === 'async') setImmediate(() => r.consume(c.length));
  };
  s.onTrailers = (t) => {
    r.trailers = t;
  };
  s.onEnd = () => {
    r.ended = true;
  };
  s.onReset = (code, reason) => {
    assert.equal(r.reset, null, 'onReset fired twice');
    r.reset = [code, reason];
  };
  return r;
}

/** Writes `body` in chunks of the given sizes (cycled), honouring write() backpressure, then ends. */
export async function writeAll(s: MuxStream, body: Buffer, sizes: number[], trailers?: HeaderList): Promise<void> {
  let off = 0,
    i = 0;
  while (off < body.length) {
    const n = Math.max(1, sizes[i++ % sizes.length]!);
    const ok = s.write(body.subarray(off, off + n));
    off += n;
    if (!ok && !s.closed)
      await new Promise<void>((resolve) => {
        s.onDrain = resolve;
      });
  }
  s.end(trailers);
}

export const sha256 = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

/** Private window state, read for assertions (TypeScript allows bracket access to private members). */
export function windows(s: MuxSession): { send: number; recv: number; pending: number } {
  return { send: s['send_window'], recv: s['recv_window'], pending: s['credit_pending'] };
}

/** Deterministic pseudo-random integers (mulberry32), so failures reproduce. */
export function rng(seed: number): (max: number) => number {
  let a = seed >>> 0;
  return (max) => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) % max;
  };
}
