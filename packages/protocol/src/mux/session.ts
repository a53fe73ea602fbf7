// Long (~480 lines) on purpose: one state machine (streams, windows, queues) whose invariants span all of it.
// A multiplexing session over one WebSocket: many streams, per-stream and per-connection flow control,
// control frames ahead of data, data round-robin across ready streams, and a bound on bytes buffered in the
// socket. Transport-agnostic: the owner feeds received binary messages to handleFrame and provides a send
// function whose callback fires once the bytes are handed to the socket.

import {
  allocDataFrame,
  decodeFrame,
  encodeData,
  FRAME_HEADER_BYTES,
  encodeGoaway,
  encodeHeaders,
  encodeReset,
  encodeTrailers,
  encodeWindowUpdate,
  FrameError,
  FrameType,
  type Frame,
} from '../frames.js';
import { decodeRequestHead, decodeResponseHead, decodeTrailers, encodeHead, HeadError } from '../head.js';
import type { HeaderList, RequestHead, ResponseHead } from '../head.js';
import {
  DEFAULT_MAX_HEADER_BYTES,
  DEFAULT_MAX_STREAMS,
  INITIAL_CONNECTION_WINDOW_BYTES,
  INITIAL_STREAM_WINDOW_BYTES,
  MAX_DATA_FRAME_BYTES,
  MAX_HEAD_FRAME_BYTES,
  MAX_STREAM_ID,
  MAX_WINDOW_BYTES,
  SOCKET_HIGH_WATER_BYTES,
  STREAM_QUEUE_HIGH_WATER_BYTES,
} from '../limits.js';
import { ResetCode } from '../reset-codes.js';
import { MuxStream, type QueueBudget, type StreamHost } from './stream.js';

export type SendFn = (frame: Buffer, cb: (err?: Error | null) => void) => void;

export interface SessionOptions {
  /** The opener (control plane) creates streams; the acceptor (agent) receives them. */
  role: 'opener' | 'acceptor';
  send: SendFn;
  max_streams?: number;
  max_header_bytes?: number;
  /** Acceptor: a new stream with its request head. */
  onStream?: (stream: MuxStream, head: RequestHead) => void;
  /** The peer takes no streams above last_stream_id. */
  onGoaway?: (last_stream_id: number, code: number) => void;
  /** A connection-level violation; the owner must close the transport with this reason. */
  onProtocolError: (err: Error) => void;
  /** Shared cap on queued body bytes (see QueueBudget); none = only the per-stream high-water mark. */
  budget?: QueueBudget;
}

const STREAM_CREDIT_THRESHOLD = INITIAL_STREAM_WINDOW_BYTES / 4;
const CONNECTION_CREDIT_THRESHOLD = INITIAL_CONNECTION_WINDOW_BYTES / 8;

export class MuxSession implements StreamHost {
  // Allocated on first use: an idle session (most agents, most of the time) holds neither (~350 B each).
  private stream_map: Map<number, MuxStream> | null = null;
  private ready_set: Set<MuxStream> | null = null;
  private send_window = INITIAL_CONNECTION_WINDOW_BYTES;
  private recv_window = INITIAL_CONNECTION_WINDOW_BYTES;
  private credit_pending = 0;
  private inflight_bytes = 0;
  private pumping = false;
  private next_stream_id = 1;
  private highest_stream_id = 0;
  private readonly max_streams: number;
  private readonly max_header_bytes: number;
  goaway_sent = false;
  goaway_received = false;
  closed = false;

  readonly budget: QueueBudget | null;

  constructor(private readonly opts: SessionOptions) {
    this.budget = opts.budget ?? null;
    this.max_streams = opts.max_streams ?? DEFAULT_MAX_STREAMS;
    this.max_header_bytes = opts.max_header_bytes ?? DEFAULT_MAX_HEADER_BYTES;
  }

  get activeStreams(): number {
    return this.stream_map === null ? 0 : this.stream_map.size;
  }

  /** Open streams by id (read-only view; empty until the first stream). */
  get streams(): ReadonlyMap<number, MuxStream> {
    return this.stream_map ?? NO_STREAMS;
  }

  private get ready(): Set<MuxStream> {
    return (this.ready_set ??= new Set());
  }

  /** Bytes written to the transport whose send callback has not fired yet. */
  get inflightBytes(): number {
    return this.inflight_bytes;
  }

  /** Opener: starts a stream with a request head. Throws when the session cannot take new streams. */
  openStream(head: RequestHead, end_stream: boolean): MuxStream {
    if (this.opts.role !== 'opener') throw new Error('only the opener creates streams');
    if (this.closed || this.goaway_received) throw new Error('session is not accepting new streams');
    if (this.next_stream_id > MAX_STREAM_ID) throw new Error('stream ids exhausted');
    // Encode first: a head too large for one frame must fail before the stream exists (no leaked slot).
    const encoded = encodeHead(head);
    if (encoded.length > MAX_HEAD_FRAME_BYTES)
      throw new HeadError(`request head of ${encoded.length} bytes exceeds ${MAX_HEAD_FRAME_BYTES}`, true);
    const stream = new MuxStream(this.next_stream_id++, this);
    this.highest_stream_id = stream.id;
    (this.stream_map ??= new Map()).set(stream.id, stream);
    if (end_stream) {
      stream.end_pending = true;
      stream.local_ended = true;
    }
    this.sendControl(encodeHeaders(stream.id, encoded, end_stream));
    return stream;
  }

  /** Tells the peer we take no new streams; in-flight streams go on. */
  goaway(code: number = ResetCode.NO_ERROR): void {
    if (this.closed || this.goaway_sent) return;
    this.goaway_sent = true;
    this.sendControl(encodeGoaway(this.opts.role === 'acceptor' ? this.highest_stream_id : 0, code));
  }

  /** The transport is gone: every open stream is reset locally with `code`. */
  destroy(code: number = ResetCode.INTERNAL_ERROR, reason = 'tunnel closed'): void {
    if (this.closed) return;
    this.closed = true;
    const open = this.stream_map === null ? [] : [...this.stream_map.values()];
    this.stream_map?.clear();
    this.ready_set?.clear();
    for (const s of open) {
      s.closed = true;
      this.budget?.add(-s.queued_bytes); // nothing queued will be sent now
      s.queue = [];
      s.queued_bytes = 0;
      s.reset_code = code;
      s.onReset?.(code, reason);
    }
  }

  /** Feeds one received binary message. Connection-level violations go to onProtocolError. */
  handleFrame(buf: Buffer): void {
    if (this.closed) return;
    let frame: Frame;
    try {
      frame = decodeFrame(buf);
    } catch (err) {
      this.fail(err as Error);
      return;
    }
    switch (frame.type) {
      case FrameType.HEADERS:
        return this.onHeadersFrame(frame.stream_id, frame.head, frame.end_stream);
      case FrameType.DATA:
        return this.onDataFrame(frame.stream_id, frame.data, frame.end_stream);
      case FrameType.TRAILERS:
        return this.onTrailersFrame(frame.stream_id, frame.head);
      case FrameType.WINDOW_UPDATE:
        return this.onWindowUpdate(frame.stream_id, frame.increment);
      case FrameType.RESET: {
        const s = this.streams.get(frame.stream_id);
        if (!s) return; // already closed here: resets cross on the wire
        this.closeStream(s);
        s.reset_code = frame.code;
        s.onReset?.(frame.code, frame.reason);
        return;
      }
      case FrameType.GOAWAY:
        this.goaway_received = true;
        this.opts.onGoaway?.(frame.last_stream_id, frame.code);
        return;
    }
  }

  private fail(err: Error): void {
    if (this.closed) return;
    this.opts.onProtocolError(
      err instanceof FrameError || err instanceof HeadError ? err : new FrameError(err.message),
    );
  }

  private onHeadersFrame(id: number, head: Buffer, end_stream: boolean): void {
    if (this.opts.role === 'acceptor') {
      if (id <= this.highest_stream_id || this.streams.has(id))
        return this.fail(new FrameError(`stream id ${id} is not new`));
      this.highest_stream_id = id;
      const s = new MuxStream(id, this);
      if (end_stream) s.remote_ended = true;
      if (this.goaway_sent) return this.refuse(s, ResetCode.DRAINING, 'agent is draining');
      if (this.streams.size >= this.max_streams)
        return this.refuse(s, ResetCode.REFUSED_STREAM, 'too many concurrent streams');
      let req: RequestHead;
      try {
        req = decodeRequestHead(head, this.max_header_bytes);
      } catch (err) {
        const e = err as HeadError;
        return this.refuse(s, e.too_large ? ResetCode.HEADERS_TOO_LARGE : ResetCode.PROTOCOL_ERROR, e.message);
      }
      (this.stream_map ??= new Map()).set(id, s);
      if (!this.opts.onStream) return s.reset(ResetCode.REFUSED_STREAM, 'no handler');
      this.opts.onStream(s, req);
      return;
    }
    const s = this.streams.get(id);
    if (!s) return this.ignoreOrFail(id);
    if (s.head_done) return this.fail(new FrameError(`second response head on stream ${id}`));
    let res: ResponseHead;
    try {
      res = decodeResponseHead(head, this.max_header_bytes);
    } catch (err) {
      const e = err as HeadError;
      const code = e.too_large ? ResetCode.HEADERS_TOO_LARGE : ResetCode.PROTOCOL_ERROR;
      s.reset(code, e.message);
      s.onReset?.(code, e.message);
      return;
    }
    s.head_done = true;
    if (end_stream) s.remote_ended = true;
    s.onHeaders?.(res);
    if (end_stream && !s.closed) {
      s.onEnd?.();
      this.maybeClose(s);
    }
  }

  private refuse(s: MuxStream, code: number, reason: string): void {
    this.sendControl(encodeReset(s.id, code, reason));
  }

  /** A frame for a stream we do not know: fine if it was closed (frames cross), a violation if never opened. */
  private ignoreOrFail(id: number): void {
    if (id > this.highest_stream_id) this.fail(new FrameError(`frame for stream ${id} that was never opened`));
  }

  private onDataFrame(id: number, data: Buffer, end_stream: boolean): void {
    const n = data.length;
    if (n > this.recv_window)
      return this.fail(new FrameError(`connection flow-control window exceeded by ${n - this.recv_window} bytes`));
    this.recv_window -= n;
    const s = this.streams.get(id);
    if (!s) {
      // Data for a closed stream still used connection credit: give it back at once.
      if (n > 0) this.creditConsumed(null, n);
      return this.ignoreOrFail(id);
    }
    if (s.remote_ended) return this.fail(new FrameError(`DATA after end of stream ${id}`));
    if (this.opts.role === 'opener' && !s.head_done)
      return this.fail(new FrameError(`DATA before response head on stream ${id}`));
    if (n > s.recv_window) return this.fail(new FrameError(`stream ${id} flow-control window exceeded`));
    s.recv_window -= n;
    s.received_bytes += n;
    if (end_stream) s.remote_ended = true;
    if (n > 0) {
      s.unconsumed += n;
      if (s.onData) s.onData(data);
      else s.consumed(n);
    }
    if (end_stream && !s.closed) {
      s.onEnd?.();
      this.maybeClose(s);
    }
  }

  private onTrailersFrame(id: number, head: Buffer): void {
    const s = this.streams.get(id);
    if (!s) return this.ignoreOrFail(id);
    if (s.remote_ended) return this.fail(new FrameError(`TRAILERS after end of stream ${id}`));
    let trailers: HeaderList;
    try {
      trailers = decodeTrailers(head, this.max_header_bytes);
    } catch (err) {
      s.reset(ResetCode.PROTOCOL_ERROR, (err as Error).message);
      s.onReset?.(ResetCode.PROTOCOL_ERROR, (err as Error).message);
      return;
    }
    s.remote_ended = true;
    s.onTrailers?.(trailers);
    if (!s.closed) {
      s.onEnd?.();
      this.maybeClose(s);
    }
  }

  private onWindowUpdate(id: number, increment: number): void {
    if (id === 0) {
      if (this.send_window + increment > MAX_WINDOW_BYTES)
        return this.fail(new FrameError('connection window overflow'));
      this.send_window += increment;
      this.pump();
      return;
    }
    const s = this.streams.get(id);
    if (!s) return this.ignoreOrFail(id);
    if (s.send_window + increment > MAX_WINDOW_BYTES) return this.fail(new FrameError(`stream ${id} window overflow`));
    s.send_window += increment;
    if (s.queued_bytes > 0 || s.end_pending) this.scheduleData(s);
  }

  // ---- StreamHost ----

  scheduleData(s: MuxStream): void {
    if (s.closed || (s.send_window <= 0 && s.queued_bytes > 0)) return;
    this.ready.add(s);
    // Deferred to the end of the current job: a write() followed by end() in the same tick (the usual small
    // response) leaves as one DATA frame carrying END_STREAM instead of two frames.
    if (!this.pump_scheduled) {
      this.pump_scheduled = true;
      // One callback per session, made on first use (an idle session never needs it).
      queueMicrotask(
        (this.runScheduledPump ??= () => {
          this.pump_scheduled = false;
          this.pump();
        }),
      );
    }
  }
  private pump_scheduled = false;
  private runScheduledPump: (() => void) | null = null;

  sendEnd(s: MuxStream): void {
    if (s.local_ended) return;
    s.local_ended = true;
    this.sendControl(encodeData(s.id, EMPTY, true));
    this.maybeClose(s);
  }

  sendResponseHead(s: MuxStream, head: ResponseHead, end_stream: boolean): void {
    if (end_stream) s.local_ended = true;
    this.sendControl(encodeHeaders(s.id, encodeHead(head), end_stream));
    if (end_stream) this.maybeClose(s);
  }

  sendTrailers(s: MuxStream, trailers: HeaderList): void {
    if (s.local_ended) return;
    s.local_ended = true;
    this.sendControl(encodeTrailers(s.id, encodeHead({ headers: trailers })));
    this.maybeClose(s);
  }

  sendReset(s: MuxStream, code: number, reason: string): void {
    if (!this.closed) this.sendControl(encodeReset(s.id, code, reason));
  }

  creditConsumed(s: MuxStream | null, n: number): void {
    if (this.closed) return;
    this.recv_window += n;
    this.credit_pending += n;
    // Flush when enough credit has piled up, or when the peer's view of the window (granted minus what it
    // has sent) is nearly exhausted: stalled streams may hold the rest, and waiting for the threshold
    // would then deadlock the connection.
    if (
      this.credit_pending >= CONNECTION_CREDIT_THRESHOLD ||
      this.recv_window - this.credit_pending < CONNECTION_CREDIT_THRESHOLD
    ) {
      this.sendControl(encodeWindowUpdate(0, this.credit_pending));
      this.credit_pending = 0;
    }
    if (s === null || s.closed) return;
    if (!s.remote_ended) {
      s.recv_window += n;
      s.credit_pending += n;
      if (s.credit_pending >= STREAM_CREDIT_THRESHOLD || s.recv_window - s.credit_pending < STREAM_CREDIT_THRESHOLD) {
        this.sendControl(encodeWindowUpdate(s.id, s.credit_pending));
        s.credit_pending = 0;
      }
    }
    if (s.unconsumed === 0) this.maybeClose(s);
  }

  closeStream(s: MuxStream): void {
    if (s.closed) return;
    s.closed = true;
    this.stream_map?.delete(s.id);
    this.ready_set?.delete(s);
    s.queue = [];
    this.budget?.add(-s.queued_bytes);
    s.queued_bytes = 0;
    // Whatever the owner had not consumed yet will never be: return its connection credit now.
    if (s.unconsumed > 0) {
      const n = s.unconsumed;
      s.unconsumed = 0;
      this.creditConsumed(null, n);
    }
  }

  /** A stream ended both ways closes once its owner has consumed everything it was handed: until then its
   *  bytes still count against the connection window, which is what bounds buffering behind slow readers. */
  private maybeClose(s: MuxStream): void {
    if (s.local_ended && s.remote_ended && s.unconsumed === 0) this.closeStream(s);
  }

  // ---- Sending ----

  private sendControl(frame: Buffer): void {
    this.inflight_bytes += frame.length;
    this.opts.send(frame, this.onSent(frame.length));
  }

  private onSent(len: number): (err?: Error | null) => void {
    return () => {
      this.inflight_bytes -= len;
      if (this.ready_set !== null && this.ready_set.size > 0 && this.inflight_bytes < SOCKET_HIGH_WATER_BYTES / 2)
        this.pump();
    };
  }

  /** Sends DATA round-robin while the socket and the connection window have room. */
  private pump(): void {
    const ready = this.ready_set;
    if (this.pumping || this.closed || ready === null) return;
    this.pumping = true;
    try {
      while (ready.size > 0 && this.inflight_bytes < SOCKET_HIGH_WATER_BYTES) {
        const s = ready.values().next().value as MuxStream;
        ready.delete(s);
        if (s.closed) continue;
        if (s.queued_bytes === 0) {
          if (s.end_pending && !s.local_ended) this.finishEnd(s);
          continue;
        }
        const budget = Math.min(MAX_DATA_FRAME_BYTES, s.send_window, this.send_window);
        if (budget <= 0) {
          if (this.send_window <= 0) {
            ready.add(s); // wait for connection credit; keep its place
            break;
          }
          continue; // stream blocked on its own window; WINDOW_UPDATE re-schedules it
        }
        // One frame carries as many queued chunks as the budget allows (coalesced: the frame is a copy anyway).
        const n = Math.min(s.queued_bytes, budget);
        const fin = n === s.queued_bytes && s.end_pending && s.pending_trailers === null;
        const frame = allocDataFrame(s.id, n, fin);
        let filled = 0;
        while (filled < n) {
          const chunk = s.queue[0]!;
          const take = Math.min(chunk.length - s.queue_offset, n - filled);
          chunk.copy(frame, FRAME_HEADER_BYTES + filled, s.queue_offset, s.queue_offset + take);
          filled += take;
          if (s.queue_offset + take === chunk.length) {
            s.queue.shift();
            s.queue_offset = 0;
          } else {
            s.queue_offset += take;
          }
        }
        s.queued_bytes -= n;
        this.budget?.add(-n);
        s.send_window -= n;
        s.sent_bytes += n;
        this.send_window -= n;
        this.inflight_bytes += frame.length;
        this.opts.send(frame, this.onSent(frame.length));
        if (fin) {
          s.local_ended = true;
          this.maybeClose(s);
        } else if (s.queued_bytes > 0) {
          ready.add(s); // to the back: round-robin
        } else if (s.end_pending) {
          this.finishEnd(s);
        }
        if (s.wants_drain && s.queued_bytes < STREAM_QUEUE_HIGH_WATER_BYTES / 2 && !s.closed) {
          s.wants_drain = false;
          s.onDrain?.();
        }
      }
    } finally {
      this.pumping = false;
    }
  }

  private finishEnd(s: MuxStream): void {
    if (s.pending_trailers) this.sendTrailers(s, s.pending_trailers);
    else this.sendEnd(s);
  }
}

const EMPTY = Buffer.alloc(0);
const NO_STREAMS: ReadonlyMap<number, MuxStream> = new Map();
