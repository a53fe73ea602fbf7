// Binary frame codec for proxied traffic. One WebSocket binary message carries exactly one frame:
//
//   0        1        2                                 6
//   +--------+--------+---------------------------------+------------------+
//   | type   | flags  | stream id (u32, big endian)     | payload ...      |
//   +--------+--------+---------------------------------+------------------+
//
// The WebSocket message length bounds the payload, so no length field. Decoding is strict: unknown types,
// unknown flags, bad stream ids and malformed payloads are protocol errors that close the connection.

import { MAX_DATA_FRAME_BYTES, MAX_HEAD_FRAME_BYTES, MAX_STREAM_ID, MAX_WINDOW_BYTES } from './limits.js';

export const FRAME_HEADER_BYTES = 6;

export const FrameType = {
  /** Opens a stream (request head) or, on an open stream, carries the response head. JSON payload. */
  HEADERS: 0x01,
  /** Body bytes of a stream. */
  DATA: 0x02,
  /** Trailing headers; always ends the sender's side of the stream. JSON payload. */
  TRAILERS: 0x03,
  /** Credit: u32 increment. Stream 0 means the connection window. */
  WINDOW_UPDATE: 0x04,
  /** Aborts a stream: u16 code, then a UTF-8 reason. */
  RESET: 0x05,
  /** Sender takes no new streams: u32 last stream id it will process, u16 code. Stream id 0. */
  GOAWAY: 0x06,
} as const;
export type FrameType = (typeof FrameType)[keyof typeof FrameType];

export const FrameFlag = {
  END_STREAM: 0x01,
} as const;

export const MAX_RESET_REASON_BYTES = 256;

export type Frame =
  | { type: typeof FrameType.HEADERS; stream_id: number; end_stream: boolean; head: Buffer }
  | { type: typeof FrameType.DATA; stream_id: number; end_stream: boolean; data: Buffer }
  | { type: typeof FrameType.TRAILERS; stream_id: number; head: Buffer }
  | { type: typeof FrameType.WINDOW_UPDATE; stream_id: number; increment: number }
  | { type: typeof FrameType.RESET; stream_id: number; code: number; reason: string }
  | { type: typeof FrameType.GOAWAY; last_stream_id: number; code: number };

export class FrameError extends Error {
  override readonly name = 'FrameError';
}

function header(type: number, flags: number, stream_id: number, payload_bytes: number): Buffer {
  const buf = Buffer.allocUnsafe(FRAME_HEADER_BYTES + payload_bytes);
  buf[0] = type;
  buf[1] = flags;
  buf.writeUInt32BE(stream_id, 2);
  return buf;
}

function assertStreamId(stream_id: number): void {
  if (!Number.isInteger(stream_id) || stream_id < 1 || stream_id > MAX_STREAM_ID) {
    throw new RangeError(`stream id out of range: ${stream_id}`);
  }
}

export function encodeHeaders(stream_id: number, head: Buffer, end_stream: boolean): Buffer {
  assertStreamId(stream_id);
  if (head.length === 0 || head.length > MAX_HEAD_FRAME_BYTES)
    throw new RangeError(`head size out of range: ${head.length}`);
  const buf = header(FrameType.HEADERS, end_stream ? FrameFlag.END_STREAM : 0, stream_id, head.length);
  head.copy(buf, FRAME_HEADER_BYTES);
  return buf;
}

/** Copies `data[start, end)` behind a frame header: one allocation, one copy (ws sends one buffer per message). */
export function encodeData(stream_id: number, data: Buffer, end_stream: boolean, start = 0, end = data.length): Buffer {
  assertStreamId(stream_id);
  const len = end - start;
  if (start < 0 || end > data.length || len < 0 || len > MAX_DATA_FRAME_BYTES)
    throw new RangeError(`data frame range out of bounds: [${start}, ${end}) of ${data.length}`);
  const buf = header(FrameType.DATA, end_stream ? FrameFlag.END_STREAM : 0, stream_id, len);
  data.copy(buf, FRAME_HEADER_BYTES, start, end);
  return buf;
}

/** Allocates a DATA frame of `len` payload bytes with its header written; the caller fills the payload. */
export function allocDataFrame(stream_id: number, len: number, end_stream: boolean): Buffer {
  assertStreamId(stream_id);
  if (!Number.isInteger(len) || len < 0 || len > MAX_DATA_FRAME_BYTES)
    throw new RangeError(`data frame size out of range: ${len}`);
  return header(FrameType.DATA, end_stream ? FrameFlag.END_STREAM : 0, stream_id, len);
}

export function encodeTrailers(stream_id: number, head: Buffer): Buffer {
  assertStreamId(stream_id);
  if (head.length === 0 || head.length > MAX_HEAD_FRAME_BYTES)
    throw new RangeError(`trailers size out of range: ${head.length}`);
  const buf = header(FrameType.TRAILERS, FrameFlag.END_STREAM, stream_id, head.length);
  head.copy(buf, FRAME_HEADER_BYTES);
  return buf;
}

export function encodeWindowUpdate(stream_id: number, increment: number): Buffer {
  if (stream_id !== 0) assertStreamId(stream_id);
  if (!Number.isInteger(increment) || increment < 1 || increment > MAX_WINDOW_BYTES) {
    throw new RangeError(`window increment out of range: ${increment}`);
  }
  const buf = header(FrameType.WINDOW_UPDATE, 0, stream_id, 4);
  buf.writeUInt32BE(increment, FRAME_HEADER_BYTES);
  return buf;
}

export function encodeReset(stream_id: number, code: number, reason = ''): Buffer {
  assertStreamId(stream_id);
  let text = Buffer.from(reason, 'utf8');
  if (text.length > MAX_RESET_REASON_BYTES) text = text.subarray(0, MAX_RESET_REASON_BYTES);
  const buf = header(FrameType.RESET, 0, stream_id, 2 + text.length);
  buf.writeUInt16BE(code, FRAME_HEADER_BYTES);
  text.copy(buf, FRAME_HEADER_BYTES + 2);
  return buf;
}

export function encodeGoaway(last_stream_id: number, code: number): Buffer {
  if (!Number.isInteger(last_stream_id) || last_stream_id < 0 || last_stream_id > MAX_STREAM_ID) {
    throw new RangeError(`last stream id out of range: ${last_stream_id}`);
  }
  const buf = header(FrameType.GOAWAY, 0, 0, 6);
  buf.writeUInt32BE(last_stream_id, FRAME_HEADER_BYTES);
  buf.writeUInt16BE(code, FRAME_HEADER_BYTES + 4);
  return buf;
}

/** Decodes one frame. Payload buffers are views into `buf` (no copy). Throws FrameError on any violation. */
export function decodeFrame(buf: Buffer): Frame {
  if (buf.length < FRAME_HEADER_BYTES) throw new FrameError(`frame shorter than its header (${buf.length} bytes)`);
  const type = buf[0]!;
  const flags = buf[1]!;
  const stream_id = buf.readUInt32BE(2);
  const payload = buf.subarray(FRAME_HEADER_BYTES);
  const needStream = (): void => {
    if (stream_id === 0 || stream_id > MAX_STREAM_ID)
      throw new FrameError(`frame type ${type} needs a stream id in 1..2^31-1, got ${stream_id}`);
  };
  const onlyFlags = (allowed: number): void => {
    if ((flags & ~allowed) !== 0) throw new FrameError(`unknown flags 0x${flags.toString(16)} on frame type ${type}`);
  };
  switch (type) {
    case FrameType.HEADERS:
      needStream();
      onlyFlags(FrameFlag.END_STREAM);
      if (payload.length === 0 || payload.length > MAX_HEAD_FRAME_BYTES)
        throw new FrameError(`HEADERS payload size ${payload.length} out of range`);
      return { type, stream_id, end_stream: (flags & FrameFlag.END_STREAM) !== 0, head: payload };
    case FrameType.DATA:
      needStream();
      onlyFlags(FrameFlag.END_STREAM);
      if (payload.length > MAX_DATA_FRAME_BYTES)
        throw new FrameError(`DATA payload ${payload.length} exceeds ${MAX_DATA_FRAME_BYTES}`);
      return { type, stream_id, end_stream: (flags & FrameFlag.END_STREAM) !== 0, data: payload };
    case FrameType.TRAILERS:
      needStream();
      if (flags !== FrameFlag.END_STREAM) throw new FrameError('TRAILERS must carry END_STREAM and no other flag');
      if (payload.length === 0 || payload.length > MAX_HEAD_FRAME_BYTES)
        throw new FrameError(`TRAILERS payload size ${payload.length} out of range`);
      return { type, stream_id, head: payload };
    case FrameType.WINDOW_UPDATE: {
      onlyFlags(0);
      if (stream_id > MAX_STREAM_ID) throw new FrameError(`stream id ${stream_id} out of range`);
      if (payload.length !== 4) throw new FrameError(`WINDOW_UPDATE payload must be 4 bytes, got ${payload.length}`);
      const increment = payload.readUInt32BE(0);
      if (increment < 1 || increment > MAX_WINDOW_BYTES)
        throw new FrameError(`WINDOW_UPDATE increment ${increment} out of range`);
      return { type, stream_id, increment };
    }
    case FrameType.RESET:
      needStream();
      onlyFlags(0);
      if (payload.length < 2 || payload.length > 2 + MAX_RESET_REASON_BYTES)
        throw new FrameError(`RESET payload size ${payload.length} out of range`);
      return { type, stream_id, code: payload.readUInt16BE(0), reason: payload.toString('utf8', 2) };
    case FrameType.GOAWAY: {
      onlyFlags(0);
      if (stream_id !== 0) throw new FrameError('GOAWAY must use stream id 0');
      if (payload.length !== 6) throw new FrameError(`GOAWAY payload must be 6 bytes, got ${payload.length}`);
      const last_stream_id = payload.readUInt32BE(0);
      if (last_stream_id > MAX_STREAM_ID) throw new FrameError(`GOAWAY last stream id ${last_stream_id} out of range`);
      return { type, last_stream_id, code: payload.readUInt16BE(4) };
    }
    default:
      throw new FrameError(`unknown frame type 0x${type.toString(16)}`);
  }
}
