import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import {
  decodeFrame,
  encodeData,
  encodeGoaway,
  encodeHeaders,
  encodeReset,
  encodeTrailers,
  encodeWindowUpdate,
  FRAME_HEADER_BYTES,
  FrameError,
  FrameFlag,
  FrameType,
  MAX_DATA_FRAME_BYTES,
  MAX_HEAD_FRAME_BYTES,
  MAX_RESET_REASON_BYTES,
  MAX_STREAM_ID,
  MAX_WINDOW_BYTES,
  type Frame,
} from '@easyenclave/protocol';

const streamId = fc.oneof(fc.integer({ min: 1, max: MAX_STREAM_ID }), fc.constantFrom(1, 2, MAX_STREAM_ID));
const bytes = (min: number, max: number) =>
  fc.uint8Array({ minLength: min, maxLength: max }).map((b) => Buffer.from(b));
const u16 = fc.integer({ min: 0, max: 0xffff });

/** Builds a raw frame by hand, bypassing the encoder's checks. */
function raw(type: number, flags: number, stream_id: number, payload: Buffer | number[] = []): Buffer {
  const p = Buffer.isBuffer(payload) ? payload : Buffer.from(payload);
  const b = Buffer.alloc(FRAME_HEADER_BYTES + p.length);
  b[0] = type;
  b[1] = flags;
  b.writeUInt32BE(stream_id >>> 0, 2);
  p.copy(b, FRAME_HEADER_BYTES);
  return b;
}
const u32 = (n: number): number[] => {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n >>> 0);
  return [...b];
};

/** Canonical encoding of a decoded frame (what a well-behaved sender would have produced). */
function reencode(f: Frame): Buffer {
  switch (f.type) {
    case FrameType.HEADERS:
      return encodeHeaders(f.stream_id, f.head, f.end_stream);
    case FrameType.DATA:
      return encodeData(f.stream_id, f.data, f.end_stream);
    case FrameType.TRAILERS:
      return encodeTrailers(f.stream_id, f.head);
    case FrameType.WINDOW_UPDATE:
      return encodeWindowUpdate(f.stream_id, f.increment);
    case FrameType.RESET:
      return encodeReset(f.stream_id, f.code, f.reason);
    case FrameType.GOAWAY:
      return encodeGoaway(f.last_stream_id, f.code);
  }
}

/** Either FrameError, or a decoded frame that agrees with the raw bytes it came from. */
function decodeConsistently(buf: Buffer): Frame | null {
  let f: Frame;
  try {
    f = decodeFrame(buf);
  } catch (err) {
    assert.ok(err instanceof FrameError, `decodeFrame threw a non-FrameError: ${String(err)}`);
    return null;
  }
  assert.equal(f.type, buf[0]);
  if (f.type === FrameType.RESET) {
    // The reason is decoded leniently as UTF-8 (invalid sequences become U+FFFD), so compare the rest.
    assert.equal(f.stream_id, buf.readUInt32BE(2));
    assert.equal(f.code, buf.readUInt16BE(6));
    assert.equal(f.reason, buf.toString('utf8', 8));
    assert.equal(buf[1], 0);
  } else {
    assert.deepEqual(reencode(f), buf, 'a frame that decodes must re-encode to the same bytes');
  }
  return f;
}

describe('frame codec round trip', () => {
  it('HEADERS', () => {
    fc.assert(
      fc.property(streamId, fc.boolean(), bytes(1, 2048), (id, end, head) => {
        const f = decodeFrame(encodeHeaders(id, head, end));
        assert.deepEqual(f, { type: FrameType.HEADERS, stream_id: id, end_stream: end, head });
      }),
    );
  });
  it('DATA, including sliced encodes and empty payloads', () => {
    fc.assert(
      fc.property(streamId, fc.boolean(), bytes(0, 4096), fc.nat(), fc.nat(), (id, end, data, a, b) => {
        const start = data.length === 0 ? 0 : a % (data.length + 1);
        const stop = start + (data.length === 0 ? 0 : b % (data.length - start + 1));
        const f = decodeFrame(encodeData(id, data, end, start, stop));
        assert.deepEqual(f, { type: FrameType.DATA, stream_id: id, end_stream: end, data: data.subarray(start, stop) });
      }),
    );
  });
  it('TRAILERS', () => {
    fc.assert(
      fc.property(streamId, bytes(1, 2048), (id, head) => {
        const enc = encodeTrailers(id, head);
        assert.equal(enc[1], FrameFlag.END_STREAM);
        assert.deepEqual(decodeFrame(enc), { type: FrameType.TRAILERS, stream_id: id, head });
      }),
    );
  });
  it('WINDOW_UPDATE (stream 0 is the connection)', () => {
    const id = fc.oneof(streamId, fc.constant(0));
    const inc = fc.oneof(fc.integer({ min: 1, max: MAX_WINDOW_BYTES }), fc.constantFrom(1, MAX_WINDOW_BYTES));
    fc.assert(
      fc.property(id, inc, (stream_id, increment) => {
        assert.deepEqual(decodeFrame(encodeWindowUpdate(stream_id, increment)), {
          type: FrameType.WINDOW_UPDATE,
          stream_id,
          increment,
        });
      }),
    );
  });
  it('RESET with reasons up to the limit', () => {
    const reason = fc
      .string({ unit: 'grapheme', maxLength: 80 })
      .filter((s) => Buffer.byteLength(s) <= MAX_RESET_REASON_BYTES);
    fc.assert(
      fc.property(streamId, u16, reason, (id, code, r) => {
        assert.deepEqual(decodeFrame(encodeReset(id, code, r)), {
          type: FrameType.RESET,
          stream_id: id,
          code,
          reason: r,
        });
      }),
    );
  });
  it('RESET truncates over-long reasons to MAX_RESET_REASON_BYTES and still decodes', () => {
    fc.assert(
      fc.property(streamId, u16, fc.string({ unit: 'binary', minLength: 100, maxLength: 400 }), (id, code, r) => {
        const enc = encodeReset(id, code, r);
        const f = decodeFrame(enc);
        assert.equal(f.type, FrameType.RESET);
        assert.ok(enc.length - FRAME_HEADER_BYTES - 2 <= MAX_RESET_REASON_BYTES);
        assert.deepEqual(enc.subarray(8), Buffer.from(r, 'utf8').subarray(0, MAX_RESET_REASON_BYTES));
      }),
    );
  });
  it('GOAWAY', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: MAX_STREAM_ID }), u16, (last, code) => {
        const enc = encodeGoaway(last, code);
        assert.equal(enc.readUInt32BE(2), 0);
        assert.deepEqual(decodeFrame(enc), { type: FrameType.GOAWAY, last_stream_id: last, code });
      }),
    );
  });
  it('decoded payloads are views into the input (no copy)', () => {
    const enc = encodeData(7, Buffer.from('hello'), false);
    const f = decodeFrame(enc);
    assert.equal(f.type, FrameType.DATA);
    if (f.type === FrameType.DATA) assert.equal(f.data.buffer, enc.buffer);
  });
});

describe('decoder fuzz', () => {
  it('arbitrary bytes: only FrameError, and successful decodes are consistent', () => {
    fc.assert(
      fc.property(bytes(0, 300), (b) => {
        decodeConsistently(b);
      }),
      { numRuns: 3000 },
    );
  });

  it('plausible headers with arbitrary payloads: only FrameError', () => {
    const frameish = fc.record({
      type: fc.integer({ min: 0, max: 8 }),
      flags: fc.constantFrom(0, 1, 2, 3, 0x80, 0xff),
      id: fc.constantFrom(0, 1, 5, MAX_STREAM_ID, 2 ** 31, 0xffffffff),
      payload: fc.oneof(bytes(0, 12), bytes(0, 300)),
    });
    fc.assert(
      fc.property(frameish, ({ type, flags, id, payload }) => {
        decodeConsistently(raw(type, flags, id, payload));
      }),
      { numRuns: 3000 },
    );
  });

  const validFrame = fc.oneof(
    fc.tuple(streamId, fc.boolean(), bytes(1, 64)).map(([id, e, h]) => encodeHeaders(id, h, e)),
    fc.tuple(streamId, fc.boolean(), bytes(0, 64)).map(([id, e, d]) => encodeData(id, d, e)),
    fc.tuple(streamId, bytes(1, 64)).map(([id, h]) => encodeTrailers(id, h)),
    fc
      .tuple(fc.nat({ max: MAX_STREAM_ID }), fc.integer({ min: 1, max: MAX_WINDOW_BYTES }))
      .map(([id, n]) => encodeWindowUpdate(id, n)),
    fc.tuple(streamId, u16, fc.string({ maxLength: 40 })).map(([id, c, r]) => encodeReset(id, c, r)),
    fc.tuple(fc.nat({ max: MAX_STREAM_ID }), u16).map(([l, c]) => encodeGoaway(l, c)),
  );
  const mutation = fc.oneof(
    fc.record({ kind: fc.constant('set' as const), at: fc.nat(), value: fc.integer({ min: 0, max: 255 }) }),
    fc.record({ kind: fc.constant('flip' as const), at: fc.nat(), bit: fc.integer({ min: 0, max: 7 }) }),
    fc.record({ kind: fc.constant('truncate' as const), at: fc.nat() }),
    fc.record({ kind: fc.constant('append' as const), extra: bytes(1, 8) }),
  );
  type Mutation = typeof mutation extends fc.Arbitrary<infer M> ? M : never;
  function mutate(buf: Buffer, ms: Mutation[]): Buffer {
    let b = Buffer.from(buf);
    for (const m of ms) {
      if (m.kind === 'append') b = Buffer.concat([b, m.extra]);
      else if (b.length === 0) continue;
      else if (m.kind === 'truncate') b = b.subarray(0, m.at % b.length);
      else if (m.kind === 'set') b[m.at % b.length] = m.value;
      else b[m.at % b.length]! ^= 1 << m.bit;
    }
    return b;
  }

  it('valid frames decode consistently', () => {
    fc.assert(
      fc.property(validFrame, (b) => {
        assert.notEqual(decodeConsistently(b), null);
      }),
    );
  });

  it('mutated valid frames are decoded consistently or rejected with FrameError', () => {
    fc.assert(
      fc.property(validFrame, fc.array(mutation, { minLength: 1, maxLength: 4 }), (b, ms) => {
        decodeConsistently(mutate(b, ms));
      }),
      { numRuns: 5000 },
    );
  });

  it('never hangs: a large hostile message is rejected quickly', () => {
    const t0 = process.hrtime.bigint();
    for (const type of [1, 2, 3, 4, 5, 6, 9]) {
      assert.throws(() => decodeFrame(raw(type, 0, 1, Buffer.alloc(8 * 1024 * 1024, 0xff))), FrameError);
    }
    assert.ok(Number(process.hrtime.bigint() - t0) / 1e6 < 2000);
  });
});

describe('frame boundaries', () => {
  it('DATA payload of exactly MAX_DATA_FRAME_BYTES is fine; one more byte is rejected both ways', () => {
    const ok = decodeFrame(encodeData(1, Buffer.alloc(MAX_DATA_FRAME_BYTES, 7), true));
    assert.equal(ok.type === FrameType.DATA && ok.data.length, MAX_DATA_FRAME_BYTES);
    assert.throws(() => decodeFrame(raw(FrameType.DATA, 0, 1, Buffer.alloc(MAX_DATA_FRAME_BYTES + 1))), FrameError);
    assert.throws(() => encodeData(1, Buffer.alloc(MAX_DATA_FRAME_BYTES + 1), false), RangeError);
    // A slice of a bigger buffer may be exactly the maximum.
    assert.doesNotThrow(() =>
      encodeData(1, Buffer.alloc(MAX_DATA_FRAME_BYTES * 2), false, 5, 5 + MAX_DATA_FRAME_BYTES),
    );
  });

  it('HEADERS/TRAILERS payloads: 1..MAX_HEAD_FRAME_BYTES', () => {
    for (const [enc, type] of [
      [(b: Buffer) => encodeHeaders(3, b, false), FrameType.HEADERS],
      [(b: Buffer) => encodeTrailers(3, b), FrameType.TRAILERS],
    ] as const) {
      assert.equal(decodeFrame(enc(Buffer.alloc(MAX_HEAD_FRAME_BYTES, 0x20))).type, type);
      assert.throws(() => enc(Buffer.alloc(MAX_HEAD_FRAME_BYTES + 1)), RangeError);
      assert.throws(
        () => decodeFrame(raw(type, FrameFlag.END_STREAM, 3, Buffer.alloc(MAX_HEAD_FRAME_BYTES + 1))),
        FrameError,
      );
      assert.throws(() => decodeFrame(raw(type, FrameFlag.END_STREAM, 3)), FrameError, 'empty head');
    }
  });

  it('stream id 0 is rejected where a stream is required, allowed for WINDOW_UPDATE', () => {
    for (const type of [FrameType.HEADERS, FrameType.DATA, FrameType.TRAILERS, FrameType.RESET]) {
      assert.throws(
        () => decodeFrame(raw(type, type === FrameType.TRAILERS ? 1 : 0, 0, [0, 0, 0x7b, 0x7d])),
        FrameError,
        `type ${type}`,
      );
    }
    assert.throws(() => encodeHeaders(0, Buffer.from('{}'), false), RangeError);
    assert.throws(() => encodeData(0, Buffer.alloc(1), false), RangeError);
    assert.throws(() => encodeTrailers(0, Buffer.from('{}')), RangeError);
    assert.throws(() => encodeReset(0, 0), RangeError);
    assert.deepEqual(decodeFrame(raw(FrameType.WINDOW_UPDATE, 0, 0, u32(10))), {
      type: FrameType.WINDOW_UPDATE,
      stream_id: 0,
      increment: 10,
    });
  });

  it('stream id 2^31 and above is rejected for every type; 2^31-1 is fine', () => {
    for (const id of [2 ** 31, 0xffffffff]) {
      assert.throws(() => decodeFrame(raw(FrameType.HEADERS, 0, id, [0x7b])), FrameError);
      assert.throws(() => decodeFrame(raw(FrameType.DATA, 0, id)), FrameError);
      assert.throws(() => decodeFrame(raw(FrameType.TRAILERS, 1, id, [0x7b])), FrameError);
      assert.throws(() => decodeFrame(raw(FrameType.WINDOW_UPDATE, 0, id, u32(1))), FrameError);
      assert.throws(() => decodeFrame(raw(FrameType.RESET, 0, id, [0, 0])), FrameError);
      assert.throws(() => decodeFrame(raw(FrameType.GOAWAY, 0, 0, [...u32(id), 0, 0])), FrameError, 'GOAWAY last id');
      assert.throws(() => encodeData(id, Buffer.alloc(0), false), RangeError);
      assert.throws(() => encodeGoaway(id, 0), RangeError);
    }
    assert.equal(decodeFrame(raw(FrameType.DATA, 0, MAX_STREAM_ID)).type, FrameType.DATA);
    assert.throws(() => encodeData(1.5, Buffer.alloc(0), false), RangeError);
  });

  it('GOAWAY must use stream 0 and exactly 6 payload bytes', () => {
    assert.throws(() => decodeFrame(raw(FrameType.GOAWAY, 0, 1, [0, 0, 0, 0, 0, 0])), FrameError);
    assert.throws(() => decodeFrame(raw(FrameType.GOAWAY, 0, 0, [0, 0, 0, 0, 0])), FrameError);
    assert.throws(() => decodeFrame(raw(FrameType.GOAWAY, 0, 0, [0, 0, 0, 0, 0, 0, 0])), FrameError);
  });

  it('unknown flags and unknown types are rejected', () => {
    for (const flags of [0x02, 0x80, 0xff]) {
      assert.throws(() => decodeFrame(raw(FrameType.HEADERS, flags, 1, [0x7b])), FrameError);
      assert.throws(() => decodeFrame(raw(FrameType.DATA, flags, 1)), FrameError);
    }
    assert.throws(() => decodeFrame(raw(FrameType.TRAILERS, 0, 1, [0x7b])), FrameError, 'TRAILERS without END_STREAM');
    assert.throws(() => decodeFrame(raw(FrameType.TRAILERS, 3, 1, [0x7b])), FrameError);
    assert.throws(() => decodeFrame(raw(FrameType.WINDOW_UPDATE, 1, 1, u32(1))), FrameError);
    assert.throws(() => decodeFrame(raw(FrameType.RESET, 1, 1, [0, 0])), FrameError);
    assert.throws(() => decodeFrame(raw(FrameType.GOAWAY, 1, 0, [0, 0, 0, 0, 0, 0])), FrameError);
    for (const type of [0x00, 0x07, 0x7f, 0xff])
      assert.throws(() => decodeFrame(raw(type, 0, 1, [0, 0, 0, 1])), FrameError);
    for (const len of [0, 1, 5]) assert.throws(() => decodeFrame(Buffer.alloc(len, 1)), FrameError);
  });

  it('window increment: 0 and 2^31 rejected, 1 and 2^31-1 accepted', () => {
    assert.throws(() => decodeFrame(raw(FrameType.WINDOW_UPDATE, 0, 1, u32(0))), FrameError);
    assert.throws(() => decodeFrame(raw(FrameType.WINDOW_UPDATE, 0, 1, u32(2 ** 31))), FrameError);
    assert.throws(() => decodeFrame(raw(FrameType.WINDOW_UPDATE, 0, 1, u32(0xffffffff))), FrameError);
    assert.throws(() => decodeFrame(raw(FrameType.WINDOW_UPDATE, 0, 1, [0, 0, 1])), FrameError);
    assert.throws(() => encodeWindowUpdate(1, 0), RangeError);
    assert.throws(() => encodeWindowUpdate(1, 2 ** 31), RangeError);
    assert.equal(decodeFrame(encodeWindowUpdate(0, 2 ** 31 - 1)).type, FrameType.WINDOW_UPDATE);
    assert.equal(decodeFrame(encodeWindowUpdate(MAX_STREAM_ID, 1)).type, FrameType.WINDOW_UPDATE);
  });

  it('RESET payload: 2..2+MAX_RESET_REASON_BYTES', () => {
    assert.throws(() => decodeFrame(raw(FrameType.RESET, 0, 1, [0])), FrameError);
    assert.throws(
      () => decodeFrame(raw(FrameType.RESET, 0, 1, Buffer.alloc(3 + MAX_RESET_REASON_BYTES, 0x61))),
      FrameError,
    );
    assert.equal(
      decodeFrame(raw(FrameType.RESET, 0, 1, Buffer.alloc(2 + MAX_RESET_REASON_BYTES, 0x61))).type,
      FrameType.RESET,
    );
  });

  it('encodeData refuses a slice that runs past its buffer (would leak uninitialised memory)', () => {
    assert.throws(() => encodeData(1, Buffer.alloc(4), false, 0, 100), RangeError);
    assert.throws(() => encodeData(1, Buffer.alloc(4), false, -2, 2), RangeError);
  });

  it('encodeHeaders/encodeTrailers refuse an empty head (the decoder would reject it)', () => {
    assert.throws(() => encodeHeaders(1, Buffer.alloc(0), false), RangeError);
    assert.throws(() => encodeTrailers(1, Buffer.alloc(0)), RangeError);
  });
});
