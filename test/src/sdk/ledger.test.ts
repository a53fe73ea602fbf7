// The SDK's ledger calls against a tiny local stub of the ledger's HTTP contract (the real endpoints land
// later; the integrator adds end-to-end tests then). The stub records every request, so the tests check what
// the SDK sends: auth, amounts (exact, as `amount` or `amount_micro_usd`), one Idempotency-Key reused across
// the SDK's retries, and how answers are read: bigint micro-USD, replays, cursor pages, typed errors (409).
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, test } from 'node:test';
import {
  ConflictError,
  ConnectionError,
  EasyEnclave,
  InvalidResponseError,
  UnauthorizedError,
  parseJsonExact,
  stringifyJson,
} from '@easyenclave/sdk';
import { closeAll, freePort, onCleanup } from '../helpers/network.js';

afterEach(() => closeAll());

interface Seen {
  method: string;
  url: string;
  headers: http.IncomingHttpHeaders;
  body: string;
}

type Handler = (req: Seen, n: number) => { status: number; body?: string; headers?: Record<string, string> } | 'reset';

async function stub(handler: Handler): Promise<{ url: string; seen: Seen[] }> {
  const seen: Seen[] = [];
  const server = http.createServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString('utf8')));
    req.on('end', () => {
      const s: Seen = { method: req.method!, url: req.url!, headers: req.headers, body };
      seen.push(s);
      const out = handler(s, seen.length);
      if (out === 'reset') return void req.socket.destroy();
      res.writeHead(out.status, { 'content-type': 'application/json', ...out.headers });
      res.end(out.body ?? '');
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  onCleanup(() => new Promise((r) => (server.closeAllConnections(), server.close(r))));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, seen };
}

const err = (code: string, message: string) => JSON.stringify({ error: { code, message } });
const BIG = 9_007_199_254_740_993n; // 2^53 + 1: not representable as a JS number

describe('ledger calls (stub server)', () => {
  test('transferCredits: API key, amount string vs exact micro-USD, one Idempotency-Key, replayed flag', async () => {
    const s = await stub((req) => {
      const b = parseJsonExact(req.body) as Record<string, unknown>;
      const amount = b.amount_micro_usd ?? '200000000';
      return {
        status: 200,
        headers:
          req.headers['idempotency-key'] === 'mine'
            ? { 'idempotent-replayed': 'true' }
            : ({} as Record<string, string>),
        body: `{"transfer_id":"t1","from":"acct-a","to":"${String(b.to)}","amount_micro_usd":${String(amount)},"memo":"x\\"y_micro_usd\\":1"}`,
      };
    });
    const ee = new EasyEnclave({ url: s.url, apiKey: 'key-a' });
    const t1 = await ee.transferCredits({ to: 'contractor', amount: '$200' });
    assert.equal(t1.amount_micro_usd, 200_000_000n);
    assert.equal(t1.replayed, false);
    assert.equal((t1 as Record<string, unknown>).memo, 'x"y_micro_usd":1', 'string contents are never rewritten');
    const t2 = await ee.transferCredits({ to: 'contractor', amount: BIG, memo: 'big' }, { idempotency_key: 'mine' });
    assert.equal(t2.amount_micro_usd, BIG, 'exact beyond 2^53');
    assert.equal(t2.replayed, true);
    await ee.transferCredits({ to: 'contractor', amount: 1_500_000 });

    assert.equal(s.seen.length, 3);
    for (const r of s.seen) {
      assert.equal(r.method, 'POST');
      assert.equal(r.url, '/v1/credits/transfer');
      assert.equal(r.headers.authorization, 'Bearer key-a');
      assert.equal(r.headers['content-type'], 'application/json');
    }
    assert.deepEqual(JSON.parse(s.seen[0]!.body), { to: 'contractor', amount: '$200' });
    assert.equal(s.seen[1]!.body, `{"to":"contractor","amount_micro_usd":${BIG},"memo":"big"}`);
    assert.deepEqual(JSON.parse(s.seen[2]!.body), { to: 'contractor', amount_micro_usd: 1_500_000 });
    const keys = s.seen.map((r) => r.headers['idempotency-key']);
    assert.match(String(keys[0]), /^[0-9a-f-]{36}$/);
    assert.equal(keys[1], 'mine');
    assert.notEqual(keys[0], keys[2], 'a fresh key per logical call');

    assert.throws(() => ee.transferCredits({ to: 'x', amount: 1.5 }), TypeError);
    assert.throws(() => ee.transferCredits({ to: 'x', amount: -1n }), TypeError);
    assert.throws(
      () => new EasyEnclave({ url: s.url }).transferCredits({ to: 'x', amount: '$1' }),
      /apiKey is required/,
    );
  });

  test('retries (503, then a reset after sending) reuse the same Idempotency-Key', async () => {
    const s = await stub((_req, n) => {
      if (n === 1) return { status: 503, headers: { 'retry-after': '0' }, body: err('busy', 'try again') };
      if (n === 2) return 'reset';
      return {
        status: 201,
        body: '{"account_id":"acct-1","kind":"user","name":"alice","api_key":"k1","created_at":"now"}',
      };
    });
    const ee = new EasyEnclave({ url: s.url, adminToken: 'admin-token-0123456789', retry_base_delay_ms: 5 });
    const acct = await ee.createAccount({ kind: 'user', name: 'alice' });
    assert.equal(acct.account_id, 'acct-1');
    assert.equal((acct as Record<string, unknown>).created_at, 'now', 'unknown fields pass through');
    assert.equal(s.seen.length, 3);
    const keys = new Set(s.seen.map((r) => r.headers['idempotency-key']));
    assert.equal(keys.size, 1, `one key across the retries: ${[...keys].join(', ')}`);
    assert.ok(s.seen.every((r) => r.headers.authorization === 'Bearer admin-token-0123456789'));
    assert.deepEqual(JSON.parse(s.seen[0]!.body), { kind: 'user', name: 'alice' });
  });

  test('409 is a ConflictError; 401 an UnauthorizedError; non-retryable statuses are sent once', async () => {
    const s = await stub((req) =>
      req.url.startsWith('/v1/credits/purchase')
        ? { status: 409, body: err('idempotency_conflict', 'this key was used with another body') }
        : { status: 401, body: err('unauthorized', 'invalid API key') },
    );
    const ee = new EasyEnclave({ url: s.url, apiKey: 'k', adminToken: 'admin-token-0123456789' });
    const c = await ee.purchaseCredits({ account: 'acct-1', amount: '12.50', payment_ref: 'stripe:pi_1' }).then(
      () => null,
      (e: unknown) => e,
    );
    assert.ok(c instanceof ConflictError);
    assert.equal(c.status, 409);
    assert.equal(c.code, 'idempotency_conflict');
    assert.equal(c.kind, 'conflict');
    assert.deepEqual(JSON.parse(s.seen[0]!.body), { account: 'acct-1', amount: '12.50', payment_ref: 'stripe:pi_1' });
    await assert.rejects(ee.balance('acct-1'), UnauthorizedError);
    assert.equal(s.seen.length, 2);
  });

  test('balance parses micro-USD into bigint; a response off the contract is an InvalidResponseError', async () => {
    let good = true;
    const s = await stub(() => ({
      status: 200,
      body: good
        ? `{"account":"acct-1","available_micro_usd":${BIG},"locked_micro_usd":0,"total_micro_usd":${BIG},"available_usd":"9007199254.740993","locked_usd":"0.00","total_usd":"9007199254.740993"}`
        : '{"account":"acct-1","available_micro_usd":"lots"}',
    }));
    const ee = new EasyEnclave({ url: s.url, apiKey: 'k', account: 'acct-1' });
    const b = await ee.balance();
    assert.equal(b.available_micro_usd, BIG);
    assert.equal(b.locked_micro_usd, 0n);
    assert.equal(s.seen[0]!.url, '/v1/balances/acct-1');
    good = false;
    await assert.rejects(ee.balance('acct-1'), InvalidResponseError);
  });

  test('transfers() walks the cursor pages', async () => {
    const pages: Record<string, string> = {
      '': '{"transfers":[{"transfer_id":"t3","from":"a","to":"b","amount_micro_usd":3},{"transfer_id":"t2","from":"a","to":"b","amount_micro_usd":2}],"next_cursor":"c2"}',
      c2: '{"transfers":[{"transfer_id":"t1","from":null,"to":"a","amount_micro_usd":1}],"next_cursor":null}',
    };
    const s = await stub((req) => ({
      status: 200,
      body: pages[new URL(req.url, 'http://x').searchParams.get('cursor') ?? '']!,
    }));
    const ee = new EasyEnclave({ url: s.url, apiKey: 'k' });
    const ids: string[] = [];
    for await (const t of ee.transfers({ account: 'a', limit: 2 })) ids.push(`${t.transfer_id}:${t.amount_micro_usd}`);
    assert.deepEqual(ids, ['t3:3', 't2:2', 't1:1']);
    assert.deepEqual(
      s.seen.map((r) => r.url),
      ['/v1/accounts/a/transfers?limit=2', '/v1/accounts/a/transfers?limit=2&cursor=c2'],
    );
  });

  test('connection errors: retried when nothing was sent, a keyless POST reset after sending is not', async () => {
    const port = await freePort(); // nothing listens there
    const refused = new EasyEnclave({
      url: `http://127.0.0.1:${port}`,
      apiKey: 'k',
      retry_base_delay_ms: 5,
      max_retries: 3,
    });
    const e = await refused.balance('a').then(
      () => null,
      (x: unknown) => x,
    );
    assert.ok(e instanceof ConnectionError, String(e));
    assert.equal(e.attempts, 4);
    const s = await stub(() => 'reset');
    const app = await new EasyEnclave({ url: s.url, retry_base_delay_ms: 5 }).connect('demo', { verify: false });
    const once = await app.post('/x', 'body').then(
      () => null,
      (x: unknown) => x,
    );
    assert.ok(once instanceof ConnectionError);
    assert.equal(once.attempts, 1);
    assert.equal(s.seen.length, 1);
    await assert.rejects(app.get('/x'), ConnectionError);
    assert.equal(s.seen.length, 4, 'a GET is retried (1 + 2 retries)');
  });

  test('parseJsonExact: every *_micro_usd integer is a bigint at any depth, schema or not; strings stay strings', () => {
    const text =
      `{"memo":"\\"x_micro_usd\\":1","balance":{"available_micro_usd":${BIG},"stake_micro_usd":5},` +
      `"list":[{"held_micro_usd":-7}],"uptime_s":1.5,"n":3}`;
    assert.deepEqual(parseJsonExact(text), {
      memo: '"x_micro_usd":1',
      balance: { available_micro_usd: BIG, stake_micro_usd: 5n },
      list: [{ held_micro_usd: -7n }],
      uptime_s: 1.5,
      n: 3,
    });
    // A broken amount is left as a number for the schema to refuse by name.
    assert.deepEqual(parseJsonExact('{"a_micro_usd":1.5}'), { a_micro_usd: 1.5 });
  });

  test('stringifyJson writes bigints exactly and leaves strings alone', () => {
    assert.equal(stringifyJson({ a: BIG, s: '\u0000bigint:1', n: [1n] }), `{"a":${BIG},"s":"\\u0000bigint:1","n":[1]}`);
  });
});
