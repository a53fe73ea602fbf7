// One multiplexed stream: a proxied request and its response, or, after a 101, a raw byte pipe.
// The owner wires callbacks (onHeaders/onData/onTrailers/onEnd/onReset/onDrain) and calls write/end/reset.
// Flow control contract: every chunk handed to onData must later be acknowledged with consumed(n) once it
// has been written onward; that is what returns credit to the sender (credit on consumption, not arrival).

import type { HeaderList, ResponseHead } from '../head.js';
import { INITIAL_STREAM_WINDOW_BYTES, STREAM_QUEUE_HIGH_WATER_BYTES } from '../limits.js';
import { ResetCode } from '../reset-codes.js';

/**
 * A cap on the body bytes queued for sending over many sessions (the control plane shares one across every
 * agent): a peer that never returns credit keeps whatever is queued toward it, so without a shared cap N such
 * peers could hold N × streams × STREAM_QUEUE_HIGH_WATER_BYTES. Once the cap is reached every write asks its
 * producer to pause; streams that still move drain and go on one chunk at a time, stuck ones stay paused.
 */
export class QueueBudget {
  used_bytes = 0;
  constructor(readonly limit_bytes: number) {
    if (!Number.isSafeInteger(limit_bytes) || limit_bytes <= 0)
      throw new RangeError(`limit_bytes must be a positive integer, got ${limit_bytes}`);
  }
  get exhausted(): boolean {
    return this.used_bytes >= this.limit_bytes;
  }
  /** @internal */ add(n: number): void {
    this.used_bytes += n;
    if (this.used_bytes < 0) throw new Error(`queue budget went negative (${this.used_bytes})`);
  }
}

/** What a stream needs from its session; kept narrow so the two files stay decoupled. */
export interface StreamHost {
  readonly budget: QueueBudget | null;
  scheduleData(stream: MuxStream): void;
  sendEnd(stream: MuxStream): void;
  sendResponseHead(stream: MuxStream, head: ResponseHead, end_stream: boolean): void;
  sendTrailers(stream: MuxStream, trailers: HeaderList): void;
  sendReset(stream: MuxStream, code: number, reason: string): void;
  creditConsumed(stream: MuxStream | null, n: number): void;
  closeStream(stream: MuxStream): void;
}

export class MuxStream {
  // Owner callbacks. Unset callbacks drop the event (data is still credited by the owner's contract).
  onHeaders: ((head: ResponseHead) => void) | null = null;
  onData: ((chunk: Buffer) => void) | null = null;
  onTrailers: ((trailers: HeaderList) => void) | null = null;
  onEnd: (() => void) | null = null;
  onReset: ((code: number, reason: string) => void) | null = null;
  onDrain: (() => void) | null = null;
  /** Free slot for the owner (e.g. the agent record the stream runs on). */
  context: unknown = null;

  // Send side.
  /** @internal */ send_window = INITIAL_STREAM_WINDOW_BYTES;
  /** @internal */ queue: Buffer[] = [];
  /** @internal */ queue_offset = 0;
  /** @internal */ queued_bytes = 0;
  /** @internal */ end_pending = false;
  /** @internal */ local_ended = false;
  /** @internal */ wants_drain = false;
  /** Bytes of body this side has sent (queued counts once written to the socket). */
  sent_bytes = 0;

  // Receive side.
  /** @internal */ recv_window = INITIAL_STREAM_WINDOW_BYTES;
  /** @internal */ unconsumed = 0;
  /** @internal */ credit_pending = 0;
  /** The peer has ended its side (END_STREAM or trailers received). */
  remote_ended = false;
  /** Whether the response head has been sent (acceptor) or received (opener). */
  head_done = false;
  received_bytes = 0;

  closed = false;
  reset_code: number | null = null;

  constructor(
    readonly id: number,
    private readonly host: StreamHost,
  ) {}

  /**
   * Drops the owner's callbacks and context once the owner is done with the stream (it was reset, or its end
   * was handled). A finished stream then holds nothing of its request: measured on the control plane, streams
   * still pointing at their requests' closures let one request's objects keep the next ones alive through
   * young-generation collections, promoting megabytes per collection (docs/benchmarks.md).
   */
  detach(): void {
    this.onHeaders = this.onData = this.onTrailers = this.onEnd = this.onReset = this.onDrain = null;
    this.context = null;
  }

  /** Queues body bytes. Returns false when the producer should pause until onDrain. */
  write(chunk: Buffer): boolean {
    if (this.closed) return false;
    if (this.local_ended || this.end_pending) throw new Error(`write after end on stream ${this.id}`);
    if (chunk.length > 0) {
      this.queue.push(chunk);
      this.queued_bytes += chunk.length;
      this.host.budget?.add(chunk.length);
      this.host.scheduleData(this);
    }
    if (this.queued_bytes >= STREAM_QUEUE_HIGH_WATER_BYTES || this.host.budget?.exhausted === true) {
      this.wants_drain = true;
      return false;
    }
    return true;
  }

  /** Ends this side of the stream after everything queued has been sent. */
  end(trailers?: HeaderList): void {
    if (this.closed || this.local_ended || this.end_pending) return;
    if (trailers && trailers.length > 0) {
      this.end_pending = true;
      this.pending_trailers = trailers;
      if (this.queued_bytes === 0) this.host.sendTrailers(this, trailers);
      else this.host.scheduleData(this);
      return;
    }
    this.end_pending = true;
    if (this.queued_bytes === 0) this.host.sendEnd(this);
    else this.host.scheduleData(this);
  }
  /** @internal */ pending_trailers: HeaderList | null = null;

  /** Acceptor side: sends the response head. */
  respond(head: ResponseHead, end_stream = false): void {
    if (this.closed) return;
    if (this.head_done) throw new Error(`response head already sent on stream ${this.id}`);
    this.head_done = true;
    if (end_stream) this.end_pending = true;
    this.host.sendResponseHead(this, head, end_stream);
  }

  /** Aborts the stream in both directions. Idempotent. */
  reset(code: number = ResetCode.CANCEL, reason = ''): void {
    if (this.closed) return;
    this.reset_code = code;
    this.host.sendReset(this, code, reason);
    this.host.closeStream(this);
  }

  /** Acknowledges that n bytes handed to onData were written onward. */
  consumed(n: number): void {
    if (!Number.isSafeInteger(n) || n <= 0) return; // NaN or fractions would poison the window arithmetic
    if (n > this.unconsumed) n = this.unconsumed; // after close the session already credited what was left
    if (n === 0) return;
    this.unconsumed -= n;
    this.host.creditConsumed(this, n);
  }

  get queuedBytes(): number {
    return this.queued_bytes;
  }
}
