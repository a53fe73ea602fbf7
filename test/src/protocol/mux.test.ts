import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { describe, it } from 'node:test';
import {
  encodeData,
  encodeHead,
  encodeHeaders,
  encodeTrailers,
  encodeWindowUpdate,
  FrameType,
  INITIAL_CONNECTION_WINDOW_BYTES,
  MiB,
  MuxSession,
  ResetCode,
  type MuxStream,
  type RequestHead,
} from '@easyenclave/protocol';
import {
  pair,
  receive,
  REQ,
  RES,
  rng,
  settle,
  sha256,
  until,
  windows,
  writeAll,
  type Received,
} from './mux-harness.js';

describe('mux: request/response', () => {
  it('carries heads, bodies both ways and trailers, then frees the stream on both sides', async () => {
    let server: Received | null = null;
    let seenHead: RequestHead | null = null;
    const p = pair({
      onStream: (s, head) => {
        seenHead = head;
        server = receive(s);
        s.onEnd = () => {
          server!.ended = true;
          s.respond(RES);
          s.write(Buffer.from('echo:'));
          s.write(server!.body());
          s.end([['x-checksum', sha256(server!.body())]]);
        };
      },
    });
    const s = p.opener.openStream(REQ, false);
    const client = receive(s);
    s.write(Buffer.from('hello '));
    s.write(Buffer.from('world'));
    s.end();
    await until(() => client.ended, 'response end');
    assert.deepEqual(seenHead, REQ);
    assert.deepEqual(client.head, RES);
    assert.equal(client.body().toString(), 'echo:hello world');
    assert.deepEqual(client.trailers, [['x-checksum', sha256(Buffer.from('hello world'))]]);
    assert.equal(client.reset, null);
    await settle(p);
    assert.equal(p.opener.activeStreams, 0);
    assert.equal(p.acceptor.activeStreams, 0);
    assert.deepEqual(p.errors, { opener: [], acceptor: [] });
  });

  it('a request without a body and a response that ends with its head', async () => {
    const p = pair({ onStream: (s) => s.respond({ status: 204, headers: [] }, true) });
    const c = receive(p.opener.openStream({ ...REQ, method: 'GET' }, true));
    await until(() => c.ended, 'end');
    assert.equal(c.head?.status, 204);
    assert.equal(c.bytes, 0);
    assert.equal(p.opener.activeStreams, 0);
    await settle(p);
    assert.equal(p.acceptor.activeStreams, 0);
  });

  it('trailers after an empty body are delivered and end the stream', async () => {
    const p = pair({
      onStream: (s) => {
        s.respond(RES);
        s.end([['grpc-status', '0']]);
      },
    });
    const c = receive(p.opener.openStream(REQ, true));
    await until(() => c.ended, 'end');
    assert.deepEqual(c.trailers, [['grpc-status', '0']]);
    assert.ok(p.down.log.some((f) => f.type === FrameType.TRAILERS));
  });

  it('20 MiB random bodies both ways with random chunk sizes arrive byte-exact', async () => {
    const reqBody = randomBytes(20 * MiB),
      resBody = randomBytes(20 * MiB);
    const r = rng(42);
    const sizes = Array.from({ length: 97 }, () => 1 + r(200_000));
    let server: Received | null = null;
    const p = pair({
      onStream: (s) => {
        server = receive(s, 'async');
        s.respond(RES);
        void writeAll(s, resBody, sizes.slice().reverse(), [['x-done', '1']]);
      },
    });
    const s = p.opener.openStream(REQ, false);
    const client = receive(s, 'async');
    await writeAll(s, reqBody, sizes);
    await until(() => client.ended && server !== null && server.ended, 'both bodies', 15_000);
    assert.equal(sha256(server!.body()), sha256(reqBody));
    assert.equal(sha256(client.body()), sha256(resBody));
    assert.deepEqual(client.trailers, [['x-done', '1']]);
    await settle(p);
    assert.equal(p.opener.activeStreams + p.acceptor.activeStreams, 0);
    assert.deepEqual(p.errors, { opener: [], acceptor: [] });
    // Everything was consumed: both receivers are back at the full connection window.
    assert.equal(windows(p.acceptor).recv, INITIAL_CONNECTION_WINDOW_BYTES);
    assert.equal(windows(p.opener).send + windows(p.acceptor).pending, INITIAL_CONNECTION_WINDOW_BYTES);
    assert.equal(windows(p.acceptor).send + windows(p.opener).pending, INITIAL_CONNECTION_WINDOW_BYTES);
  });
});

describe('mux: reset', () => {
  it('opener → acceptor: onReset with code and reason, stream freed on both sides', async () => {
    let server: Received | null = null;
    const p = pair({
      onStream: (s) => {
        server = receive(s);
      },
    });
    const s = p.opener.openStream(REQ, false);
    const c = receive(s);
    s.write(Buffer.alloc(1000));
    await until(() => server !== null && server.bytes === 1000, 'data');
    s.reset(ResetCode.CANCEL, 'client went away');
    assert.equal(p.opener.activeStreams, 0);
    assert.equal(s.reset_code, ResetCode.CANCEL);
    await until(() => server!.reset !== null, 'reset');
    assert.deepEqual(server!.reset, [ResetCode.CANCEL, 'client went away']);
    assert.equal(c.reset, null, 'the side that resets is not told about its own reset');
    assert.equal(p.acceptor.activeStreams, 0);
    assert.equal(s.write(Buffer.from('late')), false);
    s.reset(ResetCode.CANCEL); // idempotent
    await settle(p);
    assert.equal(p.up.log.filter((f) => f.type === FrameType.RESET).length, 1);
  });

  it('acceptor → opener: onReset with code and reason', async () => {
    const p = pair({ onStream: (s) => s.reset(ResetCode.BACKEND_UNREACHABLE, 'ECONNREFUSED 127.0.0.1:8080') });
    const c = receive(p.opener.openStream(REQ, true));
    await until(() => c.reset !== null, 'reset');
    assert.deepEqual(c.reset, [ResetCode.BACKEND_UNREACHABLE, 'ECONNREFUSED 127.0.0.1:8080']);
    assert.equal(p.opener.activeStreams + p.acceptor.activeStreams, 0);
  });

  it('a detached stream holds none of its owner: callbacks and context dropped, later events ignored', async () => {
    const p = pair({ onStream: (s) => s.reset(ResetCode.BACKEND_UNREACHABLE, 'gone') });
    const s = p.opener.openStream(REQ, true);
    let heard = 0;
    s.onHeaders = s.onEnd = s.onDrain = () => heard++;
    s.onData = () => heard++;
    s.onTrailers = () => heard++;
    s.onReset = () => heard++;
    s.context = { request: 'owner state' };
    s.detach();
    for (const k of ['onHeaders', 'onData', 'onTrailers', 'onEnd', 'onReset', 'onDrain', 'context'] as const)
      assert.equal(s[k], null, k);
    await until(() => p.opener.activeStreams === 0, 'the peer reset freed the stream');
    await settle(p);
    assert.equal(heard, 0);
    assert.deepEqual(p.errors, { opener: [], acceptor: [] });
  });

  it('data crossing a reset returns connection credit: after many resets a 40 MiB transfer completes', async () => {
    let round = 0;
    const p = pair({
      onStream: (s) => {
        if (round < 40) {
          // take one chunk, never consume it, reset while the opener is still sending
          s.onData = () => s.reset(ResetCode.TOO_LARGE, 'nope');
          return;
        }
        const r = receive(s);
        s.onEnd = () => {
          s.respond({ status: 200, headers: [['x-len', String(r.bytes)]] }, true);
        };
      },
    });
    for (; round < 40; round++) {
      const s = p.opener.openStream(REQ, false);
      const c = receive(s);
      s.write(Buffer.alloc(900 * 1024, round));
      await until(() => c.reset !== null, `reset of stream ${s.id}`);
    }
    await settle(p);
    assert.ok(p.up.dataBytes() > INITIAL_CONNECTION_WINDOW_BYTES, 'more than one window crossed the resets');
    assert.equal(windows(p.acceptor).recv, INITIAL_CONNECTION_WINDOW_BYTES, 'receiver credited every discarded byte');
    const s = p.opener.openStream(REQ, false);
    const c = receive(s);
    await writeAll(s, Buffer.alloc(40 * MiB, 1), [256 * 1024]);
    await until(() => c.ended, 'big transfer', 15_000);
    assert.deepEqual(c.head?.headers, [['x-len', String(40 * MiB)]]);
    assert.deepEqual(p.errors, { opener: [], acceptor: [] });
  });
});

describe('mux: stream limits, GOAWAY and destroy', () => {
  it('the acceptor refuses streams above max_streams with REFUSED_STREAM', async () => {
    const accepted: MuxStream[] = [];
    const p = pair({
      max_streams: 2,
      onStream: (s) => {
        accepted.push(s);
        receive(s);
      },
    });
    const cs = [0, 1, 2].map(() => receive(p.opener.openStream(REQ, false)));
    await until(() => cs[2]!.reset !== null, 'refusal');
    assert.equal(cs[2]!.reset![0], ResetCode.REFUSED_STREAM);
    assert.equal(cs[0]!.reset, null);
    assert.equal(accepted.length, 2);
    accepted[0]!.reset(ResetCode.CANCEL);
    const again = receive(p.opener.openStream(REQ, false));
    await until(() => accepted.length === 3, 'a freed slot is reused');
    assert.equal(again.reset, null);
  });

  it('after goaway() the acceptor refuses new streams with DRAINING; open streams finish; the opener stops opening', async () => {
    const p = pair({
      onStream: (s) => {
        const r = receive(s);
        s.onEnd = () => {
          r.ended = true;
          s.respond(RES, true);
        };
      },
    });
    const inflight = p.opener.openStream(REQ, false);
    const a = receive(inflight);
    await until(() => p.acceptor.activeStreams === 1, 'stream accepted');
    p.acceptor.goaway();
    p.acceptor.goaway(); // once only
    const crossing = receive(p.opener.openStream(REQ, true)); // sent before the GOAWAY arrives
    await until(() => crossing.reset !== null, 'refusal');
    assert.equal(crossing.reset![0], ResetCode.DRAINING);
    assert.deepEqual(p.goaways, [[1, ResetCode.NO_ERROR]]);
    assert.throws(() => p.opener.openStream(REQ, true), /not accepting/);
    inflight.end();
    await until(() => a.ended, 'in-flight stream completes after GOAWAY');
    assert.equal(a.head?.status, 200);
    assert.equal(p.down.log.filter((f) => f.type === FrameType.GOAWAY).length, 1);
  });

  it('destroy() resets every open stream exactly once, locally', async () => {
    const p = pair({
      onStream: (s) => {
        receive(s);
      },
    });
    const cs = [0, 1, 2].map(() => {
      const s = p.opener.openStream(REQ, false);
      return { s, r: receive(s) };
    });
    await settle(p);
    const sent = p.up.log.length;
    p.opener.destroy(ResetCode.INTERNAL_ERROR, 'socket closed');
    p.opener.destroy(ResetCode.CANCEL, 'again');
    for (const { s, r } of cs) {
      assert.deepEqual(r.reset, [ResetCode.INTERNAL_ERROR, 'socket closed']);
      s.reset(ResetCode.CANCEL); // no second onReset (receive() asserts that), no frame
      assert.equal(s.write(Buffer.from('x')), false);
    }
    assert.equal(p.opener.activeStreams, 0);
    assert.equal(p.up.log.length, sent, 'destroy sends nothing');
    assert.throws(() => p.opener.openStream(REQ, true));
  });
});

describe('mux: protocol violations call onProtocolError', () => {
  /** A lone session whose sent frames are collected; frames are fed to it by hand. */
  function lone(role: 'opener' | 'acceptor') {
    const errors: Error[] = [];
    const sent: Buffer[] = [];
    const streams: MuxStream[] = [];
    const s = new MuxSession({
      role,
      send: (f, cb) => {
        sent.push(f);
        cb();
      },
      onProtocolError: (e) => errors.push(e),
      onStream: (st) => {
        streams.push(st);
        st.onData = () => {};
      },
    });
    return { s, errors, sent, streams };
  }
  const reqHead = encodeHead(REQ),
    resHead = encodeHead(RES);

  it('DATA beyond the stream window, and beyond the connection window', () => {
    const a = lone('acceptor');
    a.s.handleFrame(encodeHeaders(1, reqHead, false));
    for (let i = 0; i < 16; i++) a.s.handleFrame(encodeData(1, Buffer.alloc(64 * 1024), false));
    assert.equal(a.errors.length, 0, 'exactly the 1 MiB window is fine');
    a.s.handleFrame(encodeData(1, Buffer.alloc(1), false));
    assert.match(a.errors[0]?.message ?? '', /stream 1 flow-control window exceeded/);

    const b = lone('acceptor');
    for (let id = 1; id <= 17; id++) {
      b.s.handleFrame(encodeHeaders(id, reqHead, false));
      for (let i = 0; i < 16 && b.errors.length === 0; i++)
        b.s.handleFrame(encodeData(id, Buffer.alloc(64 * 1024), false));
    }
    assert.equal(b.errors.length, 1);
    assert.match(b.errors[0]!.message, /connection flow-control window exceeded/);
  });

  it('frames for never-opened streams; old or repeated HEADERS ids on the acceptor', () => {
    const a = lone('acceptor');
    a.s.handleFrame(encodeData(5, Buffer.from('x'), false));
    assert.match(a.errors.pop()?.message ?? '', /never opened/);
    a.s.handleFrame(encodeHeaders(3, reqHead, false));
    a.s.handleFrame(encodeHeaders(3, reqHead, false));
    assert.match(a.errors.pop()?.message ?? '', /not new/);
    a.s.handleFrame(encodeHeaders(2, reqHead, false));
    assert.match(a.errors.pop()?.message ?? '', /not new/);
    a.s.handleFrame(encodeWindowUpdate(9, 10));
    assert.match(a.errors.pop()?.message ?? '', /never opened/);
    a.s.handleFrame(Buffer.from([0x09, 0, 0, 0, 0, 1]));
    assert.match(a.errors.pop()?.message ?? '', /unknown frame type/);
    const o = lone('opener');
    o.s.handleFrame(encodeHeaders(1, resHead, false));
    assert.match(o.errors.pop()?.message ?? '', /never opened/);
  });

  it('a second response head, DATA before the head, DATA after END, window overflow', () => {
    const o = lone('opener');
    const s1 = o.s.openStream(REQ, false);
    o.s.handleFrame(encodeData(s1.id, Buffer.from('x'), false));
    assert.match(o.errors.pop()?.message ?? '', /before response head/);
    const s2 = o.s.openStream(REQ, false);
    o.s.handleFrame(encodeHeaders(s2.id, resHead, false));
    assert.equal(o.errors.length, 0);
    o.s.handleFrame(encodeHeaders(s2.id, resHead, false));
    assert.match(o.errors.pop()?.message ?? '', /second response head/);
    o.s.handleFrame(encodeData(s2.id, Buffer.from('end'), true));
    o.s.handleFrame(encodeData(s2.id, Buffer.from('more'), false));
    assert.match(o.errors.pop()?.message ?? '', /after end/);
    o.s.handleFrame(encodeTrailers(s2.id, encodeHead({ headers: [] })));
    assert.match(o.errors.pop()?.message ?? '', /after end/);
    o.s.handleFrame(encodeWindowUpdate(0, 2 ** 31 - 1));
    assert.match(o.errors.pop()?.message ?? '', /connection window overflow/);
    o.s.handleFrame(encodeWindowUpdate(s2.id, 2 ** 31 - 1));
    assert.match(o.errors.pop()?.message ?? '', /window overflow/);
  });

  it('bad heads reset the stream (not the connection) with the right code', () => {
    const a = lone('acceptor');
    a.s.handleFrame(encodeHeaders(1, Buffer.from('{"method":"GET"}'), false));
    a.s.handleFrame(encodeHeaders(3, encodeHead({ ...REQ, headers: [['x', 'y'.repeat(17 * 1024)]] }), false));
    assert.deepEqual(a.errors, []);
    assert.deepEqual(a.streams, []);
    const resets = a.sent.map((b) => [b[0], b.readUInt32BE(2), b.readUInt16BE(6)]);
    assert.deepEqual(resets, [
      [FrameType.RESET, 1, ResetCode.PROTOCOL_ERROR],
      [FrameType.RESET, 3, ResetCode.HEADERS_TOO_LARGE],
    ]);
    const o = lone('opener');
    const s = o.s.openStream(REQ, true);
    let reset: number | null = null;
    s.onReset = (c) => {
      reset = c;
    };
    o.s.handleFrame(encodeHeaders(s.id, Buffer.from('{"status":42,"headers":[]}'), false));
    assert.equal(reset, ResetCode.PROTOCOL_ERROR);
    assert.equal(o.s.activeStreams, 0);
    assert.deepEqual(o.errors, []);
  });
});
