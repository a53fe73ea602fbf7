// Hostile agents: malformed binary frames, malformed or oversized control messages. Whatever one agent sends,
// the control plane (a real `ee control-plane` process) either ignores it or closes THAT agent's connection
// with a code and a reason, never crashes, and keeps serving another, healthy agent's app.

import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import fc from 'fast-check';
import {
  encodeData,
  encodeHeaders,
  encodeWindowUpdate,
  FrameType,
  MAX_CONTROL_MESSAGE_BYTES,
  MAX_WS_MESSAGE_BYTES,
  MAX_WINDOW_BYTES,
} from '@easyenclave/protocol';
import {
  closeAll,
  spawnCp,
  startAgent,
  startBackend,
  waitFor,
  waitRoutable,
  type CpProcess,
} from '../helpers/network.js';
import { pingOrClose, RawAgent, type CloseInfo } from './raw-agent.js';
import { httpGet, proxyGet, within, type HttpResult } from './util.js';

const FUZZ = { app_name: 'fuzz', repo: 'acme/fuzz' } as const;
const NUM_RUNS = Number(process.env.EE_FUZZ_RUNS ?? 100);

interface Net {
  cp: CpProcess;
}

/** A control plane subprocess plus a healthy agent serving app "good". */
async function network(): Promise<Net> {
  const backend = await startBackend();
  // In-memory SQLite: these runs exercise the protocol, not persistence, and fsyncs would dominate them.
  const cp = await spawnCp({
    EE_DB_PATH: ':memory:',
    EE_QUEUE_TIMEOUT_MS: '200',
    EE_PROXY_TIMEOUT_SEC: '5',
    EE_LOG_LEVEL: 'error',
  });
  startAgent({ control_ws: cp.ws_url, backend_url: backend.url, app_name: 'good', repo: 'acme/good' });
  await waitRoutable(cp, 'good', 10_000);
  return { cp };
}

let shared: Net | null = null;
/** The shared network, replaced by a fresh one when a previous test crashed its control plane. */
async function net(): Promise<Net> {
  if (shared && shared.cp.child.exitCode === null && shared.cp.child.signalCode === null) return shared;
  shared = await network();
  return shared;
}

after(() => closeAll());

function assertAlive(cp: CpProcess, what: string): void {
  const dead = cp.child.exitCode !== null || cp.child.signalCode !== null;
  assert.ok(
    !dead,
    `the control plane process died (${cp.child.exitCode ?? cp.child.signalCode}) after ${what}; its output:\n${cp.output().slice(-3000)}`,
  );
}

/** The control plane survived and still serves the healthy app. */
async function assertServing(cp: CpProcess, what: string): Promise<void> {
  await new Promise((r) => setTimeout(r, 20)); // let a crash, if any, happen
  assertAlive(cp, what);
  let r: HttpResult;
  try {
    r = await proxyGet(cp, '/echo', 'good');
  } catch (err) {
    assertAlive(cp, what);
    throw new Error(`the healthy app is unreachable after ${what}: ${(err as Error).message}`);
  }
  assert.equal(r.status, 200, `the healthy app after ${what}: ${r.text}`);
  assertAlive(cp, what);
}

/** Either the control plane ignored what was sent (the connection still answers pings), or it closed it. */
async function outcome(raw: RawAgent): Promise<'open' | CloseInfo> {
  const r = await pingOrClose(raw, 3000);
  if (r === 'pong') return 'open';
  return raw.waitClose(3000);
}

function assertClosedWithReason(o: 'open' | CloseInfo, codes: number[], what: string): CloseInfo {
  assert.notEqual(o, 'open', `${what}: the connection should have been closed`);
  const c = o as CloseInfo;
  assert.ok(codes.includes(c.code), `${what}: close code ${c.code} (reason "${c.reason}"), expected one of ${codes}`);
  assert.ok(c.reason.length > 0, `${what}: close code ${c.code} carries no reason`);
  return c;
}

let apps = 0;
/** A registered, attested, healthy raw agent; each gets its own app so no run can receive another's traffic. */
async function registered(cp: CpProcess): Promise<RawAgent> {
  const n = ++apps;
  const raw = await RawAgent.connect(cp.ws_url, { app_name: `fuzz-${n}`, repo: `acme/fuzz-${n}` });
  await raw.registerAndAttest();
  return raw;
}

/** A registered agent with one proxied request in flight toward it (stream 1 open on the control plane). */
async function withOpenStream(
  cp: CpProcess,
): Promise<{ raw: RawAgent; pending: Promise<HttpResult | Error>; stream_id: number }> {
  const raw = await registered(cp);
  await waitRoutable(cp, raw.reg.app_name);
  const pending = proxyGet(cp, '/fz', raw.reg.app_name).catch((err: Error) => err);
  const head = await raw.waitFrame((f) => f.type === FrameType.HEADERS);
  return { raw, pending, stream_id: (head as { stream_id: number }).stream_id };
}

function frame(type: number, flags: number, stream_id: number, payload: Uint8Array): Buffer {
  const h = Buffer.alloc(6);
  h[0] = type;
  h[1] = flags;
  h.writeUInt32BE(stream_id >>> 0, 2);
  return Buffer.concat([h, payload]);
}

/**
 * Runs a property without shrinking (a crashed control plane cannot be re-run against) and fails with the
 * seed, the counterexample as hex and the underlying error, so a failure is reproducible with EE_FUZZ_SEED.
 */
async function runProperty(prop: fc.IAsyncProperty<[Uint8Array[]]> | fc.IAsyncProperty<[Buffer[]]>): Promise<void> {
  const seed = process.env.EE_FUZZ_SEED ? Number(process.env.EE_FUZZ_SEED) : undefined;
  const details = await fc.check(prop as fc.IAsyncProperty<[Uint8Array[]]>, {
    numRuns: NUM_RUNS,
    endOnFailure: true,
    ...(seed !== undefined ? { seed } : {}),
  });
  if (!details.failed) return;
  const example = details.counterexample ? describeRun(details.counterexample[0]) : '(none)';
  const cause = details.errorInstance instanceof Error ? details.errorInstance.message : String(details.errorInstance);
  throw new Error(
    `property failed after ${details.numRuns} runs (EE_FUZZ_SEED=${details.seed}); messages (hex): ${example}\n${cause}`,
  );
}

const describeRun = (msgs: Uint8Array[]) => JSON.stringify(msgs.map((m) => Buffer.from(m).toString('hex')));

describe('fuzz: arbitrary binary messages from a registered agent', () => {
  test(`arbitrary byte arrays (${NUM_RUNS} runs): ignored or closed with 1002/1009 and a reason; the control plane keeps serving`, async () => {
    const { cp } = await net();
    let closed = 0;
    await runProperty(
      fc.asyncProperty(fc.array(fc.uint8Array({ maxLength: 200 }), { minLength: 1, maxLength: 4 }), async (msgs) => {
        assertAlive(cp, 'the previous run');
        const raw = await registered(cp);
        for (const m of msgs) raw.sendBinary(m);
        const o = await outcome(raw);
        if (o !== 'open') {
          closed++;
          assertClosedWithReason(o, [1002, 1009], `binary messages ${describeRun(msgs)}`);
        }
        raw.terminate();
        await assertServing(cp, `binary messages ${describeRun(msgs)}`);
      }),
    );
    assert.ok(closed > 0, 'some inputs must have been refused');
    const health = await httpGet(`${cp.api_url}/health`);
    await waitFor(
      async () => (await httpGet(`${cp.api_url}/health`)).json.agents_connected === 1,
      3000,
      'fuzz links to be gone',
    );
    assert.equal(health.status, 200);
  });

  test(`structure-aware frames on an in-flight stream (${NUM_RUNS} runs): never a crash, never a hung request`, async () => {
    const { cp } = await net();
    // Frames shaped like the real thing (a matching payload per type, mostly on the open stream 1), plus
    // random ones, so the fuzz gets past the header checks into stream handling and the HTTP response.
    const token = fc.oneof(
      fc.constantFrom('content-type', 'x-test', 'content-length', 'set-cookie', 'text/plain', '1', ''),
      fc.string({ unit: 'binary', maxLength: 6 }),
      fc.string({ maxLength: 6 }),
    );
    const json = fc
      .oneof(
        {
          weight: 4,
          arbitrary: fc.record({
            status: fc.oneof(fc.integer({ min: 100, max: 599 }), fc.integer({ min: -10, max: 1000 })),
            headers: fc.array(fc.tuple(token, token), { maxLength: 3 }),
          }),
        },
        { weight: 1, arbitrary: fc.record({ headers: fc.array(fc.tuple(token, token), { maxLength: 3 }) }) },
        { weight: 1, arbitrary: fc.jsonValue({ maxDepth: 2 }) },
      )
      .map((v) => Buffer.from(JSON.stringify(v) ?? 'null'));
    const streamId = fc.oneof(
      { weight: 6, arbitrary: fc.constant(1) },
      { weight: 1, arbitrary: fc.constantFrom(0, 2) },
      { weight: 1, arbitrary: fc.integer({ min: 0, max: 0xffffffff }) },
    );
    const flags = fc.oneof(
      { weight: 6, arbitrary: fc.constantFrom(0, 1) },
      { weight: 1, arbitrary: fc.integer({ min: 0, max: 255 }) },
    );
    const u32 = (n: number) => {
      const b = Buffer.alloc(4);
      b.writeUInt32BE(n >>> 0);
      return b;
    };
    const increment = fc.oneof(fc.integer({ min: 1, max: 1 << 20 }), fc.constantFrom(0, MAX_WINDOW_BYTES, 0xffffffff));
    const frameArb = fc.oneof(
      { weight: 4, arbitrary: fc.tuple(flags, streamId, json).map(([f, id, p]) => frame(FrameType.HEADERS, f, id, p)) },
      {
        weight: 3,
        arbitrary: fc
          .tuple(flags, streamId, fc.uint8Array({ maxLength: 64 }))
          .map(([f, id, p]) => frame(FrameType.DATA, f, id, p)),
      },
      {
        weight: 1,
        arbitrary: fc.tuple(flags, streamId, json).map(([f, id, p]) => frame(FrameType.TRAILERS, f, id, p)),
      },
      {
        weight: 1,
        arbitrary: fc.tuple(streamId, increment).map(([id, n]) => frame(FrameType.WINDOW_UPDATE, 0, id, u32(n))),
      },
      {
        weight: 1,
        arbitrary: fc
          .tuple(streamId, fc.integer({ min: 0, max: 0xffff }), fc.string({ maxLength: 20 }))
          .map(([id, code, reason]) =>
            frame(FrameType.RESET, 0, id, Buffer.concat([u32(code).subarray(2), Buffer.from(reason)])),
          ),
      },
      {
        weight: 1,
        arbitrary: fc
          .tuple(fc.integer({ min: 0, max: 0xffffffff }), fc.integer({ min: 0, max: 0xffff }))
          .map(([last, code]) => frame(FrameType.GOAWAY, 0, 0, Buffer.concat([u32(last), u32(code).subarray(2)]))),
      },
      {
        weight: 1,
        arbitrary: fc
          .tuple(
            fc.integer({ min: 0, max: 255 }),
            fc.integer({ min: 0, max: 255 }),
            streamId,
            fc.uint8Array({ maxLength: 64 }),
          )
          .map(([t, f, id, p]) => frame(t, f, id, p)),
      },
    );

    await runProperty(
      fc.asyncProperty(fc.array(frameArb, { minLength: 1, maxLength: 5 }), async (frames) => {
        assertAlive(cp, 'the previous run');
        const what = `frames ${describeRun(frames)} on an open stream`;
        const { raw, pending } = await withOpenStream(cp);
        for (const f of frames) raw.sendBinary(f);
        const o = await outcome(raw);
        if (o !== 'open') assertClosedWithReason(o, [1002, 1009], what);
        raw.terminate();
        // The client of the proxied request always gets an answer or an error: never a hang.
        await within(pending, 7000, `the proxied request after ${what}`);
        await assertServing(cp, what);
      }),
    );
  });
});

describe('malformed and oversized messages (targeted)', () => {
  test('binary frame before register: closed with 4003', async () => {
    const { cp } = await net();
    const raw = await RawAgent.connect(cp.ws_url, FUZZ);
    raw.sendBinary(encodeWindowUpdate(0, 1));
    const c = assertClosedWithReason(await outcome(raw), [4003], 'binary before register');
    assert.match(c.reason, /register/);
    await assertServing(cp, 'binary before register');
  });

  test('invalid JSON: closed with 1002', async () => {
    const { cp } = await net();
    const raw = await registered(cp);
    raw.sendText('{"type": "health", "status": ');
    const c = assertClosedWithReason(await outcome(raw), [1002], 'invalid JSON');
    assert.match(c.reason, /not valid JSON/);
    await assertServing(cp, 'invalid JSON');
  });

  test('unknown message type: closed with 1002', async () => {
    const { cp } = await net();
    const raw = await registered(cp);
    raw.sendJson({ type: 'make_me_admin', please: true });
    const c = assertClosedWithReason(await outcome(raw), [1002], 'unknown message type');
    assert.match(c.reason, /invalid control message/);
    await assertServing(cp, 'unknown message type');
  });

  test('a text message over 48 KiB: closed with 1009 and a reason', async () => {
    const { cp } = await net();
    const raw = await registered(cp);
    const text = JSON.stringify({ type: 'health', status: 'fail', detail: 'x'.repeat(MAX_CONTROL_MESSAGE_BYTES) });
    assert.ok(text.length > MAX_CONTROL_MESSAGE_BYTES && text.length < MAX_WS_MESSAGE_BYTES);
    raw.sendText(text);
    const c = assertClosedWithReason(await outcome(raw), [1009], 'text > 48 KiB');
    assert.match(c.reason, /exceeds/);
    await assertServing(cp, 'text > 48 KiB');
  });

  test('a text message over 48 KiB in UTF-8 bytes (but fewer UTF-16 units) is refused too', async () => {
    const { cp } = await net();
    // A correct attest_response padded with multi-byte measurement names: 60 KB on the wire, under the
    // WebSocket cap, over the 48 KiB control-message limit.
    const raw = await RawAgent.connect(cp.ws_url, FUZZ);
    raw.register();
    const req = await raw.next('attest_request');
    const answer = await raw.buildAnswer(req);
    for (let i = 0; i < 200; i++) answer.measurements[`${i}-${'中'.repeat(90)}`] = 'x';
    const text = JSON.stringify(answer);
    const bytes = Buffer.byteLength(text);
    assert.ok(
      bytes > MAX_CONTROL_MESSAGE_BYTES && bytes < MAX_WS_MESSAGE_BYTES && text.length < MAX_CONTROL_MESSAGE_BYTES,
      `${bytes} bytes, ${text.length} units`,
    );
    raw.sendText(text);
    // The attest_response is handled asynchronously (verification), so wait for the close itself.
    const o = await raw.waitClose(1500).catch(() => 'open' as const);
    const got = JSON.stringify(raw.received.map((m) => [m.type, m.ok]));
    assert.notEqual(o, 'open', `a ${bytes}-byte control message was accepted and processed: ${got}`);
    const c = assertClosedWithReason(o, [1009], `a ${bytes}-byte control message`);
    assert.match(
      c.reason,
      /exceeds/,
      `a ${bytes}-byte control message was processed instead of refused for its size: ${got}`,
    );
    await assertServing(cp, 'multi-byte text > 48 KiB');
  });

  test('a binary message over 64 KiB + 64: closed with 1009 and a reason', async () => {
    const { cp } = await net();
    const raw = await registered(cp);
    raw.sendBinary(Buffer.alloc(MAX_WS_MESSAGE_BYTES + 1));
    const o = await outcome(raw);
    assert.notEqual(o, 'open');
    assert.equal((o as CloseInfo).code, 1009);
    assertClosedWithReason(o, [1009], 'binary > 64 KiB + 64');
    await assertServing(cp, 'binary > 64 KiB + 64');
  });

  test('DATA for a never-opened stream: closed with 1002', async () => {
    const { cp } = await net();
    const raw = await registered(cp);
    raw.sendBinary(encodeData(7, Buffer.from('hello'), false));
    const c = assertClosedWithReason(await outcome(raw), [1002], 'DATA for a never-opened stream');
    assert.match(c.reason, /never opened/);
    await assertServing(cp, 'DATA for a never-opened stream');
  });

  test('WINDOW_UPDATE overflow on the connection: closed with 1002', async () => {
    const { cp } = await net();
    const raw = await registered(cp);
    raw.sendBinary(encodeWindowUpdate(0, MAX_WINDOW_BYTES));
    const c = assertClosedWithReason(await outcome(raw), [1002], 'connection WINDOW_UPDATE overflow');
    assert.match(c.reason, /overflow/);
    await assertServing(cp, 'connection WINDOW_UPDATE overflow');
  });

  test('WINDOW_UPDATE overflow on an open stream: closed with 1002, and the waiting client gets an error, not a hang', async () => {
    const { cp } = await net();
    const { raw, pending, stream_id } = await withOpenStream(cp);
    raw.sendBinary(encodeWindowUpdate(stream_id, MAX_WINDOW_BYTES));
    const c = assertClosedWithReason(await outcome(raw), [1002], 'stream WINDOW_UPDATE overflow');
    assert.match(c.reason, /overflow/);
    const r = await within(pending, 5000, 'the proxied request on the broken tunnel');
    assert.ok(
      r instanceof Error || r.status >= 500,
      `the client must see a failure: ${r instanceof Error ? r.message : r.status}`,
    );
    await assertServing(cp, 'stream WINDOW_UPDATE overflow');
  });
});

describe('inputs that must not crash the control plane process', () => {
  test('a response head with a header name that is not an HTTP token: the request fails, the control plane lives', async () => {
    const { cp } = await net();
    const { raw, pending, stream_id } = await withOpenStream(cp);
    raw.sendBinary(
      encodeHeaders(stream_id, Buffer.from(JSON.stringify({ status: 200, headers: [['bad name', 'x']] })), true),
    );
    await Promise.race([pending, cp.exited, new Promise((r) => setTimeout(r, 2000))]);
    await new Promise((r) => setTimeout(r, 100));
    assertAlive(cp, 'a response head with the header name "bad name"');
    raw.terminate();
    const r = await within(pending, 5000, 'the proxied request');
    assert.ok(
      r instanceof Error || r.status >= 500,
      `the client must see a failure: ${r instanceof Error ? r.message : r.status}`,
    );
    await assertServing(cp, 'a response head with an invalid header name');
  });

  test('a response head with a header value outside latin-1: the request fails, the control plane lives', async () => {
    const { cp } = await net();
    const { raw, pending, stream_id } = await withOpenStream(cp);
    raw.sendBinary(
      encodeHeaders(stream_id, Buffer.from(JSON.stringify({ status: 200, headers: [['x-name', '中']] })), true),
    );
    await Promise.race([pending, cp.exited, new Promise((r) => setTimeout(r, 2000))]);
    await new Promise((r) => setTimeout(r, 100));
    assertAlive(cp, 'a response head with the header value "中"');
    raw.terminate();
    const r = await within(pending, 5000, 'the proxied request');
    assert.ok(
      r instanceof Error || r.status >= 500,
      `the client must see a failure: ${r instanceof Error ? r.message : r.status}`,
    );
    await assertServing(cp, 'a response head with a non-latin-1 header value');
  });

  test('a control message whose validation error quotes a long non-ASCII key: closed with 1002, the control plane lives', async () => {
    const { cp } = await net();
    const raw = await registered(cp);
    raw.sendJson({ type: 'health', status: 'pass', ['中'.repeat(100)]: 1 });
    // Wait for the close, or for the process to die, whichever comes first.
    await Promise.race([raw.closed, cp.exited, new Promise((r) => setTimeout(r, 3000))]);
    await new Promise((r) => setTimeout(r, 100));
    assertAlive(cp, 'a control message with a 300-byte non-ASCII unknown key');
    assert.ok(raw.close_info, 'the connection should have been closed');
    const c = assertClosedWithReason(raw.close_info, [1002], 'a control message with a long non-ASCII unknown key');
    assert.ok(Buffer.byteLength(c.reason) <= 123);
    await assertServing(cp, 'a control message with a long non-ASCII unknown key');
  });
});
