import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  FrameType,
  INITIAL_CONNECTION_WINDOW_BYTES,
  INITIAL_STREAM_WINDOW_BYTES,
  MAX_DATA_FRAME_BYTES,
  MiB,
  SOCKET_HIGH_WATER_BYTES,
  STREAM_QUEUE_HIGH_WATER_BYTES,
  type MuxStream,
} from '@easyenclave/protocol';
import { pair, receive, REQ, RES, settle, tick, until, windows, writeAll, type Received } from './mux-harness.js';

const KB = 1024;

/** A pair whose acceptor hands each accepted stream to the test, unconsumed unless told otherwise. */
function stalledPair(auto: false | 'sync' = false) {
  const server: Received[] = [];
  const p = pair({
    onStream: (s) => {
      server.push(receive(s, auto));
    },
  });
  return { p, server };
}

describe('mux flow control', () => {
  it('a receiver that never consumes stops the sender at exactly the stream window, then it resumes', async () => {
    const { p, server } = stalledPair();
    const s = p.opener.openStream(REQ, false);
    assert.equal(s.write(Buffer.alloc(3 * MiB, 7)), false);
    await settle(p);
    const r = server[0]!;
    assert.equal(r.bytes, INITIAL_STREAM_WINDOW_BYTES);
    assert.equal(p.up.dataBytes(s.id), INITIAL_STREAM_WINDOW_BYTES, 'nothing beyond the window went on the wire');
    assert.equal(s.queuedBytes, 3 * MiB - INITIAL_STREAM_WINDOW_BYTES, 'the rest stays queued');
    assert.equal(s.sent_bytes, INITIAL_STREAM_WINDOW_BYTES);
    // Credit comes back only as the owner consumes, and never lets more than the window be outstanding.
    for (const n of [100 * KB, 300 * KB, 624 * KB]) {
      r.consume(n);
      await settle(p);
      assert.ok(r.held <= INITIAL_STREAM_WINDOW_BYTES);
    }
    assert.equal(r.bytes, 2 * MiB);
    s.end();
    while (!r.ended) {
      r.consume();
      await settle(p);
    }
    assert.equal(r.bytes, 3 * MiB);
    assert.ok(r.chunks.every((c) => c.every((b) => b === 7)));
  });

  it('with 20 stalled streams the connection window bounds the total delivered but unconsumed bytes', async () => {
    const { p, server } = stalledPair();
    const streams = Array.from({ length: 20 }, () => {
      const s = p.opener.openStream(REQ, false);
      s.write(Buffer.alloc(1536 * KB));
      return s;
    });
    await settle(p);
    const held = (): number => server.reduce((n, r) => n + r.held, 0);
    assert.equal(held(), INITIAL_CONNECTION_WINDOW_BYTES);
    assert.equal(p.up.dataBytes(), INITIAL_CONNECTION_WINDOW_BYTES);
    for (const r of server) assert.ok(r.bytes <= INITIAL_STREAM_WINDOW_BYTES);
    assert.equal(
      streams.reduce((n, s) => n + s.queuedBytes, 0),
      20 * 1536 * KB - INITIAL_CONNECTION_WINDOW_BYTES,
    );
    assert.equal(windows(p.opener).send, 0);
    // Consuming on some streams lets the others proceed, but the bound holds throughout.
    for (let round = 0; round < 40 && server.some((r) => r.bytes < 1536 * KB); round++) {
      for (const r of server.filter((_, i) => i % 3 === round % 3)) r.consume();
      await settle(p);
      assert.ok(held() <= INITIAL_CONNECTION_WINDOW_BYTES, `held ${held()}`);
    }
    assert.ok(server.every((r) => r.bytes === 1536 * KB));
    assert.deepEqual(p.errors, { opener: [], acceptor: [] });
  });

  it('a slow reader does not stall other streams', async () => {
    const { p, server } = stalledPair();
    const slow = p.opener.openStream(REQ, false);
    slow.write(Buffer.alloc(5 * MiB));
    await settle(p);
    const fast = p.opener.openStream(REQ, false);
    await until(() => server.length === 2, 'second stream');
    const f = server[1]!;
    const pump = setInterval(() => f.consume(), 0);
    await writeAll(fast, Buffer.alloc(5 * MiB, 1), [100_000]);
    await until(() => f.ended, 'fast stream completes');
    clearInterval(pump);
    assert.equal(f.bytes, 5 * MiB);
    assert.equal(server[0]!.bytes, INITIAL_STREAM_WINDOW_BYTES);
    assert.equal(slow.queuedBytes, 4 * MiB);
  });

  it('streams keep moving while 15 stalled readers hold 15 MiB of the connection window', async () => {
    const { p, server } = stalledPair();
    for (let i = 0; i < 15; i++) p.opener.openStream(REQ, false).write(Buffer.alloc(INITIAL_STREAM_WINDOW_BYTES));
    await settle(p);
    assert.equal(
      server.reduce((n, r) => n + r.held, 0),
      15 * MiB,
    );
    const s = p.opener.openStream(REQ, false);
    s.write(Buffer.alloc(3 * MiB));
    s.end();
    await until(() => server.length === 16, 'stream 16');
    const r = server[15]!;
    for (let i = 0; i < 20 && !r.ended; i++) {
      r.consume();
      await settle(p);
    }
    assert.equal(r.bytes, 3 * MiB, `the 16th stream got only ${r.bytes} bytes`);
  });

  it('completed streams whose data was not consumed still count against the connection window', async () => {
    // One at a time, so each response completes (round-robin would otherwise share the window out evenly).
    const p = pair({
      onStream: (s) => {
        s.respond(RES);
        s.write(Buffer.alloc(MiB));
        s.end();
      },
    });
    const client: Received[] = [];
    for (let i = 0; i < 20; i++) {
      const r = receive(p.opener.openStream({ ...REQ, method: 'GET' }, true), false);
      client.push(r);
      await settle(p);
    }
    const held = client.reduce((n, r) => n + r.held, 0);
    assert.ok(held <= INITIAL_CONNECTION_WINDOW_BYTES, `the opener's owner holds ${held / MiB} MiB it never consumed`);
  });

  it('consumed() with a non-integer count cannot corrupt the connection window', async () => {
    const { p, server } = stalledPair();
    p.opener.openStream(REQ, false).write(Buffer.alloc(100_000));
    await settle(p);
    const s = server[0]!;
    try {
      p.acceptor.streams.get(1)!.consumed(NaN);
    } catch {
      /* throwing is an acceptable answer */
    }
    assert.ok(Number.isInteger(windows(p.acceptor).recv) && Number.isInteger(windows(p.acceptor).pending));
    s.consume();
    assert.equal(windows(p.acceptor).recv, INITIAL_CONNECTION_WINDOW_BYTES);
  });
});

describe('mux scheduling and backpressure', () => {
  it('round-robin: two streams with large queues interleave frame by frame', async () => {
    const { p, server } = stalledPair('sync');
    const a = p.opener.openStream(REQ, false),
      b = p.opener.openStream(REQ, false);
    a.write(Buffer.alloc(4 * MiB, 0xa));
    b.write(Buffer.alloc(4 * MiB, 0xb));
    a.end();
    b.end();
    await until(() => server.length === 2 && server.every((r) => r.ended), 'both streams');
    const order = p.up.log
      .filter((f) => f.type === FrameType.DATA && f.data.length > 0)
      .map((f) => (f as { stream_id: number }).stream_id);
    assert.equal(order.length, 2 * ((4 * MiB) / MAX_DATA_FRAME_BYTES));
    // `a` wrote first and filled the socket on its own; from the moment `b` has data they take turns,
    // except while one is waiting for stream credit (returned in 256 KiB steps).
    const first_b = order.indexOf(b.id),
      last_a = order.lastIndexOf(a.id);
    let turns = 0;
    for (let i = first_b + 1; i <= last_a; i++) if (order[i] !== order[i - 1]) turns++;
    assert.ok(turns >= (last_a - first_b) / 2, `only ${turns} turns in ${last_a - first_b} frames`);
    // Neither stream runs far ahead: after any prefix, the counts differ by at most one stream window.
    let da = 0;
    for (const id of order) {
      da += id === a.id ? 1 : -1;
      assert.ok(Math.abs(da) * MAX_DATA_FRAME_BYTES <= INITIAL_STREAM_WINDOW_BYTES);
    }
  });

  it('the socket bound: a paused transport holds at most ~SOCKET_HIGH_WATER_BYTES in flight, control frames still go out', async () => {
    const { p, server } = stalledPair('sync');
    p.up.pause();
    const s = p.opener.openStream(REQ, false);
    s.write(Buffer.alloc(5 * MiB, 3));
    s.end();
    await tick(); // the session may defer its pump to the end of the job
    assert.ok(p.opener.inflightBytes >= SOCKET_HIGH_WATER_BYTES);
    assert.ok(
      p.opener.inflightBytes < SOCKET_HIGH_WATER_BYTES + MAX_DATA_FRAME_BYTES + 1024,
      `inflight ${p.opener.inflightBytes}`,
    );
    assert.ok(s.queuedBytes >= 5 * MiB - SOCKET_HIGH_WATER_BYTES - MAX_DATA_FRAME_BYTES);
    const other = p.opener.openStream(REQ, false);
    other.write(Buffer.alloc(10));
    await tick();
    assert.equal(p.up.log.at(-1)?.type, FrameType.HEADERS, 'no data while the socket is full');
    other.reset(); // control frames are never held back by the data bound
    assert.equal(p.up.log.at(-1)?.type, FrameType.RESET);
    await settle(p);
    assert.equal(server.length, 0);
    p.up.resume();
    await until(() => server[0]?.ended === true, 'stream completes after resume');
    assert.equal(server[0]!.bytes, 5 * MiB);
    assert.equal(p.opener.inflightBytes, 0);
  });

  it('write() returns false at the high-water mark and onDrain fires once the queue drains', async () => {
    const { p, server } = stalledPair('sync');
    p.up.pause();
    // Fill the (paused) socket with another stream's data so nothing leaves this stream's queue.
    p.opener.openStream(REQ, false).write(Buffer.alloc(SOCKET_HIGH_WATER_BYTES + MAX_DATA_FRAME_BYTES));
    await tick();
    assert.ok(p.opener.inflightBytes >= SOCKET_HIGH_WATER_BYTES);
    const s = p.opener.openStream(REQ, false);
    let drains = 0;
    s.onDrain = () => {
      drains++;
      assert.ok(s.queuedBytes < STREAM_QUEUE_HIGH_WATER_BYTES / 2);
    };
    let written = 0;
    for (;;) {
      const ok = s.write(Buffer.alloc(16 * KB));
      written += 16 * KB;
      assert.equal(ok, s.queuedBytes < STREAM_QUEUE_HIGH_WATER_BYTES);
      if (!ok) break;
      await tick();
    }
    assert.equal(written, STREAM_QUEUE_HIGH_WATER_BYTES);
    await settle(p);
    assert.equal(drains, 0, 'no drain while the socket is stalled');
    p.up.resume();
    await until(() => drains === 1, 'onDrain');
    assert.equal(s.write(Buffer.alloc(16 * KB)), true);
    s.end();
    await until(() => server[1]?.ended === true, 'end');
    assert.equal(server[1]!.bytes, written + 16 * KB);
    assert.equal(drains, 1);
  });

  it('write after end throws; end is idempotent; writes on a reset stream return false', () => {
    const { p } = stalledPair();
    const s: MuxStream = p.opener.openStream(REQ, false);
    s.end();
    s.end();
    assert.throws(() => s.write(Buffer.from('x')), /write after end/);
    const t = p.opener.openStream(REQ, false);
    t.reset();
    assert.equal(t.write(Buffer.from('x')), false);
    assert.throws(() => p.acceptor.openStream(REQ, true), /only the opener/);
  });
});
