// The SDK's ledger calls against the real control plane: "$200" transfers with exact balances, a retried
// transfer applied once, typed errors from real refusals, and the paged history iterator.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import {
  BadRequestError,
  ConflictError,
  EasyEnclave,
  ForbiddenError,
  UnauthorizedError,
  EasyEnclaveError,
} from '@easyenclave/sdk';
import { ADMIN_TOKEN, closeAll, startCp } from '../helpers/network.js';

describe('SDK ledger calls against the control plane', () => {
  let url: string;
  let admin: EasyEnclave;
  let alice: { id: string; client: EasyEnclave };
  let bob: { id: string; client: EasyEnclave };

  before(async () => {
    url = (await startCp()).api_url;
    admin = new EasyEnclave({ url, adminToken: ADMIN_TOKEN });
    const a = await admin.createAccount({ kind: 'user', name: 'Alice' });
    const b = await admin.createAccount({ kind: 'user', name: 'Bob' });
    alice = { id: a.account_id, client: new EasyEnclave({ url, apiKey: a.api_key! }) };
    bob = { id: b.account_id, client: new EasyEnclave({ url, apiKey: b.api_key! }) };
  });
  after(closeAll);

  it('purchase and transfer "$200": exact balances after', async () => {
    const p = await admin.purchaseCredits({ account: alice.id, amount: '$500', payment_ref: 'sdk-pay-1' });
    assert.equal(p.amount_micro_usd, 500_000_000n);
    const t = await alice.client.transferCredits({ to: bob.id, amount: '$200', memo: 'rent' });
    assert.equal(t.amount_micro_usd, 200_000_000n);
    assert.equal(t.replayed, false);
    assert.equal((await alice.client.balance(alice.id)).available_micro_usd, 300_000_000n);
    assert.equal(alice.client.keyAccount, alice.id);
    assert.equal((await alice.client.balance()).account, alice.id); // the key's own account by default
    assert.equal((await bob.client.balance(bob.id)).available_micro_usd, 200_000_000n);
    const micro = await alice.client.transferCredits({ to: bob.id, amount: 1n });
    assert.equal(micro.amount_micro_usd, 1n);
    assert.equal((await admin.balance(bob.id)).total_micro_usd, 200_000_001n);
  });

  it('every *_micro_usd field of an answer is a bigint, nested balances included', async () => {
    const c = await admin.createAccount({ kind: 'user', name: 'Carol' });
    const carol = new EasyEnclave({ url, apiKey: c.api_key! });
    const p = await admin.purchaseCredits({ account: c.account_id, amount: '$1', payment_ref: 'sdk-pay-bigint' });
    const t = await carol.transferCredits({ to: bob.id, amount: 3n });
    assert.equal(typeof t.balance?.available_micro_usd, 'bigint');
    assert.equal(t.balance?.available_micro_usd, (await carol.balance()).available_micro_usd);
    assert.equal(typeof p.balance.total_micro_usd, 'bigint');
    const money = (v: unknown, at: string): void => {
      if (v === null || typeof v !== 'object') return;
      for (const [k, x] of Object.entries(v)) {
        if (k.endsWith('_micro_usd')) assert.equal(typeof x, 'bigint', `${at}.${k}`);
        money(x, `${at}.${k}`);
      }
    };
    money(t, 'transfer');
    money(p, 'purchase');
    for await (const h of carol.transfers({ limit: 50 })) money(h, 'history');
  });

  it('a purchase repeated with the same payment_ref (a new idempotency key) says replayed and mints nothing', async () => {
    const first = await admin.purchaseCredits({ account: bob.id, amount: '$7', payment_ref: 'sdk-pay-replay' });
    assert.equal(first.replayed, false);
    const before = (await admin.balance(bob.id)).total_micro_usd;
    const again = await admin.purchaseCredits({ account: bob.id, amount: '$7', payment_ref: 'sdk-pay-replay' });
    assert.equal(again.replayed, true);
    assert.equal(again.transfer_id, first.transfer_id);
    assert.equal((await admin.balance(bob.id)).total_micro_usd, before);
  });

  it('transfers() without an account (none in the options, no API key) is a clear TypeError, not a ZodError', () => {
    assert.throws(
      () => admin.transfers({ limit: 1 }),
      (e: unknown) => e instanceof TypeError && /transfers\(\) needs an account/.test(e.message),
    );
    assert.throws(() => alice.client.transfers({ limit: 0 }), /limit must be a positive integer/);
  });

  it('a retried transfer (same idempotency key) is applied once', async () => {
    const before = (await bob.client.balance(bob.id)).available_micro_usd;
    const first = await alice.client.transferCredits({ to: bob.id, amount: '$1' }, { idempotency_key: 'sdk-retry-1' });
    const again = await alice.client.transferCredits({ to: bob.id, amount: '$1' }, { idempotency_key: 'sdk-retry-1' });
    assert.equal(again.replayed, true);
    assert.equal(again.transfer_id, first.transfer_id);
    assert.equal((await bob.client.balance(bob.id)).available_micro_usd, before + 1_000_000n);
    await assert.rejects(
      alice.client.transferCredits({ to: bob.id, amount: '$2' }, { idempotency_key: 'sdk-retry-1' }),
      (e: unknown) => e instanceof BadRequestError && e.code === 'idempotency_key_reused',
    );
  });

  it('real refusals arrive as typed errors', async () => {
    await assert.rejects(
      admin.purchaseCredits({ account: alice.id, amount: '$1', payment_ref: 'sdk-pay-1' }),
      (e: unknown) => e instanceof ConflictError && e.code === 'transfer_conflict',
    );
    await assert.rejects(bob.client.balance(alice.id), (e: unknown) => e instanceof ForbiddenError);
    await assert.rejects(
      new EasyEnclave({ url, adminToken: 'wrong-admin-token-0123456789' }).createAccount({ kind: 'user', name: 'x' }),
      (e: unknown) => e instanceof UnauthorizedError,
    );
    await assert.rejects(
      bob.client.transferCredits({ to: alice.id, amount: '$1000000' }),
      (e: unknown) => e instanceof EasyEnclaveError && e.status === 402 && e.code === 'insufficient_funds',
    );
  });

  it('transfers() walks every page of the history', async () => {
    const ids: string[] = [];
    for await (const t of alice.client.transfers({ account: alice.id, limit: 2 })) ids.push(String(t.transfer_id));
    assert.equal(ids.length, 4); // purchase, $200, 1 micro-USD, $1 (its replay added nothing)
    assert.equal(new Set(ids).size, ids.length);
  });
});
