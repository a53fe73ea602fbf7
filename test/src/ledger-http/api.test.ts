import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { closeAll, startCp } from '../helpers/network.js';
import { balance, call, createAccount } from './client.js';

describe('ledger HTTP API', () => {
  let base: string;
  let alice: { id: string; key: string };
  let bob: { id: string; key: string };

  before(async () => {
    base = (await startCp()).api_url;
    alice = await createAccount(base, 'user', 'Alice');
    bob = await createAccount(base, 'user', 'Bob');
  });
  after(closeAll);

  it('creates accounts with a key shown once; a replayed creation does not reveal it again', async () => {
    const r1 = await call(base, 'POST', '/v1/accounts', {
      body: { kind: 'provider', name: 'Acme GPUs' },
      key: 'create-acme',
    });
    assert.equal(r1.status, 201);
    assert.match(r1.body.account_id, /^provider:[0-9a-f]{20}$/);
    assert.match(r1.body.api_key, /^ee_provider_[0-9a-f]{20}_[A-Za-z0-9_-]{43}$/);
    assert.deepEqual(r1.body.ledger_accounts, [`${r1.body.account_id}:earnings`, `${r1.body.account_id}:stake`]);
    const r2 = await call(base, 'POST', '/v1/accounts', {
      body: { kind: 'provider', name: 'Acme GPUs' },
      key: 'create-acme',
    });
    assert.equal(r2.status, 201);
    assert.equal(r2.headers.get('idempotent-replayed'), 'true');
    assert.equal(r2.body.account_id, r1.body.account_id);
    assert.equal(r2.body.api_key, null);
    const bad = await call(base, 'POST', '/v1/accounts', { body: { kind: 'bank', name: 'x' } });
    assert.equal(bad.status, 400);
    assert.equal(bad.body.error.code, 'invalid_request');
  });

  it('purchase mints "$200" exactly once per payment reference', async () => {
    const r = await call(base, 'POST', '/v1/credits/purchase', {
      body: { account: alice.id, amount: '$200', payment_ref: 'pay_0001' },
    });
    assert.equal(r.status, 201, JSON.stringify(r.body));
    assert.equal(r.body.amount_micro_usd, 200_000_000);
    assert.equal(r.body.balance.available_micro_usd, 200_000_000);
    assert.equal(r.body.balance.available_usd, '$200.00');
    // A webhook retry (no Idempotency-Key) with the same payment: no second mint.
    const again = await call(base, 'POST', '/v1/credits/purchase', {
      body: { account: alice.id, amount: '$200', payment_ref: 'pay_0001' },
    });
    assert.equal(again.status, 201);
    assert.equal(await balance(base, alice.id), 200_000_000);
    // The same payment reference for a different amount is a conflict, not a second mint.
    const conflict = await call(base, 'POST', '/v1/credits/purchase', {
      body: { account: alice.id, amount_micro_usd: 5, payment_ref: 'pay_0001' },
    });
    assert.equal(conflict.status, 409);
    assert.equal(conflict.body.error.code, 'transfer_conflict');
    assert.equal(await balance(base, alice.id), 200_000_000);
  });

  it('transfer moves exact amounts, defaults from to the caller and refuses overdrafts', async () => {
    const r = await call(base, 'POST', '/v1/credits/transfer', {
      token: alice.key,
      body: { to: bob.id, amount: '12.50', memo: 'lunch' },
    });
    assert.equal(r.status, 200, JSON.stringify(r.body));
    assert.equal(r.body.from, alice.id);
    assert.equal(r.body.amount_micro_usd, 12_500_000);
    assert.equal(r.body.balance.available_micro_usd, 187_500_000);
    assert.equal(await balance(base, bob.id), 12_500_000);
    const over = await call(base, 'POST', '/v1/credits/transfer', {
      token: bob.key,
      body: { to: alice.id, amount_micro_usd: 12_500_001 },
    });
    assert.equal(over.status, 402);
    assert.equal(over.body.error.code, 'insufficient_funds');
    assert.equal(await balance(base, bob.id), 12_500_000);
  });

  it('refuses bad amounts with a reason and changes nothing', async () => {
    const cases: [unknown, RegExp][] = [
      [{ amount: '-5' }, /negative/],
      [{ amount: '0' }, /zero/],
      [{ amount: '1.0000001' }, /6 decimals/],
      [{ amount_micro_usd: 2 ** 53 }, /maximum/],
      [{ amount_micro_usd: 1.5 }, /integer/],
      [{ amount: 5 }, /string of dollars/],
      [{ amount: '5', amount_micro_usd: 5 }, /exactly one/],
      [{}, /exactly one/],
      [{ amount: '1e3' }, /exponent/],
    ];
    for (const [fields, why] of cases) {
      const r = await call(base, 'POST', '/v1/credits/transfer', {
        token: alice.key,
        body: { to: bob.id, ...(fields as object) },
      });
      assert.equal(r.status, 400, JSON.stringify(fields));
      assert.equal(r.body.error.code, 'invalid_amount');
      assert.match(r.body.error.message, why);
    }
    assert.equal(await balance(base, alice.id), 187_500_000);
    const junk = await call(base, 'POST', '/v1/credits/transfer', { token: alice.key, raw: '{"to":' });
    assert.equal(junk.status, 400);
    const unknownTo = await call(base, 'POST', '/v1/credits/transfer', {
      token: alice.key,
      body: { to: 'user:00000000000000000000', amount: '1' },
    });
    assert.equal(unknownTo.status, 404);
    const platform = await call(base, 'POST', '/v1/credits/transfer', {
      token: alice.key,
      body: { to: 'platform:issuance', amount: '1' },
    });
    assert.equal(platform.status, 404);
  });

  it('Idempotency-Key: replay, mismatch and concurrent duplicates apply the transfer once', async () => {
    const body = { to: bob.id, amount: '$1' };
    const first = await call(base, 'POST', '/v1/credits/transfer', { token: alice.key, body, key: 'k-1' });
    assert.equal(first.status, 200);
    assert.equal(first.headers.get('idempotent-replayed'), null);
    const replay = await call(base, 'POST', '/v1/credits/transfer', { token: alice.key, body, key: 'k-1' });
    assert.equal(replay.status, 200);
    assert.equal(replay.headers.get('idempotent-replayed'), 'true');
    assert.deepEqual(replay.body, first.body);
    const mismatch = await call(base, 'POST', '/v1/credits/transfer', {
      token: alice.key,
      body: { ...body, amount: '$2' },
      key: 'k-1',
    });
    assert.equal(mismatch.status, 400);
    assert.equal(mismatch.body.error.code, 'idempotency_key_reused');
    assert.equal(await balance(base, alice.id), 186_500_000);

    const burst = await Promise.all(
      Array.from({ length: 8 }, () =>
        call(base, 'POST', '/v1/credits/transfer', { token: alice.key, body, key: 'k-2' }),
      ),
    );
    for (const r of burst)
      assert.ok(
        r.status === 200 || (r.status === 409 && r.body.error.code === 'idempotency_key_in_use'),
        `${r.status} ${JSON.stringify(r.body)}`,
      );
    assert.ok(burst.some((r) => r.status === 200));
    assert.equal(new Set(burst.filter((r) => r.status === 200).map((r) => r.body.transfer_id)).size, 1);
    assert.equal(await balance(base, alice.id), 185_500_000);
    // Keys are per caller: Bob may use "k-1" for his own request.
    const bobs = await call(base, 'POST', '/v1/credits/transfer', {
      token: bob.key,
      body: { to: alice.id, amount: '$1' },
      key: 'k-1',
    });
    assert.equal(bobs.status, 200);
    assert.equal(bobs.headers.get('idempotent-replayed'), null);
    const badKey = await call(base, 'POST', '/v1/credits/transfer', { token: bob.key, body, key: 'x'.repeat(256) });
    assert.equal(badKey.status, 400);
  });

  it('history pages through the journal newest first with an opaque cursor', async () => {
    const carol = await createAccount(base, 'user', 'Carol');
    await call(base, 'POST', '/v1/credits/purchase', {
      body: { account: carol.id, amount: '$10', payment_ref: 'pay_carol' },
    });
    for (let i = 1; i <= 6; i++) {
      const r = await call(base, 'POST', '/v1/credits/transfer', {
        token: carol.key,
        body: { to: alice.id, amount_micro_usd: i, memo: `#${i}` },
      });
      assert.equal(r.status, 200);
    }
    const seen: string[] = [];
    let cursor: string | null = null;
    let pages = 0;
    do {
      const q: string = cursor === null ? '?limit=3' : `?limit=3&cursor=${cursor}`;
      const r = await call(base, 'GET', `/v1/accounts/${carol.id}/transfers${q}`, { token: carol.key });
      assert.equal(r.status, 200);
      for (const t of r.body.transfers) seen.push(t.memo ?? t.reference);
      cursor = r.body.next_cursor;
      pages++;
    } while (cursor !== null);
    assert.deepEqual(seen, ['#6', '#5', '#4', '#3', '#2', '#1', 'pay_carol']);
    assert.equal(pages, 3);
    const bad = await call(base, 'GET', `/v1/accounts/${carol.id}/transfers?cursor=nonsense`, { token: carol.key });
    assert.equal(bad.status, 400);
    assert.equal(bad.body.error.code, 'invalid_cursor');
    const tooMany = await call(base, 'GET', `/v1/accounts/${carol.id}/transfers?limit=100000`, { token: carol.key });
    assert.equal(tooMany.status, 400);
  });
});
