// The auth matrix: every ledger endpoint without credentials, with another account's key, with a wrong admin
// token (and, for admin endpoints, with a user's own key) is refused and changes nothing.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { ControlPlane } from '@easyenclave/control-plane/server';
import { closeAll, startCp } from '../helpers/network.js';
import { call, createAccount } from './client.js';

const WRONG_ADMIN = 'wrong-admin-token-0123456789abcdef';

describe('ledger auth matrix', () => {
  let cp: ControlPlane;
  let alice: { id: string; key: string };
  let mallory: { id: string; key: string };

  before(async () => {
    cp = await startCp();
    alice = await createAccount(cp.api_url, 'user', 'Alice');
    mallory = await createAccount(cp.api_url, 'user', 'Mallory');
    const r = await call(cp.api_url, 'POST', '/v1/credits/purchase', {
      body: { account: alice.id, amount: '$50', payment_ref: 'p1' },
    });
    assert.equal(r.status, 201);
  });
  after(closeAll);

  const snapshot = async () => {
    const rows = await cp.ledger.db
      .selectFrom('ledger_journal')
      .select((eb) => eb.fn.countAll<number>().as('n'))
      .executeTakeFirstOrThrow();
    const ids = await cp.ledger.db
      .selectFrom('ee_accounts')
      .select((eb) => eb.fn.countAll<number>().as('n'))
      .executeTakeFirstOrThrow();
    return {
      journal: Number(rows.n),
      identities: Number(ids.n),
      alice: (await cp.ledger.account(alice.id))!.credits_posted,
    };
  };

  it('refuses every endpoint without the right credentials', async () => {
    const before = await snapshot();
    const endpoints: { method: string; path: () => string; body?: () => unknown; admin: boolean }[] = [
      { method: 'POST', path: () => '/v1/accounts', body: () => ({ kind: 'user', name: 'x' }), admin: true },
      {
        method: 'POST',
        path: () => '/v1/credits/purchase',
        body: () => ({ account: alice.id, amount: '$1', payment_ref: 'p-x' }),
        admin: true,
      },
      {
        method: 'POST',
        path: () => '/v1/credits/transfer',
        body: () => ({ from: alice.id, to: mallory.id, amount: '$1' }),
        admin: false,
      },
      { method: 'GET', path: () => `/v1/balances/${alice.id}`, admin: false },
      { method: 'GET', path: () => `/v1/accounts/${alice.id}/transfers`, admin: false },
    ];
    const garbageKey = `ee_user_${alice.id.slice(5)}_${'A'.repeat(43)}`; // right id, wrong secret
    for (const e of endpoints) {
      const attempt = (token: string | null) =>
        call(cp.api_url, e.method, e.path(), { token, ...(e.body ? { body: e.body() } : {}) });
      const what = `${e.method} ${e.path()}`;
      const none = await attempt(null);
      assert.equal(none.status, 401, `${what} without credentials`);
      assert.equal(none.body.error.code, 'unauthorized');
      assert.equal((await attempt(WRONG_ADMIN)).status, 401, `${what} with a wrong admin token`);
      assert.equal((await attempt(garbageKey)).status, 401, `${what} with a forged key`);
      const other = await attempt(mallory.key);
      assert.equal(other.status, 403, `${what} with another account's key`);
      assert.equal(other.body.error.code, 'forbidden');
      if (e.admin) assert.equal((await attempt(alice.key)).status, 403, `${what} with a user key`);
      else
        assert.ok(
          [200, 201].includes((await attempt(alice.key)).status) || e.method === 'POST',
          `${what} with the owner's key`,
        );
    }
    const after = await snapshot();
    // Only alice's own transfer above (owner's key) may have changed anything: one journal row.
    assert.equal(after.identities, before.identities);
    assert.equal(after.journal, before.journal + 1);
    assert.equal(after.alice, before.alice);
  });

  it('with no admin token configured nobody can mint or create accounts', async () => {
    const open = await startCp({ EE_ADMIN_TOKEN: undefined });
    const r = await call(open.api_url, 'POST', '/v1/accounts', { token: null, body: { kind: 'user', name: 'x' } });
    assert.equal(r.status, 403);
    assert.equal(r.body.error.code, 'admin_disabled');
    const m = await call(open.api_url, 'POST', '/v1/credits/purchase', {
      token: 'anything-at-all-0123456789',
      body: { account: 'user:00000000000000000000', amount: '$1', payment_ref: 'p' },
    });
    assert.equal(m.status, 403);
    const count = await open.ledger.db
      .selectFrom('ee_accounts')
      .select((eb) => eb.fn.countAll<number>().as('n'))
      .executeTakeFirstOrThrow();
    assert.equal(Number(count.n), 0);
  });
});
