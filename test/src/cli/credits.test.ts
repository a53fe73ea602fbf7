// `ee accounts create` and `ee credits purchase|transfer|balance|history` as subprocesses against a real
// control plane: exact amounts, --json, idempotent retries, exit codes, and no secret echoed.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { ADMIN_TOKEN, closeAll, startCp } from '../helpers/network.js';
import { ee, failsWith, json, show } from './util.js';

describe('ee accounts / ee credits', () => {
  let url: string;
  let admin: Record<string, string>;
  let alice: { id: string; key: string };
  let bob: { id: string; key: string };

  before(async () => {
    url = (await startCp()).api_url;
    admin = { EE_CONTROL_URL: url, EE_ADMIN_TOKEN: ADMIN_TOKEN };
    const a = json(await ee(['accounts', 'create', '--kind', 'user', '--name', 'Alice', '--json'], admin));
    const b = json(await ee(['accounts', 'create', '--kind', 'user', '--name', 'Bob', '--json'], admin));
    alice = { id: a.account_id, key: a.api_key };
    bob = { id: b.account_id, key: b.api_key };
    assert.match(alice.key, /^ee_user_/);
  });
  after(closeAll);

  it('purchase "$200", transfer "$12.50", exact balances and history', async () => {
    const p = json(
      await ee(
        ['credits', 'purchase', '--account', alice.id, '--amount', '$200', '--payment-ref', 'cli-pay-1', '--json'],
        admin,
      ),
    );
    assert.equal(p.amount_micro_usd, 200_000_000);
    const asAlice = { EE_CONTROL_URL: url, EE_API_KEY: alice.key };
    const t = await ee(['credits', 'transfer', '--to', bob.id, '--amount', '$12.50', '--memo', 'lunch'], asAlice);
    assert.equal(t.code, 0, show(t));
    assert.match(t.stdout, /Sent\s+\$12\.50/);
    assert.ok(!t.stdout.includes(alice.key) && !t.stderr.includes(alice.key), 'the API key must never be printed');
    const bal = json(await ee(['credits', 'balance', '--json'], asAlice));
    assert.equal(bal.account, alice.id);
    assert.equal(bal.available_micro_usd, 187_500_000);
    const bobBal = json(await ee(['credits', 'balance', bob.id, '--json'], admin));
    assert.equal(bobBal.available_micro_usd, 12_500_000);
    const table = await ee(['credits', 'balance'], asAlice);
    assert.match(table.stdout, /Available\s+\$187\.50/);
    const h = json(await ee(['credits', 'history', '--json'], asAlice));
    assert.deepEqual(
      h.transfers.map((x: { type: string; amount_micro_usd: number }) => [x.type, x.amount_micro_usd]),
      [
        ['transfer', 12_500_000],
        ['purchase', 200_000_000],
      ],
    );
    const paged = json(await ee(['credits', 'history', '--limit', '1', '--all', '--json'], asAlice));
    assert.equal(paged.transfers.length, 2);
  });

  it('a retried transfer with the same --idempotency-key applies once', async () => {
    const asAlice = { EE_CONTROL_URL: url, EE_API_KEY: alice.key };
    const args = [
      'credits',
      'transfer',
      '--to',
      bob.id,
      '--micro-usd',
      '7',
      '--idempotency-key',
      'cli-retry-1',
      '--json',
    ];
    const first = json(await ee(args, asAlice));
    const second = json(await ee(args, asAlice));
    assert.equal(second.transfer_id, first.transfer_id);
    const bobBal = json(await ee(['credits', 'balance', bob.id, '--json'], admin));
    assert.equal(bobBal.available_micro_usd, 12_500_007);
  });

  it('a purchase repeated with the same --payment-ref says it was a replay, not "Minted", and mints nothing', async () => {
    const args = ['credits', 'purchase', '--account', bob.id, '--amount', '$3', '--payment-ref', 'cli-pay-replay'];
    const first = await ee(args, admin);
    assert.equal(first.code, 0, show(first));
    assert.match(first.stdout, /^Minted\s+\$3\.00$/m);
    const before = json(await ee(['credits', 'balance', bob.id, '--json'], admin)).total_micro_usd;
    const again = await ee(args, admin);
    assert.equal(again.code, 0, show(again));
    assert.doesNotMatch(again.stdout, /^Minted/m, show(again));
    assert.match(again.stdout, /^Not minted\s+\$3\.00 — a replay: payment cli-pay-replay had already minted it$/m);
    assert.equal(json(await ee([...args, '--json'], admin)).replayed, true);
    assert.equal(json(await ee(['credits', 'balance', bob.id, '--json'], admin)).total_micro_usd, before);
  });

  it('--amount ten: a message that says what an amount looks like (not "exponent notation")', async () => {
    const r = await ee(['credits', 'transfer', '--to', bob.id, '--amount', 'ten'], {
      EE_CONTROL_URL: url,
      EE_API_KEY: alice.key,
    });
    failsWith(r, 2, /^ee: --amount: invalid amount "ten": expected dollars like "\$200", "200" or "12\.50"\n$/);
    assert.doesNotMatch(r.stderr, /exponent/);
  });

  it('bad input exits 2 before any request; refusals exit 1 with the API code', async () => {
    const asAlice = { EE_CONTROL_URL: url, EE_API_KEY: alice.key };
    for (const amount of ['-5', '0', '1.0000001', '1e3', 'ten']) {
      failsWith(await ee(['credits', 'transfer', '--to', bob.id, '--amount', amount], asAlice), 2, /invalid amount/);
    }
    failsWith(await ee(['credits', 'transfer', '--to', bob.id], asAlice), 2, /exactly one of --amount/);
    failsWith(
      await ee(['credits', 'transfer', '--to', bob.id, '--amount', '1', '--micro-usd', '1'], asAlice),
      2,
      /exactly one/,
    );
    failsWith(await ee(['credits', 'transfer', '--to', bob.id, '--micro-usd', '1.5'], asAlice), 2, /integer/);
    failsWith(await ee(['accounts', 'create', '--kind', 'bank', '--name', 'x'], admin), 2, /user or provider/);
    failsWith(await ee(['credits', 'balance'], { EE_CONTROL_URL: url }), 2, /name the balance account/);
    failsWith(await ee(['credits', 'history', '--limit', '0'], asAlice), 2, /--limit/);
    failsWith(await ee(['credits', 'transfer', '--to', bob.id, '--amount', '$1000'], asAlice), 1, /insufficient_funds/);
    failsWith(await ee(['credits', 'balance', bob.id], asAlice), 1, /forbidden/);
    const wrong = 'wrong-admin-token-0123456789abcdef';
    const r = await ee(['credits', 'purchase', '--account', alice.id, '--amount', '1', '--payment-ref', 'x'], {
      EE_CONTROL_URL: url,
      EE_ADMIN_TOKEN: wrong,
    });
    failsWith(r, 1, /unauthorized/);
    assert.ok(!r.stderr.includes(wrong));
  });

  it('accounts list (admin): newest first, paged, by kind, never a key', async () => {
    const all = json(await ee(['accounts', 'list', '--all', '--limit', '1', '--json'], admin));
    const ids = all.accounts.map((a: { account_id: string }) => a.account_id);
    assert.deepEqual(ids.slice(-2), [bob.id, alice.id], 'newest first: Bob was created after Alice');
    assert.equal(all.next_cursor, null);
    const page = json(await ee(['accounts', 'list', '--limit', '1', '--json'], admin));
    assert.equal(page.accounts.length, 1);
    assert.equal(typeof page.next_cursor, 'string');
    assert.deepEqual(json(await ee(['accounts', 'list', '--kind', 'provider', '--json'], admin)).accounts, []);
    const table = await ee(['accounts', 'list'], admin);
    assert.match(table.stdout, new RegExp(`^${alice.id}\\s+user\\s+Alice\\s`, 'm'));
    for (const r of [all, page]) assert.ok(!JSON.stringify(r).includes('ee_user_'), 'no API key is listed');
    failsWith(
      await ee(['accounts', 'list'], { EE_CONTROL_URL: url, EE_API_KEY: alice.key }),
      1,
      /unauthorized|forbidden/,
    );
  });

  it('--help of every ledger command documents its options', async () => {
    for (const [cmd, must] of [
      [['accounts', 'create'], '--kind'],
      [['credits', 'purchase'], '--payment-ref'],
      [['credits', 'transfer'], '--idempotency-key'],
      [['credits', 'balance'], '--json'],
      [['credits', 'history'], '--cursor'],
    ] as const) {
      const r = await ee([...cmd, '--help']);
      assert.equal(r.code, 0, show(r));
      assert.ok(r.stdout.includes(must) && r.stdout.includes('Examples:'), `${cmd.join(' ')} --help\n${r.stdout}`);
    }
  });
});
