import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import {
  decodeRequestHead,
  decodeResponseHead,
  decodeTrailers,
  DEFAULT_MAX_HEADER_BYTES,
  encodeHead,
  HeadError,
  headerBytes,
  headersFromRaw,
  HOP_BY_HOP,
  MAX_HEADER_COUNT,
  type HeaderList,
  type RequestHead,
} from '@easyenclave/protocol';

const TCHARS = "!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ".split('');
const token = (min: number, max: number) =>
  fc.array(fc.constantFrom(...TCHARS), { minLength: min, maxLength: max }).map((a) => a.join(''));
/** Header values: latin1 text without control characters other than tab (Node's own rule). */
const value = fc.string({ unit: 'binary', maxLength: 60 }).map((s) => s.replace(/[^\t\x20-\x7e\x80-\xff]/g, ''));
const headers: fc.Arbitrary<HeaderList> = fc.array(fc.tuple(token(1, 30), value), { maxLength: 30 });
const path = fc.string({ unit: 'binary', maxLength: 200 }).map((s) => '/' + s.replace(/[\s\0]/g, ''));
const requestHead: fc.Arbitrary<RequestHead> = fc.record(
  {
    method: token(1, 32),
    path,
    headers,
    timeout_ms: fc.integer({ min: 1, max: 24 * 3600 * 1000 }),
    upgrade: fc.boolean(),
  },
  { requiredKeys: ['method', 'path', 'headers', 'timeout_ms'] },
);

const json = (o: unknown): Buffer => Buffer.from(JSON.stringify(o));
const baseReq = { method: 'GET', path: '/x?y=1', headers: [['host', 'a.example']], timeout_ms: 1000 };
function rejects(fn: () => unknown, match?: RegExp, too_large = false): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof HeadError, `expected HeadError, got ${String(err)}`);
    if (match) assert.match(err.message, match);
    assert.equal(err.too_large, too_large);
    return true;
  });
}

describe('heads round trip', () => {
  it('request heads', () => {
    fc.assert(
      fc.property(requestHead, (h) => {
        const expected: RequestHead = { method: h.method, path: h.path, headers: h.headers, timeout_ms: h.timeout_ms };
        if (h.upgrade) expected.upgrade = true; // upgrade:false is the default and is not echoed back
        assert.deepEqual(decodeRequestHead(encodeHead(h)), expected);
      }),
    );
  });
  it('response heads and trailers', () => {
    fc.assert(
      fc.property(fc.integer({ min: 100, max: 599 }), headers, (status, hs) => {
        assert.deepEqual(decodeResponseHead(encodeHead({ status, headers: hs })), { status, headers: hs });
        assert.deepEqual(decodeTrailers(encodeHead({ headers: hs })), hs);
      }),
    );
  });
  it('preserves header order, case and duplicates', () => {
    const hs: HeaderList = [
      ['Set-Cookie', 'a=1'],
      ['set-cookie', 'b=2'],
      ['X-Unicode', 'v\u00e4lue'],
      ['Set-Cookie', 'a=1'],
    ];
    assert.deepEqual(decodeResponseHead(encodeHead({ status: 200, headers: hs })).headers, hs);
  });
});

describe('head validation', () => {
  it('rejects CR, LF and NUL (and any non-token name / control character) in headers', () => {
    fc.assert(
      fc.property(
        fc.constantFrom('\r', '\n', '\0', '\r\n'),
        fc.boolean(),
        fc.string({ maxLength: 5 }),
        fc.string({ maxLength: 5 }),
        (bad, inName, a, b) => {
          const pair = inName ? [`x${a}${bad}${b}`, 'v'] : ['x-a', `${a}${bad}Injected: yes${b}`];
          const why = inName ? /not an HTTP token/ : /control character/;
          rejects(() => decodeRequestHead(json({ ...baseReq, headers: [pair] })), why);
          rejects(() => decodeResponseHead(json({ status: 200, headers: [pair] })), why);
          rejects(() => decodeTrailers(json({ headers: [pair] })), why);
        },
      ),
    );
  });
  it('rejects whitespace and NUL in paths and separators in methods', () => {
    for (const p of ['/a b', '/a\r\nHost: evil', '/a\0', '/a\tb', 'relative', '', '//' + 'x'.repeat(9000)]) {
      rejects(() => decodeRequestHead(json({ ...baseReq, path: p })), /invalid path/);
    }
    for (const m of ['', 'GET /', 'GET\r\n', 'G:T', 'X'.repeat(33), 'GÉT']) {
      rejects(() => decodeRequestHead(json({ ...baseReq, method: m })), /invalid method/);
    }
  });
  it('header byte limit gives too_large; exactly the limit is fine', () => {
    const fill = (n: number): HeaderList => [['x-big', 'v'.repeat(n - 5)]];
    assert.equal(headerBytes(fill(DEFAULT_MAX_HEADER_BYTES)), DEFAULT_MAX_HEADER_BYTES);
    assert.doesNotThrow(() => decodeRequestHead(json({ ...baseReq, headers: fill(DEFAULT_MAX_HEADER_BYTES) })));
    rejects(
      () => decodeRequestHead(json({ ...baseReq, headers: fill(DEFAULT_MAX_HEADER_BYTES + 1) })),
      /exceeds/,
      true,
    );
    rejects(
      () => decodeResponseHead(json({ status: 200, headers: fill(DEFAULT_MAX_HEADER_BYTES + 1) })),
      /exceeds/,
      true,
    );
    rejects(() => decodeTrailers(json({ headers: fill(DEFAULT_MAX_HEADER_BYTES + 1) })), /exceeds/, true);
    // A custom limit, counted over names and values of all headers.
    const hs: HeaderList = [
      ['ab', 'cd'],
      ['ef', 'gh'],
    ];
    assert.doesNotThrow(() => decodeResponseHead(json({ status: 204, headers: hs }), 8));
    rejects(() => decodeResponseHead(json({ status: 204, headers: hs }), 7), /exceeds/, true);
  });
  it('too many headers gives too_large', () => {
    const many = (n: number) => Array.from({ length: n }, (_, i) => ['h', String(i % 10)]);
    assert.doesNotThrow(() => decodeRequestHead(json({ ...baseReq, headers: many(MAX_HEADER_COUNT) })));
    rejects(() => decodeRequestHead(json({ ...baseReq, headers: many(MAX_HEADER_COUNT + 1) })), /more than/, true);
  });
  it('rejects unknown keys, naming them', () => {
    rejects(() => decodeRequestHead(json({ ...baseReq, status: 200 })), /unknown field in head: status/);
    rejects(
      () =>
        decodeRequestHead(Buffer.from('{"method":"GET","path":"/","headers":[],"timeout_ms":1,"__proto__":{"x":1}}')),
      /__proto__/,
    );
    rejects(
      () => decodeResponseHead(json({ status: 200, headers: [], method: 'GET' })),
      /unknown field in head: method/,
    );
    rejects(() => decodeTrailers(json({ headers: [], status: 200 })), /unknown field in head: status/);
  });
  it('rejects wrong shapes and out-of-range values', () => {
    const bad: Array<[unknown, RegExp]> = [
      [{ ...baseReq, timeout_ms: 0 }, /timeout_ms/],
      [{ ...baseReq, timeout_ms: 1.5 }, /timeout_ms/],
      [{ ...baseReq, timeout_ms: 24 * 3600 * 1000 + 1 }, /timeout_ms/],
      [{ ...baseReq, timeout_ms: '100' }, /timeout_ms/],
      [{ ...baseReq, upgrade: 'yes' }, /upgrade/],
      [{ ...baseReq, headers: {} }, /array/],
      [{ ...baseReq, headers: [['a', 'b', 'c']] }, /pair/],
      [{ ...baseReq, headers: [['a', 1]] }, /pair/],
      [{ ...baseReq, headers: [['', 'x']] }, /not an HTTP token/],
      [{ method: 'GET', path: '/', headers: [] }, /timeout_ms/],
    ];
    for (const [o, re] of bad) rejects(() => decodeRequestHead(json(o)), re);
    for (const status of [99, 600, 200.5, '200', null])
      rejects(() => decodeResponseHead(json({ status, headers: [] })), /invalid status/);
    for (const text of ['', 'null', '[]', '1', '"x"', '{', '{"a":1}x'])
      rejects(() => decodeRequestHead(Buffer.from(text)));
  });
});

describe('headersFromRaw', () => {
  it('drops hop-by-hop headers (any case) and keeps the rest in order', () => {
    const rawHs = [
      'Host',
      'a',
      'Connection',
      'keep-alive',
      'Keep-Alive',
      'timeout=5',
      'Transfer-Encoding',
      'chunked',
      'TE',
      'trailers',
      'Trailer',
      'x-t',
      'Upgrade',
      'websocket',
      'Proxy-Connection',
      'x',
      'Proxy-Authorization',
      'Basic x',
      'PROXY-AUTHENTICATE',
      'y',
      'Content-Type',
      'text/plain',
      'X-Dup',
      '1',
      'x-dup',
      '2',
    ];
    assert.deepEqual(headersFromRaw(rawHs), [
      ['Host', 'a'],
      ['Content-Type', 'text/plain'],
      ['X-Dup', '1'],
      ['x-dup', '2'],
    ]);
  });
  it('drops headers named by Connection (every Connection header, trimmed, any case)', () => {
    const rawHs = [
      'X-Secret',
      's',
      'connection',
      ' X-Secret ,x-other',
      'X-Other',
      'o',
      'CONNECTION',
      'x-third',
      'x-third',
      't',
      'Accept',
      '*/*',
    ];
    assert.deepEqual(headersFromRaw(rawHs), [['Accept', '*/*']]);
  });
  it('keeps upgrade and connection when asked', () => {
    const rawHs = [
      'Host',
      'h',
      'Connection',
      'Upgrade',
      'Upgrade',
      'websocket',
      'Sec-WebSocket-Key',
      'k',
      'Keep-Alive',
      '1',
    ];
    assert.deepEqual(headersFromRaw(rawHs, new Set(['upgrade', 'connection'])), [
      ['Host', 'h'],
      ['Connection', 'Upgrade'],
      ['Upgrade', 'websocket'],
      ['Sec-WebSocket-Key', 'k'],
    ]);
    assert.deepEqual(headersFromRaw(rawHs), [
      ['Host', 'h'],
      ['Sec-WebSocket-Key', 'k'],
    ]);
  });
  it('property: output is an in-order subsequence of the input with no hop-by-hop or Connection-named header', () => {
    const name = fc.oneof(token(1, 12), fc.constantFrom(...HOP_BY_HOP, 'Connection', 'UPGRADE', 'x-a', 'X-A', 'x-b'));
    const pairs = fc.array(fc.tuple(name, fc.oneof(value, fc.constantFrom('x-a', 'X-A, x-b', 'close', 'upgrade'))), {
      maxLength: 20,
    });
    fc.assert(
      fc.property(pairs, fc.boolean(), (ps, keepUpgrade) => {
        const keep = keepUpgrade ? new Set(['upgrade', 'connection']) : undefined;
        const out = headersFromRaw(ps.flat(), keep);
        const named = new Set(
          ps
            .filter(([k]) => k.toLowerCase() === 'connection')
            .flatMap(([, v]) => v.split(',').map((t) => t.trim().toLowerCase())),
        );
        const expected = ps.filter(([k]) => {
          const l = k.toLowerCase();
          return keep?.has(l) || (!HOP_BY_HOP.has(l) && !named.has(l));
        });
        assert.deepEqual(out, expected);
      }),
    );
  });
});

describe('head decoder fuzz', () => {
  const onlyHeadErrors = (buf: Buffer): void => {
    for (const decode of [decodeRequestHead, decodeResponseHead, decodeTrailers]) {
      try {
        decode(buf);
      } catch (err) {
        assert.ok(err instanceof HeadError, `threw ${String(err)}`);
      }
    }
  };
  it('arbitrary strings only ever throw HeadError', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'binary', maxLength: 200 }), (s) => onlyHeadErrors(Buffer.from(s))),
      { numRuns: 2000 },
    );
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 200 }), (b) => onlyHeadErrors(Buffer.from(b))),
      { numRuns: 1000 },
    );
  });
  it('arbitrary JSON values and near-miss objects only ever throw HeadError', () => {
    fc.assert(
      fc.property(fc.jsonValue({ maxDepth: 4 }), (v) => onlyHeadErrors(json(v))),
      { numRuns: 1000 },
    );
    const anything = fc.oneof(
      fc.jsonValue({ maxDepth: 2 }),
      fc.string(),
      fc.integer(),
      headers,
      fc.array(fc.array(fc.jsonValue({ maxDepth: 1 }))),
    );
    const nearMiss = fc.dictionary(
      fc.constantFrom('method', 'path', 'headers', 'timeout_ms', 'upgrade', 'status', 'extra'),
      anything,
    );
    fc.assert(
      fc.property(nearMiss, (o) => onlyHeadErrors(json(o))),
      { numRuns: 2000 },
    );
  });
  it('deeply nested JSON is rejected as HeadError, not a crash', () => {
    onlyHeadErrors(Buffer.from('['.repeat(100_000) + ']'.repeat(100_000)));
    onlyHeadErrors(Buffer.from('{"headers":' + '['.repeat(50_000) + ']'.repeat(50_000) + '}'));
  });
});
