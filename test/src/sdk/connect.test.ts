// The SDK's app client against a real control plane and a real agent over loopback (sandbox network): requests
// through the tunnel, streamed bodies of a few MB both ways, the control plane's JSON errors as typed errors,
// timeouts and AbortSignal.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { afterEach, describe, test } from 'node:test';
import {
  EasyEnclave,
  ForbiddenError,
  NotFoundError,
  TimeoutError,
  UnauthorizedError,
  UnavailableError,
  type EasyEnclaveError,
} from '@easyenclave/sdk';
import {
  ADMIN_TOKEN,
  closeAll,
  patternChunk,
  startAgent,
  startBackend,
  startCp,
  waitFor,
  waitRoutable,
  wsUrl,
} from '../helpers/network.js';
import { RawAgent } from '../lifecycle/raw-agent.js';
import { resolveApp } from '../lifecycle/util.js';

afterEach(() => closeAll());

async function network(cp_env: Record<string, string> = {}) {
  const cp = await startCp(cp_env);
  const backend = await startBackend();
  const agent = startAgent({ control_ws: wsUrl(cp), backend_url: backend.url });
  await waitRoutable(cp);
  return { cp, backend, agent };
}

const MB = 1024 * 1024;

describe('connect: requests through the tunnel', () => {
  test('GET and POST (JSON and text), verification off by default on sandbox-1 (from resolve)', async () => {
    const { cp } = await network();
    const ee = new EasyEnclave({ url: cp.api_url });
    const app = await ee.connect('demo');
    assert.equal(app.verified, null, 'sandbox network: not verified by default');

    const json = async (r: Promise<Response>): Promise<any> => (await r).json();
    const got = await json(app.get('/hello?x=1'));
    assert.equal(got.method, 'GET');
    assert.equal(got.url, '/hello?x=1');
    const posted = await json(app.post('/echo', { a: 1, b: [true] }));
    assert.equal(posted.method, 'POST');
    assert.deepEqual(JSON.parse(posted.body), { a: 1, b: [true] });
    assert.equal(posted.headers['content-type'], 'application/json');
    const put = await json(app.put('echo', 'plain text', { headers: { 'x-test': 'yes' } }));
    assert.equal(put.method, 'PUT');
    assert.equal(put.body, 'plain text');
    assert.equal(put.headers['x-test'], 'yes');
    assert.equal(put.headers.authorization, undefined, 'no credentials leak to the app');
    assert.equal((await json(app.delete('/echo'))).method, 'DELETE');
  });

  test('streams a few MB each way without buffering the whole body', async () => {
    const { cp } = await network();
    const app = await new EasyEnclave({ url: cp.api_url }).connect('demo', { verify: false });
    const total = 6 * MB;
    const chunk = 256 * 1024;
    let offset = 0;
    const up = new ReadableStream<Uint8Array>({
      pull(c) {
        if (offset >= total) return c.close();
        c.enqueue(patternChunk(offset, chunk));
        offset += chunk;
      },
    });
    const expected = createHash('sha256');
    for (let o = 0; o < total; o += chunk) expected.update(patternChunk(o, chunk));
    const sink = (await (await app.post('/sink', up)).json()) as unknown;
    assert.deepEqual(sink, { body_bytes: total, sha256: expected.digest('hex') });

    const down = await app.get(`/bytes/${total}`);
    const h = createHash('sha256');
    let n = 0;
    let chunks = 0;
    for await (const c of down.body as unknown as AsyncIterable<Uint8Array>) {
      h.update(c);
      n += c.byteLength;
      chunks++;
    }
    assert.equal(n, total);
    assert.ok(chunks > 10, `arrived in pieces (${chunks})`);
    assert.equal(h.digest('hex'), createHash('sha256').update(patternChunk(0, total)).digest('hex'));

    // An async iterable body (Node) streams too.
    async function* gen() {
      for (let i = 0; i < 8; i++) yield patternChunk(i * MB, MB);
    }
    const sunk = (await (await app.post('/sink', gen())).json()) as { body_bytes: number };
    assert.equal(sunk.body_bytes, 8 * MB);
  });
});

describe('typed errors from the real control plane', () => {
  const expectError = async <T extends EasyEnclaveError>(
    p: Promise<unknown>,
    cls: new (...a: never[]) => T,
    status: number,
    code: string,
    kind: string,
  ) => {
    const err = await p.then(
      () => null,
      (e: unknown) => e,
    );
    assert.ok(err instanceof cls, `expected ${cls.name}, got ${String(err)}`);
    assert.equal(err.status, status);
    assert.equal(err.code, code);
    assert.equal(err.kind, kind);
    return err;
  };

  test('401 wrong admin token, 404 unknown app, 403 unattested app, 503 offline app', async () => {
    const cp = await startCp({ EE_QUEUE_TIMEOUT_MS: '100' });
    await expectError(
      new EasyEnclave({ url: cp.api_url, adminToken: 'wrong-token-0123456789' }).apps(),
      UnauthorizedError,
      401,
      'unauthorized',
      'unauthorized',
    );
    assert.deepEqual(await new EasyEnclave({ url: cp.api_url, adminToken: ADMIN_TOKEN }).apps(), []);

    const ee = new EasyEnclave({ url: cp.api_url, max_retries: 0 });
    await expectError(ee.connect('nope'), NotFoundError, 404, 'unknown_app', 'not_found'); // resolve, to pick the default
    const nope = await ee.connect('nope', { verify: false });
    await expectError(nope.get('/'), NotFoundError, 404, 'unknown_app', 'not_found');

    // Registered but never attested.
    const raw = await RawAgent.connect(wsUrl(cp));
    raw.register();
    await raw.next('registered');
    await raw.next('attest_request');
    const demo = await ee.connect('demo', { verify: false });
    await expectError(demo.get('/x'), ForbiddenError, 403, 'not_attested', 'forbidden');
    await expectError(ee.resolve('demo'), ForbiddenError, 403, 'app_unattested', 'forbidden');
    await expectError(ee.verifyApp('demo'), ForbiddenError, 403, 'app_unattested', 'forbidden');

    raw.terminate();
    await waitFor(async () => (await resolveApp(cp)).json?.error?.code === 'app_offline', 3000, 'app offline');
    const e = await expectError(demo.post('/x', 'body'), UnavailableError, 503, 'no_agent', 'unavailable');
    assert.equal(e.retry_after_s, 5);
    await expectError(ee.appEvidence('demo'), UnavailableError, 503, 'app_offline', 'unavailable');
    // fetch() hands back the Response as it is.
    const res = await demo.fetch('/x');
    assert.equal(res.status, 503);
    assert.equal(((await res.json()) as { error: { code: string } }).error.code, 'no_agent');
  });

  test('GET is retried on 503 (same outcome, more attempts); the error comes after the retries', async () => {
    const cp = await startCp({ EE_QUEUE_TIMEOUT_MS: '50' });
    const raw = await RawAgent.connect(wsUrl(cp));
    raw.register();
    await raw.next('registered');
    raw.terminate();
    await waitFor(async () => (await resolveApp(cp)).json?.error?.code === 'app_offline', 3000, 'app offline');
    const seen: string[] = [];
    const counting: typeof fetch = (input, init) => {
      seen.push(String(init?.method));
      return fetch(input, init);
    };
    const app = await new EasyEnclave({
      url: cp.api_url,
      fetch: counting,
      max_retries: 2,
      max_retry_delay_ms: 20,
    }).connect('demo', { verify: false });
    await assert.rejects(app.get('/x'), UnavailableError);
    assert.deepEqual(seen, ['GET', 'GET', 'GET']);
    seen.length = 0;
    await assert.rejects(app.post('/x', 'once'), UnavailableError);
    assert.deepEqual(seen, ['POST'], 'a POST without an idempotency key is never retried after it was sent');
    seen.length = 0;
    await assert.rejects(app.post('/x', 'keyed', { idempotency_key: true }), UnavailableError);
    assert.deepEqual(seen, ['POST', 'POST', 'POST']);
  });
});

describe('timeouts and AbortSignal', () => {
  test('timeout_ms gives TimeoutError; an aborted signal rejects with its reason, also mid-body', async () => {
    const { cp } = await network();
    const app = await new EasyEnclave({ url: cp.api_url, timeout_ms: 5000 }).connect('demo', { verify: false });
    const t0 = Date.now();
    const err = await app.get('/hang', { timeout_ms: 300 }).then(
      () => null,
      (e: unknown) => e,
    );
    assert.ok(err instanceof TimeoutError, String(err));
    assert.equal(err.kind, 'timeout');
    assert.ok(Date.now() - t0 < 3000);

    const ac = new AbortController();
    const reason = new Error('user gave up');
    setTimeout(() => ac.abort(reason), 100);
    await assert.rejects(app.get('/hang', { signal: ac.signal }), (e) => e === reason);

    const pre = new AbortController();
    pre.abort(reason);
    await assert.rejects(app.get('/hello', { signal: pre.signal }), (e) => e === reason);
    await assert.rejects(
      new EasyEnclave({ url: cp.api_url }).verifyControlPlane({ signal: pre.signal }),
      (e) => e === reason,
    );

    // The deadline covers the head only; the caller's signal still stops a streaming body.
    const body = new AbortController();
    const res = await app.get('/drip/100/20', { signal: body.signal, timeout_ms: 200 });
    const reader = res.body!.getReader();
    assert.ok((await reader.read()).value!.byteLength > 0);
    await new Promise((r) => setTimeout(r, 300)); // past timeout_ms: still streaming
    assert.equal((await reader.read()).done, false);
    body.abort(reason);
    await assert.rejects(async () => {
      for (;;) if ((await reader.read()).done) break;
    });
  });
});
