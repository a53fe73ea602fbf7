// Model-based test of the multiplexer: a random sequence of open / write / end / consume / reset / deliver
// operations on both ends of up to 8 streams, with the transport stepped frame by frame by the sequence itself,
// then everything is consumed and ended and the links drained. Checked: no stream ever holds more unconsumed
// bytes than its window (nor a side more than the connection window), every byte written on a stream that was
// not reset arrives once and in order (reset streams deliver a prefix), trailers arrive, every stream is freed,
// and both connection windows return to their initial values.

import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import {
  INITIAL_CONNECTION_WINDOW_BYTES,
  INITIAL_STREAM_WINDOW_BYTES,
  ResetCode,
  type HeaderList,
  type MuxStream,
} from '@easyenclave/protocol';
import { pair, REQ, RES, tick, windows, type Link, type Pair } from './mux-harness.js';

type Side = 0 | 1; // 0 = opener's end, 1 = acceptor's end; data direction d flows from end d to end 1-d
type Op =
  | { k: 'open'; end: boolean }
  | { k: 'write'; side: Side; i: number; size: number }
  | { k: 'end'; side: Side; i: number; trailers: boolean }
  | { k: 'consume'; side: Side; i: number; frac: number }
  | { k: 'reset'; side: Side; i: number }
  | { k: 'deliver'; dir: Side; n: number };

interface End {
  stream: MuxStream | null;
  sent: Buffer[];
  ended: boolean;
  trailers: HeaderList | null;
  // receive side: what this end got from the other
  got: Buffer[];
  held: number;
  got_end: boolean;
  got_trailers: HeaderList | null;
}
interface Logical {
  ends: [End, End];
  reset: boolean;
}

const POOL = randomBytes(2 * 1024 * 1024);
const side = fc.constantFrom<Side>(0, 1);
const idx = fc.nat({ max: 7 });
const op: fc.Arbitrary<Op> = fc.oneof(
  { weight: 2, arbitrary: fc.record({ k: fc.constant('open' as const), end: fc.boolean() }) },
  {
    weight: 5,
    arbitrary: fc.record({
      k: fc.constant('write' as const),
      side,
      i: idx,
      size: fc.oneof(
        fc.integer({ min: 1, max: 2048 }),
        fc.integer({ min: 1, max: 65536 }),
        fc.integer({ min: 200_000, max: 700_000 }),
      ),
    }),
  },
  { weight: 2, arbitrary: fc.record({ k: fc.constant('end' as const), side, i: idx, trailers: fc.boolean() }) },
  {
    weight: 3,
    arbitrary: fc.record({
      k: fc.constant('consume' as const),
      side,
      i: idx,
      frac: fc.double({ min: 0, max: 1, noNaN: true }),
    }),
  },
  { weight: 1, arbitrary: fc.record({ k: fc.constant('reset' as const), side, i: idx }) },
  {
    weight: 5,
    arbitrary: fc.record({ k: fc.constant('deliver' as const), dir: side, n: fc.integer({ min: 1, max: 40 }) }),
  },
);

const newEnd = (): End => ({
  stream: null,
  sent: [],
  ended: false,
  trailers: null,
  got: [],
  held: 0,
  got_end: false,
  got_trailers: null,
});

function attach(l: Logical, s: Side, stream: MuxStream, sess: Pair): void {
  const e = l.ends[s];
  e.stream = stream;
  stream.onData = (c) => {
    e.got.push(c);
    e.held += c.length;
    assert.ok(e.held <= INITIAL_STREAM_WINDOW_BYTES, `stream ${stream.id} end ${s} holds ${e.held} unconsumed bytes`);
    const session = s === 0 ? sess.opener : sess.acceptor;
    let open_held = 0;
    for (const st of session.streams.values()) open_held += st['unconsumed'];
    assert.ok(
      open_held <= INITIAL_CONNECTION_WINDOW_BYTES,
      `side ${s} holds ${open_held} unconsumed bytes on open streams`,
    );
  };
  stream.onTrailers = (t) => {
    e.got_trailers = t;
  };
  stream.onEnd = () => {
    e.got_end = true;
  };
  // A request that ends with its head fires no onEnd on the acceptor: the owner reads remote_ended in onStream.
  if (stream.remote_ended) e.got_end = true;
  stream.onReset = () => {
    l.reset = true;
  };
}

async function runModel(ops: Op[]): Promise<void> {
  const streams: Logical[] = [];
  const byId = new Map<number, Logical>();
  const p = pair({
    manual: true,
    onStream: (s) => {
      const l = byId.get(s.id)!;
      attach(l, 1, s, p);
      s.respond(RES);
    },
  });
  const link = (dir: Side): Link => (dir === 0 ? p.up : p.down);
  const pick = (i: number): Logical | undefined => streams[i % Math.max(1, streams.length)];

  const write = (e: End, size: number): void => {
    const s = e.stream;
    if (!s || s.closed || e.ended) return;
    const off = (e.sent.length * 7919 + s.id * 104_729) % (POOL.length - size);
    const chunk = POOL.subarray(off, off + size);
    s.write(chunk);
    e.sent.push(chunk);
  };
  const end = (e: End, trailers: boolean): void => {
    if (!e.stream || e.stream.closed || e.ended) return;
    e.ended = true;
    e.trailers = trailers ? [['x-end', String(e.stream.id)]] : null;
    e.stream.end(e.trailers ?? undefined);
  };
  const consume = (e: End, frac: number): void => {
    const n = Math.ceil(e.held * frac);
    if (!e.stream || n === 0) return;
    e.held -= n;
    e.stream.consumed(n);
  };

  for (const o of ops) {
    const l = o.k === 'open' || o.k === 'deliver' ? undefined : pick(o.i);
    switch (o.k) {
      case 'open': {
        if (streams.length >= 8) break;
        const s = p.opener.openStream(REQ, o.end);
        const nl: Logical = { ends: [newEnd(), newEnd()], reset: false };
        nl.ends[0].ended = o.end;
        streams.push(nl);
        byId.set(s.id, nl);
        attach(nl, 0, s, p);
        break;
      }
      case 'write':
        if (l) write(l.ends[o.side], o.size);
        break;
      case 'end':
        if (l) end(l.ends[o.side], o.trailers);
        break;
      case 'consume':
        if (l) consume(l.ends[o.side], o.frac);
        break;
      case 'reset': {
        const s = l?.ends[o.side].stream;
        if (l && s && !s.closed) {
          l.reset = true;
          s.reset(ResetCode.CANCEL, 'model');
        }
        break;
      }
      case 'deliver':
        link(o.dir).step(o.n);
        break;
    }
    await tick(); // lets a deferred pump run
  }

  // Wind down: consume everything, end every open side, drain both links.
  for (let round = 0; ; round++) {
    assert.ok(round < 5000, 'the session did not quiesce');
    for (const l of streams)
      for (const e of l.ends) {
        consume(e, 1);
        end(e, false);
      }
    const moved = p.up.step() + p.down.step();
    await tick();
    if (moved === 0 && p.up.queue.length === 0 && p.down.queue.length === 0) break;
  }

  assert.deepEqual(p.errors, { opener: [], acceptor: [] });
  for (const [i, l] of streams.entries()) {
    for (const d of [0, 1] as const) {
      const from = l.ends[d],
        to = l.ends[d === 0 ? 1 : 0];
      const sent = Buffer.concat(from.sent),
        got = Buffer.concat(to.got);
      if (l.reset) {
        assert.ok(
          got.length <= sent.length && sent.subarray(0, got.length).equals(got),
          `stream ${i} dir ${d}: not a prefix`,
        );
      } else {
        assert.equal(got.length, sent.length, `stream ${i} dir ${d}: ${got.length} of ${sent.length} bytes`);
        assert.ok(got.equals(sent), `stream ${i} dir ${d}: bytes differ`);
        assert.ok(to.got_end, `stream ${i} dir ${d}: no end`);
        assert.deepEqual(to.got_trailers, from.trailers);
      }
    }
  }
  assert.equal(p.opener.activeStreams, 0, 'opener streams left open');
  assert.equal(p.acceptor.activeStreams, 0, 'acceptor streams left open');
  const o = windows(p.opener),
    a = windows(p.acceptor);
  assert.equal(o.recv, INITIAL_CONNECTION_WINDOW_BYTES);
  assert.equal(a.recv, INITIAL_CONNECTION_WINDOW_BYTES);
  assert.equal(o.send + a.pending, INITIAL_CONNECTION_WINDOW_BYTES, 'opener send window + acceptor unsent credit');
  assert.equal(a.send + o.pending, INITIAL_CONNECTION_WINDOW_BYTES, 'acceptor send window + opener unsent credit');
}

describe('mux model', () => {
  it('random operation sequences keep the flow-control and delivery invariants', async () => {
    const first: Op = { k: 'open', end: false };
    const ops = fc.array(op, { minLength: 1, maxLength: 80, size: 'max' }).map((o) => [first, ...o]);
    await fc.assert(fc.asyncProperty(ops, runModel), { numRuns: 200 });
  });

  it('a hand-written sequence: stall at the window, reset mid-flight, finish the rest', async () => {
    await runModel([
      { k: 'open', end: false },
      { k: 'open', end: true },
      { k: 'deliver', dir: 0, n: 2 },
      { k: 'write', side: 0, i: 0, size: 700_000 },
      { k: 'write', side: 0, i: 0, size: 700_000 },
      { k: 'write', side: 1, i: 1, size: 600_000 },
      { k: 'write', side: 1, i: 1, size: 600_000 },
      { k: 'deliver', dir: 0, n: 40 },
      { k: 'deliver', dir: 1, n: 40 },
      { k: 'deliver', dir: 0, n: 40 },
      { k: 'consume', side: 1, i: 0, frac: 0.5 },
      { k: 'reset', side: 1, i: 1 },
      { k: 'deliver', dir: 1, n: 40 },
      { k: 'end', side: 0, i: 0, trailers: true },
      { k: 'deliver', dir: 0, n: 40 },
    ]);
  });
});
