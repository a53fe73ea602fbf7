// `ee accounts keys rotate` and `ee payouts create | confirm | cancel | list | show` as subprocesses against a
// real control plane: the new key printed once and working, the old one refused after --grace; payouts moving
// earnings exactly once, with clear errors and exit codes for bad input and refusals.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { ControlPlane } from '@easyenclave/control-plane/server';
import { ADMIN_TOKEN, closeAll, startCp } from '../helpers/network.js';
import { call, createAccount } from '../ledger-http/client.js';
import { ee, failsWith, json, show } from './util.js';

describe('ee accounts keys rotate / ee payouts', () => {
  let cp: ControlPlane;
  let url: string;
  let admin: Record<string, string>;
  let provider: { id: string; key: string };

  before(async () => {
    cp = await startCp();
    url = cp.api_url;
    admin = { EE_CONTROL_URL: url, EE_ADMIN_TOKEN: ADMIN_TOKEN };
    provider = await createAccount(url, 'provider', 'Acme');
    // Purchased credits of a provider land in its earnings, which is what payouts pay from.
    const r = await call(url, 'POST', '/v1/credits/purchase', {
      body: { account: provider.id, amount: '$100', payment_ref: 'cli-payouts-1' },
    });
    assert.equal(r.status, 201, JSON.stringify(r.body));
  });
  after(closeAll);

  const earnings = async () => (await cp.ledger.account(`${provider.id}:earnings`))!;

  it('keys rotate: the new key is printed once and works; --grace 0s refuses the old key at once', async () => {
    const alice = await createAccount(url, 'user', 'Alice');
    const asAlice = { EE_CONTROL_URL: url, EE_API_KEY: alice.key };
    const r = await ee(['accounts', 'keys', 'rotate', alice.id, '--grace', '0s'], asAlice);
    assert.equal(r.code, 0, show(r));
    const m = /API key\s+(ee_user_\S+)/.exec(r.stdout);
    assert.ok(m, show(r));
    const fresh = m[1]!;
    assert.match(r.stdout, /Store the API key now/);
    assert.ok(!r.stdout.includes(alice.key) && !r.stderr.includes(alice.key), 'the old key is never printed');
    failsWith(await ee(['credits', 'balance'], asAlice), 1, /^ee: unauthorized: /);
    const bal = json(await ee(['credits', 'balance', '--json'], { EE_CONTROL_URL: url, EE_API_KEY: fresh }));
    assert.equal(bal.account, alice.id);

    // With a grace the old key keeps working; the admin may rotate any account; --json has the new key.
    const asFresh = { EE_CONTROL_URL: url, EE_API_KEY: fresh };
    const j = json(await ee(['accounts', 'keys', 'rotate', alice.id, '--grace', '1h', '--json'], asFresh));
    assert.match(j.api_key, /^ee_user_/);
    assert.equal(Date.parse(j.previous_keys_expire_at) - Date.parse(j.created_at), 3600_000);
    assert.equal((await ee(['credits', 'balance'], asFresh)).code, 0, 'old key within its grace');
    const byAdmin = json(await ee(['accounts', 'keys', 'rotate', alice.id, '--json'], admin));
    assert.equal(Date.parse(byAdmin.previous_keys_expire_at) - Date.parse(byAdmin.created_at), 24 * 3600_000);

    // Another account's key may not rotate; bad input exits 2 before any request.
    failsWith(
      await ee(['accounts', 'keys', 'rotate', alice.id], { EE_CONTROL_URL: url, EE_API_KEY: provider.key }),
      1,
      /^ee: forbidden: an API key may rotate only its own account's keys/,
    );
    failsWith(
      await ee(['accounts', 'keys', 'rotate', alice.id, '--grace', '1w'], asFresh),
      2,
      /--grace must be a duration like/,
    );
    failsWith(await ee(['accounts', 'keys', 'rotate', alice.id, '--grace', '8d'], asFresh), 2, /at most 168h/);
    failsWith(await ee(['accounts', 'keys', 'rotate', 'alice', '--grace', '1h'], asFresh), 2, /is not an account id/);
    failsWith(
      await ee(['accounts', 'keys', 'rotate', 'user:00000000000000000000'], admin),
      1,
      /^ee: unknown_account: /,
    );
  });

  it('payouts create / confirm / cancel / list / show move earnings exactly once', async () => {
    const created = json(
      await ee(
        [...['payouts', 'create', '--provider', provider.id, '--amount', '$30', '--reference', 'wire-1'], '--json'],
        admin,
      ),
    );
    assert.match(created.payout_id, /^po_[0-9a-f]{16}$/);
    assert.equal(created.status, 'pending');
    assert.equal(created.amount_micro_usd, 30_000_000);
    assert.equal(created.reference, 'wire-1');
    let e = await earnings();
    assert.equal(e.debits_pending, 30_000_000n, 'the payout locks earnings');

    const confirmed = await ee(['payouts', 'confirm', created.payout_id, '--idempotency-key', 'confirm-1'], admin);
    assert.equal(confirmed.code, 0, show(confirmed));
    assert.match(confirmed.stdout, /Status\s+confirmed/);
    // The same command again (same key) replays; a new key finds it resolved: 409, nothing moves twice.
    assert.equal(
      (await ee(['payouts', 'confirm', created.payout_id, '--idempotency-key', 'confirm-1'], admin)).code,
      0,
    );
    failsWith(await ee(['payouts', 'cancel', created.payout_id], admin), 1, /^ee: payout_resolved: /);
    e = await earnings();
    assert.equal(e.debits_posted, 30_000_000n);
    assert.equal(e.debits_pending, 0n);

    const second = json(
      await ee(['payouts', 'create', '--provider', provider.id, '--micro-usd', '5000000', '--json'], admin),
    );
    const cancelled = json(await ee(['payouts', 'cancel', second.payout_id, '--json'], admin));
    assert.equal(cancelled.status, 'cancelled');
    e = await earnings();
    assert.equal(e.debits_posted, 30_000_000n, 'a cancelled payout pays nothing');
    assert.equal(e.debits_pending, 0n);

    // The provider sees its own payouts, newest first; show has the detail.
    const asProvider = { EE_CONTROL_URL: url, EE_API_KEY: provider.key };
    const list = json(await ee(['payouts', 'list', '--json'], asProvider));
    assert.deepEqual(
      list.payouts.map((p: { payout_id: string; status: string }) => [p.payout_id, p.status]),
      [
        [second.payout_id, 'cancelled'],
        [created.payout_id, 'confirmed'],
      ],
    );
    const one = await ee(['payouts', 'show', created.payout_id], asProvider);
    assert.equal(one.code, 0, show(one));
    assert.match(one.stdout, /Amount\s+\$30\.00/);

    // More than the earnings: 402; a provider's key is no admin token; an unknown payout: 404.
    failsWith(
      await ee(['payouts', 'create', '--provider', provider.id, '--amount', '$1000'], admin),
      1,
      /^ee: insufficient_funds: /,
    );
    failsWith(
      await ee(['payouts', 'create', '--provider', provider.id, '--amount', '$1'], asProvider),
      1,
      /^ee: unauthorized: .*set EE_ADMIN_TOKEN/,
    );
    failsWith(await ee(['payouts', 'confirm', 'po_0000000000000000'], admin), 1, /^ee: unknown_payout: /);
  });

  it('payouts: bad input exits 2 before any request', async () => {
    const cases: Array<[string[], RegExp]> = [
      [
        ['payouts', 'create', '--provider', 'user:00000000000000000000', '--amount', '$1'],
        /--provider must be a provider/,
      ],
      [['payouts', 'create', '--provider', provider.id], /give exactly one of --amount/],
      [['payouts', 'create', '--provider', provider.id, '--amount', 'ten'], /--amount/],
      [['payouts', 'create', '--provider', provider.id, '--amount', '$1', '--reference', 'a b'], /--reference/],
      [['payouts', 'confirm', 'po/../x'], /is not a payout id/],
      [['payouts', 'cancel', ''], /is not a payout id/],
    ];
    for (const [args, err] of cases) failsWith(await ee(args, admin), 2, err);
    assert.equal((await earnings()).debits_pending, 0n, 'nothing was locked');
  });

  it('--help of each new command names its options and has an example', async () => {
    const COMMANDS: Array<[string[], string[]]> = [
      [
        ['accounts', 'keys', 'rotate'],
        ['<account>', '--grace', '--idempotency-key', '--api-key', '--json'],
      ],
      [
        ['payouts', 'create'],
        ['--provider', '--amount', '--micro-usd', '--reference', '--idempotency-key'],
      ],
      [
        ['payouts', 'confirm'],
        ['<payout>', '--idempotency-key', '--admin-token', '--json'],
      ],
      [
        ['payouts', 'cancel'],
        ['<payout>', '--idempotency-key', '--admin-token', '--json'],
      ],
      [
        ['nodes', 'list'],
        ['--mine', '--limit', '--cursor', '--all', '--json'],
      ],
    ];
    for (const [path, options] of COMMANDS) {
      const r = await ee([...path, '--help']);
      assert.equal(r.code, 0, show(r));
      for (const o of options) assert.ok(r.stdout.includes(o), `ee ${path.join(' ')} --help lacks ${o}\n${r.stdout}`);
      const examples = r.stdout.split('\nExamples:\n')[1] ?? '';
      assert.ok(examples.includes(`ee ${path.join(' ')} `), `no example of ee ${path.join(' ')}\n${r.stdout}`);
    }
  });
});
