// API key rotation over HTTP (POST /v1/accounts/{account}/keys) on SQLite and on PostgreSQL: the old key works
// within its grace and answers 401 after it, grace 0 ends it at once, another account's key cannot rotate, the
// new key works, an idempotent retry makes no second key, and no key ever reaches the log. On PostgreSQL a
// second replica refuses a key revoked on the first within API_KEY_CACHE_MS, and accepts the new key at once.
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { after, describe, it } from 'node:test';
import pino from 'pino';
import { ManualClock } from '@easyenclave/control-plane/clock';
import {
  API_KEY_CACHE_MS,
  MAX_KEY_GRACE_MS,
  MAX_LIVE_API_KEYS,
} from '@easyenclave/control-plane/ledger-store/api-keys';
import { verifyLedger } from '@easyenclave/control-plane/ledger-store/verify';
import type { ControlPlane } from '@easyenclave/control-plane/server';
import { closeAll, sleep, startCp } from '../helpers/network.js';
import { pgSkipReason, withTempPgDatabase } from '../helpers/pg.js';
import { call, createAccount } from './client.js';

const T0 = Date.UTC(2026, 10, 1, 12);

/** A logger at debug level whose every line is kept, to search for keys. */
function capturingLogger(): { logger: pino.Logger; text: () => string } {
  const chunks: string[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      chunks.push(chunk.toString());
      done();
    },
  });
  return { logger: pino({ level: 'debug' }, sink), text: () => chunks.join('') };
}

const balanceWith = async (cp: ControlPlane, account: string, key: string) =>
  (await call(cp.api_url, 'GET', `/v1/balances/${account}`, { token: key })).status;

const rotate = (cp: ControlPlane, account: string, token: string | undefined, body: unknown, key?: string) =>
  call(cp.api_url, 'POST', `/v1/accounts/${account}/keys`, { token, body, ...(key ? { key } : {}) });

async function rotationSuite(cp: ControlPlane, clock: ManualClock, logText: () => string): Promise<void> {
  const alice = await createAccount(cp.api_url, 'user', 'Alice');
  const bob = await createAccount(cp.api_url, 'provider', 'Bob');
  const keys = [alice.key, bob.key];

  // Another account's key may not rotate; the admin may; an unknown account is 404; bad grace is 400.
  const other = await rotate(cp, alice.id, bob.key, {});
  assert.equal(other.status, 403, JSON.stringify(other.body));
  assert.equal(other.body.error.code, 'forbidden');
  assert.equal((await rotate(cp, 'user:00000000000000000000', 'x'.repeat(40), {})).status, 401);
  const unknown = await rotate(cp, 'user:00000000000000000000', undefined, {});
  assert.equal(unknown.status, 404, JSON.stringify(unknown.body));
  for (const grace_ms of [-1, MAX_KEY_GRACE_MS + 1, '1h', 1.5]) {
    const bad = await rotate(cp, alice.id, alice.key, { grace_ms });
    assert.equal(bad.status, 400, `grace_ms ${String(grace_ms)}: ${JSON.stringify(bad.body)}`);
  }
  assert.equal(await balanceWith(cp, alice.id, alice.key), 200, 'refused rotations changed nothing');

  // Grace of a minute: both keys work, then only the new one.
  const r1 = await rotate(cp, alice.id, alice.key, { grace_ms: 60_000 });
  assert.equal(r1.status, 201, JSON.stringify(r1.body));
  const k2: string = r1.body.api_key;
  keys.push(k2);
  assert.match(k2, new RegExp(`^ee_user_${alice.id.slice(5)}_`));
  assert.equal(r1.body.previous_keys_expire_at, new Date(clock.now() + 60_000).toISOString());
  assert.equal(await balanceWith(cp, alice.id, alice.key), 200, 'old key within its grace');
  assert.equal(await balanceWith(cp, alice.id, k2), 200, 'new key');
  clock.advance(59_999);
  assert.equal(await balanceWith(cp, alice.id, alice.key), 200, 'old key 1 ms before its end');
  clock.advance(1);
  const late = await call(cp.api_url, 'GET', `/v1/balances/${alice.id}`, { token: alice.key });
  assert.equal(late.status, 401, 'old key after its grace');
  assert.equal(late.body.error.code, 'unauthorized');
  assert.equal((await rotate(cp, alice.id, alice.key, { grace_ms: 0 })).status, 401, 'an ended key cannot rotate');
  assert.equal(await balanceWith(cp, alice.id, k2), 200);

  // Grace 0: refused at once.
  const r2 = await rotate(cp, alice.id, k2, { grace_ms: 0 });
  assert.equal(r2.status, 201, JSON.stringify(r2.body));
  const k3: string = r2.body.api_key;
  keys.push(k3);
  assert.equal(await balanceWith(cp, alice.id, k2), 401, 'grace 0 ends the old key at once');
  assert.equal(await balanceWith(cp, alice.id, k3), 200);

  // The admin rotates Bob's key with the default grace (24 h); a retry with the same Idempotency-Key gets the
  // first answer without the key and makes no second key.
  const a1 = await rotate(cp, bob.id, undefined, {}, 'rotate-bob-1');
  assert.equal(a1.status, 201, JSON.stringify(a1.body));
  keys.push(a1.body.api_key);
  assert.equal(a1.body.previous_keys_expire_at, new Date(clock.now() + 24 * 3600_000).toISOString());
  const countKeys = async () =>
    Number(
      (
        await cp.ledger.db
          .selectFrom('ee_api_keys')
          .select((eb) => eb.fn.countAll().as('n'))
          .where('account_id', '=', bob.id)
          .executeTakeFirstOrThrow()
      ).n,
    );
  const before = await countKeys();
  const a2 = await rotate(cp, bob.id, undefined, {}, 'rotate-bob-1');
  assert.equal(a2.status, 201);
  assert.equal(a2.headers.get('idempotent-replayed'), 'true');
  assert.equal(a2.body.api_key, null);
  assert.equal(await countKeys(), before, 'a replay makes no key');
  assert.equal(await balanceWith(cp, `${bob.id}:earnings`, bob.key), 200, 'old key within the default grace');
  assert.equal(await balanceWith(cp, `${bob.id}:earnings`, a1.body.api_key), 200);

  // At most MAX_LIVE_API_KEYS valid at once: more rotations within the grace end the oldest keys.
  const live = [a1.body.api_key as string];
  for (let i = 0; i < MAX_LIVE_API_KEYS; i++) {
    clock.advance(1); // "oldest" is by creation time
    const r = await rotate(cp, bob.id, live[live.length - 1]!, { grace_ms: 3600_000 });
    assert.equal(r.status, 201, JSON.stringify(r.body));
    live.push(r.body.api_key);
    keys.push(r.body.api_key);
  }
  assert.equal(await balanceWith(cp, `${bob.id}:earnings`, bob.key), 401, 'the oldest key ended');
  for (const k of live.slice(-MAX_LIVE_API_KEYS))
    assert.equal(await balanceWith(cp, `${bob.id}:earnings`, k), 200, 'the newest keys stay valid');

  // The identity rows and their audit chain are untouched by rotation.
  const report = await verifyLedger(cp.ledger.db, cp.ledger.dialect, () => clock.now());
  assert.deepEqual(report.errors, []);

  const log = logText();
  // Every request is logged (EE_ACCESS_LOG=full): the successful rotations are in the log, their keys are not.
  const rotations = log.split('\n').filter((l) => l.includes(`/v1/accounts/${alice.id}/keys`) && l.includes('201'));
  assert.ok(rotations.length >= 2, 'the log is captured (the rotations are in it)');
  for (const k of keys) {
    const secret = k.split('_').slice(3).join('_');
    assert.ok(!log.includes(secret), 'no key (nor its secret) is ever logged');
  }
}

describe('API key rotation (SQLite)', () => {
  after(closeAll);
  it('grace, refusal after it, grace 0, wrong owner, idempotent retry, key cap, no key in logs', async () => {
    const clock = new ManualClock(T0);
    const log = capturingLogger();
    const cp = await startCp({ EE_ACCESS_LOG: 'full' }, { clock, logger: log.logger });
    await rotationSuite(cp, clock, log.text);
  });
});

describe('API key rotation (PostgreSQL, two replicas)', { skip: await pgSkipReason() }, () => {
  after(closeAll);
  it('the same on PostgreSQL; a revocation reaches the other replica within API_KEY_CACHE_MS', async (t) => {
    await withTempPgDatabase(async (url) => {
      const clocks = [new ManualClock(T0), new ManualClock(T0)];
      const log = capturingLogger();
      const a = await startCp(
        { EE_DATABASE_URL: url, EE_ACCESS_LOG: 'full' },
        { clock: clocks[0], logger: log.logger },
      );
      const b = await startCp({ EE_DATABASE_URL: url }, { clock: clocks[1], logger: quiet() });
      try {
        await rotationSuite(a, clocks[0]!, log.text);

        clocks[1]!.set(clocks[0]!.now()); // replicas agree on the time
        const carol = await createAccount(a.api_url, 'user', 'Carol');
        assert.equal(await balanceWith(b, carol.id, carol.key), 200, 'replica B has read the key');
        const r = await rotate(a, carol.id, carol.key, { grace_ms: 0 });
        assert.equal(r.status, 201, JSON.stringify(r.body));
        const revoked_at = Date.now();
        assert.equal(await balanceWith(a, carol.id, carol.key), 401, 'refused at once where it was rotated');
        let status = 200;
        while (status === 200 && Date.now() - revoked_at < API_KEY_CACHE_MS + 2000) {
          status = await balanceWith(b, carol.id, carol.key);
          if (status === 200) await sleep(100);
        }
        const delay_ms = Date.now() - revoked_at;
        assert.equal(status, 401, 'replica B refuses the revoked key');
        assert.ok(delay_ms <= API_KEY_CACHE_MS + 1000, `replica B refused it after ${delay_ms} ms`);
        t.diagnostic(`replica B refused the revoked key ${delay_ms} ms after the rotation`);

        const carol2 = await createAccount(a.api_url, 'user', 'Carol 2');
        assert.equal(await balanceWith(b, carol2.id, carol2.key), 200);
        const r2 = await rotate(a, carol2.id, carol2.key, { grace_ms: 60_000 });
        assert.equal(await balanceWith(b, carol2.id, r2.body.api_key), 200, 'replica B accepts the new key at once');
      } finally {
        await a.shutdown(0);
        await b.shutdown(0);
      }
    });
  });
});

const quiet = () => pino({ level: 'silent' });
