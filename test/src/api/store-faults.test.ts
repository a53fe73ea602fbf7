// Faults look like faults: with PostgreSQL unreachable or the SQLite disk full, money calls answer 503
// store_unavailable with Retry-After (never 500), /health says the store is unavailable, /ready answers 503,
// the same error is logged a bounded number of times, and everything works again once the store is back.
//
// PostgreSQL: the control plane reaches the database through a TCP relay in this test (real sockets); the test
// stops the relay (listener closed, connections cut) and starts it again on the same port.
// SQLite: a full disk is simulated with SQLite's own `max_page_count` pragma (set on the control plane's one
// connection to the pages the file has now): the next write that needs a page fails with SQLITE_FULL exactly
// as on a full file system, without needing root to mount a tiny tmpfs.
import assert from 'node:assert/strict';
import net from 'node:net';
import { Writable } from 'node:stream';
import { after, describe, it } from 'node:test';
import { sql } from 'kysely';
import { controlPlaneLogger, LOG_REPEAT_MAX } from '@easyenclave/control-plane/log';
import { verifyLedger } from '@easyenclave/control-plane/ledger-store/verify';
import type { ControlPlane } from '@easyenclave/control-plane/server';
import { closeAll, onCleanup, startCp, waitFor } from '../helpers/network.js';
import { pgSkipReason, withTempPgDatabase } from '../helpers/pg.js';
import { call, createAccount } from '../ledger-http/client.js';

class LogLines extends Writable {
  readonly lines: any[] = [];
  override _write(chunk: Buffer, _enc: string, done: () => void): void {
    for (const line of chunk.toString('utf8').split('\n')) if (line.trim()) this.lines.push(JSON.parse(line));
    done();
  }
}

/** A TCP relay to PostgreSQL that the test can cut and restore (same port). */
class Relay {
  #server: net.Server | null = null;
  readonly #sockets = new Set<net.Socket>();
  port = 0;

  constructor(private readonly target: { host: string; port: number }) {}

  async start(): Promise<void> {
    const server = net.createServer((client) => {
      const upstream = net.connect(this.target);
      for (const s of [client, upstream]) {
        this.#sockets.add(s);
        s.on('close', () => this.#sockets.delete(s));
        s.on('error', () => undefined);
      }
      client.pipe(upstream).pipe(client);
      client.on('close', () => upstream.destroy());
      upstream.on('close', () => client.destroy());
    });
    await new Promise<void>((resolve) => server.listen(this.port, '127.0.0.1', resolve));
    this.port = (server.address() as net.AddressInfo).port;
    this.#server = server;
  }

  async stop(): Promise<void> {
    const server = this.#server;
    this.#server = null;
    for (const s of this.#sockets) s.destroy();
    if (server) await new Promise<void>((resolve) => server.close(() => resolve()));
  }
}

async function health(cp: ControlPlane) {
  return (await fetch(`${cp.api_url}/health`)).json() as Promise<Record<string, unknown>>;
}

async function ready(cp: ControlPlane): Promise<number> {
  return (await fetch(`${cp.api_url}/ready`)).status;
}

function assertStoreUnavailable(r: { status: number; headers: Headers; body: any }, what: string): void {
  assert.equal(r.status, 503, `${what}: ${JSON.stringify(r.body)}`);
  assert.equal(r.body.error.code, 'store_unavailable', what);
  assert.equal(r.body.error.type, 'unavailable', what);
  assert.match(r.headers.get('retry-after') ?? '', /^\d+$/, `${what}: Retry-After`);
}

describe('store faults', () => {
  after(closeAll);

  it('PostgreSQL unreachable: 503 store_unavailable + Retry-After, /ready 503, bounded logs; then recovery', async (t) => {
    const skip = await pgSkipReason();
    if (skip) return t.skip(skip);
    await withTempPgDatabase(async (url) => {
      const direct = new URL(url);
      const relay = new Relay({ host: direct.hostname, port: Number(direct.port || 5432) });
      await relay.start();
      onCleanup(() => relay.stop());
      const viaRelay = new URL(url);
      viaRelay.hostname = '127.0.0.1';
      viaRelay.port = String(relay.port);
      const logs = new LogLines();
      const cp = await startCp({ EE_DATABASE_URL: viaRelay.toString() }, { logger: controlPlaneLogger('info', logs) });
      const base = cp.api_url;
      const alice = await createAccount(base, 'user', 'Alice');
      const bob = await createAccount(base, 'user', 'Bob');
      assert.equal(
        (
          await call(base, 'POST', '/v1/credits/purchase', {
            body: { account: alice.id, amount: '$50', payment_ref: 'pg_fault_1' },
          })
        ).status,
        201,
      );
      assert.equal(await ready(cp), 200);
      assert.equal((await health(cp)).store, 'ok');

      await relay.stop();
      const transfer = () =>
        call(base, 'POST', '/v1/credits/transfer', { token: alice.key, body: { to: bob.id, amount: '$1' } });
      assertStoreUnavailable(await transfer(), 'transfer');
      assertStoreUnavailable(await call(base, 'GET', `/v1/balances/${alice.id}`, { token: alice.key }), 'balance');
      assertStoreUnavailable(
        await call(base, 'POST', '/v1/credits/purchase', {
          body: { account: alice.id, amount: '$5', payment_ref: 'pg_fault_2' },
        }),
        'purchase',
      );
      const h = await health(cp);
      assert.equal(h.store, 'unavailable');
      assert.equal(h.status, 'degraded');
      const r = await fetch(`${base}/ready`);
      assert.equal(r.status, 503);
      assert.equal(((await r.json()) as { ready: boolean }).ready, false);
      // Many failures, few lines: the same error is written at most LOG_REPEAT_MAX times per interval.
      for (let i = 0; i < 30; i++) assert.equal((await transfer()).status, 503);
      const faultLines = logs.lines.filter((l) => l.msg === 'store unavailable');
      assert.ok(faultLines.length >= 1, 'the fault is logged');
      const perError = new Map<string, number>();
      for (const l of faultLines) perError.set(l.err_code, (perError.get(l.err_code) ?? 0) + 1);
      for (const [code, n] of perError) assert.ok(n <= LOG_REPEAT_MAX, `${n} lines for the repeated fault ${code}`);
      assert.ok(faultLines.length < 33, `${faultLines.length} lines for 33 failed requests`);
      assert.ok(!logs.lines.some((l) => l.msg === 'request failed'), 'no fault logged as an internal error');

      await relay.start();
      await waitFor(async () => (await ready(cp)) === 200, 30_000, '/ready after PostgreSQL is back');
      assert.equal((await health(cp)).store, 'ok');
      const ok = await transfer();
      assert.equal(ok.status, 200, JSON.stringify(ok.body));
      assert.equal(ok.body.balance.available_micro_usd, 49_000_000, 'the failed transfers moved nothing');
      await cp.shutdown(0);
    });
  });

  it('SQLite disk full (max_page_count): 503 store_unavailable, nothing half-written, recovery', async () => {
    const cp = await startCp();
    const base = cp.api_url;
    const alice = await createAccount(base, 'user', 'Alice');
    assert.equal(
      (
        await call(base, 'POST', '/v1/credits/purchase', {
          body: { account: alice.id, amount: '$50', payment_ref: 'full_1' },
        })
      ).status,
      201,
    );
    const pages = await sql<{ page_count: number }>`PRAGMA page_count`.execute(cp.store.db);
    await sql.raw(`PRAGMA max_page_count = ${pages.rows[0]!.page_count}`).execute(cp.store.db);
    // The free pages left in the file fill first; new accounts (several rows each) soon need a new page.
    let full: Awaited<ReturnType<typeof call>> | undefined;
    for (let i = 0; i < 500 && full === undefined; i++) {
      const r = await call(base, 'POST', '/v1/accounts', {
        body: { kind: 'user', name: `filler ${i} ${'x'.repeat(100)}` },
      });
      if (r.status !== 201) full = r;
    }
    assert.ok(full, 'the database never filled up');
    assertStoreUnavailable(full, 'create account on a full disk');
    assertStoreUnavailable(
      await call(base, 'POST', '/v1/credits/purchase', {
        body: { account: alice.id, amount: '$5', payment_ref: 'full_2' },
      }),
      'purchase on a full disk',
    );
    assert.equal((await health(cp)).store, 'unavailable');

    await sql.raw('PRAGMA max_page_count = 1073741823').execute(cp.store.db);
    const again = await call(base, 'POST', '/v1/credits/purchase', {
      body: { account: alice.id, amount: '$5', payment_ref: 'full_2' },
    });
    assert.equal(again.status, 201, JSON.stringify(again.body));
    assert.equal(again.body.balance.available_micro_usd, 55_000_000);
    await waitFor(async () => (await health(cp)).store === 'ok', 30_000, 'store ok after the disk has room');
    assert.deepEqual((await verifyLedger(cp.store.db, 'sqlite')).errors, []);
  });
});
