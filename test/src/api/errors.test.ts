// One error shape, request ids and the access log: every answer carries `Request-Id` (a well-formed incoming
// one is kept), the id is in every log line of the request, errors have a `type` and, for validation errors,
// the field (`param`); bad input is a 4xx, never a 500.
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import { controlPlaneLogger } from '@easyenclave/control-plane/log';
import type { ControlPlane } from '@easyenclave/control-plane/server';
import { ADMIN_TOKEN, closeAll, startCp, waitFor } from '../helpers/network.js';
import { pgSkipReason, withTempPgDatabase } from '../helpers/pg.js';
import { call, createAccount } from '../ledger-http/client.js';

const UPTIME_TOKEN = 'test-uptime-token-0123456789';

class LogLines extends Writable {
  readonly lines: any[] = [];
  override _write(chunk: Buffer, _enc: string, done: () => void): void {
    for (const line of chunk.toString('utf8').split('\n')) if (line.trim()) this.lines.push(JSON.parse(line));
    done();
  }
}

describe('errors, request ids and the access log', () => {
  let cp: ControlPlane;
  let base: string;
  const logs = new LogLines();

  before(async () => {
    cp = await startCp(
      { EE_ACCESS_LOG: 'full', EE_UPTIME_TOKEN: UPTIME_TOKEN },
      { logger: controlPlaneLogger('info', logs) },
    );
    base = cp.api_url;
  });
  after(closeAll);

  it('every answer carries a Request-Id, and that id is in the request’s access log line', async () => {
    const res = await fetch(`${base}/health`);
    assert.equal(res.status, 200);
    const id = res.headers.get('request-id');
    assert.match(id ?? '', /^[0-9a-f-]{36}$/);
    const line = await waitFor(() => logs.lines.find((l) => l.request_id === id && l.msg === 'request'));
    assert.equal(line.path, '/health');
    assert.equal(line.status, 200);
    assert.equal(line.svc, 'control-plane');
    // A refusal logs under the same id too, and says which route it was.
    const denied = await fetch(`${base}/v1/balances/user:00000000000000000000`);
    const deniedId = denied.headers.get('request-id');
    const deniedLine = await waitFor(() => logs.lines.find((l) => l.request_id === deniedId));
    assert.equal(deniedLine.status, 401);
    assert.equal(deniedLine.route, '/v1/balances/:account');
  });

  it('keeps a well-formed incoming X-Request-Id or Request-Id, replaces a malformed one', async () => {
    const given = await fetch(`${base}/health`, { headers: { 'x-request-id': 'edge-7f3a:42' } });
    assert.equal(given.headers.get('request-id'), 'edge-7f3a:42');
    const plain = await fetch(`${base}/health`, { headers: { 'request-id': 'abc.def' } });
    assert.equal(plain.headers.get('request-id'), 'abc.def');
    for (const bad of ['has space', 'x'.repeat(129), 'quote"d']) {
      const r = await fetch(`${base}/health`, { headers: { 'x-request-id': bad } });
      const id = r.headers.get('request-id');
      assert.notEqual(id, bad);
      assert.match(id ?? '', /^[0-9a-f-]{36}$/);
    }
    // The raw paths too: a proxy refusal and an unknown route.
    const proxied = await fetch(`${base}/v1/proxy/nope/x`, { headers: { 'x-request-id': 'proxy-1234' } });
    assert.equal(proxied.status, 404);
    assert.equal(proxied.headers.get('request-id'), 'proxy-1234');
    assert.equal(((await proxied.json()) as any).error.type, 'not_found');
    const missing = await fetch(`${base}/v1/nothing-here`);
    assert.equal(missing.status, 404);
    assert.match(missing.headers.get('request-id') ?? '', /^[0-9a-f-]{36}$/);
  });

  it('errors carry a type, and validation errors the field they are about', async () => {
    const alice = await createAccount(base, 'user', 'Alice');
    const r = await call(base, 'POST', '/v1/credits/transfer', {
      token: alice.key,
      body: { to: 'user:00000000000000000000', amount: '1', memo: 7 },
    });
    assert.equal(r.status, 400);
    assert.deepEqual(Object.keys(r.body.error).sort(), ['code', 'message', 'param', 'type']);
    assert.equal(r.body.error.code, 'invalid_request');
    assert.equal(r.body.error.type, 'invalid_request');
    assert.equal(r.body.error.param, 'memo');
    const amount = await call(base, 'POST', '/v1/credits/transfer', { token: alice.key, body: { to: 'x', amount: 5 } });
    assert.equal(amount.body.error.code, 'invalid_amount');
    assert.equal(amount.body.error.param, 'amount');
    const unauth = await call(base, 'GET', `/v1/balances/${alice.id}`, { token: null });
    assert.equal(unauth.body.error.type, 'authentication');
    const broke = await call(base, 'POST', '/v1/credits/transfer', {
      token: alice.key,
      body: { to: (await createAccount(base, 'user', 'Bob')).id, amount: '1' },
    });
    assert.equal(broke.status, 402);
    assert.equal(broke.body.error.type, 'payment_required');
    assert.equal(broke.body.error.param, undefined);
  });

  it('fastify refusals speak the catalogue: a body that is not JSON, a wrong media type', async () => {
    const alice = await createAccount(base, 'user', 'Erin');
    const junk = await call(base, 'POST', '/v1/credits/transfer', { token: alice.key, raw: '{"to":' });
    assert.equal(junk.status, 400);
    assert.equal(junk.body.error.code, 'bad_request');
    assert.equal(junk.body.error.type, 'invalid_request');
    const text = await fetch(`${base}/v1/credits/transfer`, {
      method: 'POST',
      headers: { authorization: `Bearer ${alice.key}`, 'content-type': 'application/xml' },
      body: '<transfer/>',
    });
    assert.equal(text.status, 415);
    // It was "fst_err_ctp_invalid_media_type", fastify's internal code, lowercased.
    assert.equal(((await text.json()) as any).error.code, 'unsupported_media_type');
  });

  it('an amount that is a word is refused as not an amount, not as exponent notation', async () => {
    const alice = await createAccount(base, 'user', 'Carol');
    const r = await call(base, 'POST', '/v1/credits/transfer', { token: alice.key, body: { to: 'x', amount: 'ten' } });
    assert.equal(r.status, 400);
    assert.equal(r.body.error.code, 'invalid_amount');
    assert.doesNotMatch(r.body.error.message, /exponent/);
    assert.match(r.body.error.message, /expected dollars/);
  });

  it('a purchase replayed by payment_ref says it minted nothing (replayed: true), with or without a key', async () => {
    const dave = await createAccount(base, 'user', 'Dave');
    const body = { account: dave.id, amount: '$200', payment_ref: 'pay_replay_1' };
    const first = await call(base, 'POST', '/v1/credits/purchase', { body });
    assert.equal(first.status, 201);
    assert.equal(first.body.replayed, false);
    assert.equal(first.headers.get('idempotent-replayed'), null);
    for (const key of [undefined, 'another-key']) {
      const again = await call(base, 'POST', '/v1/credits/purchase', { body, ...(key ? { key } : {}) });
      assert.equal(again.status, 201);
      assert.equal(again.body.replayed, true, 'nothing new was minted');
      assert.equal(again.headers.get('idempotent-replayed'), 'true');
      assert.equal(again.body.balance.available_micro_usd, 200_000_000);
    }
  });

  it('an id with a control character is a 400, never a database error (SQLite and PostgreSQL)', async (t) => {
    const check = async (api: string) => {
      for (const path of [
        '/v1/nodes/%00x',
        '/v1/leases/a%00',
        '/v1/balances/user%00x',
        '/v1/payouts/%01',
        '/v1/abuse/reports/%00',
      ]) {
        const r = await call(api, 'GET', path, { token: ADMIN_TOKEN });
        assert.equal(r.status, 400, `${path}: ${JSON.stringify(r.body)}`);
        assert.equal(r.body.error.code, 'invalid_request');
      }
      const usage = await call(api, 'POST', '/v1/usage/report', {
        token: UPTIME_TOKEN,
        body: { node: 'node_\u0000', period: 0, missed_checks: 0 },
      });
      assert.equal(usage.status, 400, JSON.stringify(usage.body));
      assert.equal(usage.body.error.param, 'node');
    };
    await check(base);
    // PostgreSQL refuses NUL in text: on main these were 500 internal.
    const skip = await pgSkipReason();
    if (skip) return t.skip(skip);
    await withTempPgDatabase(async (url) => {
      const pgCp = await startCp({ EE_DATABASE_URL: url, EE_UPTIME_TOKEN: UPTIME_TOKEN });
      await check(pgCp.api_url);
      await pgCp.shutdown(0);
    });
  });
});
