// Crash safety: kill -9 the control plane in the middle of a burst of transfers, restart it on the same SQLite
// file, and check that (1) every transfer the client saw acknowledged is in the journal, (2) retrying every
// request with its Idempotency-Key applies each exactly once, (3) money is conserved and the ledger verifies.
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { join } from 'node:path';
import { closeAll, sleep, spawnCp, type CpEnv } from '../helpers/network.js';
import { tmpDir } from '../helpers/tmp.js';
import { balance, call, createAccount } from './client.js';
import { ee, show } from '../cli/util.js';

const IN_FLIGHT = 32;
const AMOUNT = 1_000; // micro-USD per transfer

describe('ledger crash safety', () => {
  after(closeAll);

  it('kill -9 mid-burst: acknowledged transfers survive, retries apply once, the ledger verifies', async () => {
    const env: CpEnv = { EE_DB_PATH: join(tmpDir(), 'crash.db') };
    let cp = await spawnCp(env);
    const alice = await createAccount(cp.api_url, 'user', 'Alice');
    const bob = await createAccount(cp.api_url, 'user', 'Bob');
    const minted = await call(cp.api_url, 'POST', '/v1/credits/purchase', {
      body: { account: alice.id, amount: '$100', payment_ref: 'crash-pay' },
    });
    assert.equal(minted.status, 201);

    const acknowledged = new Map<string, string>(); // idempotency key -> transfer id
    const attempted: string[] = [];
    let stop = false;
    let next = 0;
    const worker = async () => {
      while (!stop) {
        const key = `burst-${next++}`;
        attempted.push(key);
        try {
          const r = await call(cp.api_url, 'POST', '/v1/credits/transfer', {
            token: alice.key,
            key,
            body: { to: bob.id, amount_micro_usd: AMOUNT },
          });
          if (r.status === 200) acknowledged.set(key, r.body.transfer_id);
        } catch {
          return; // the connection died with the process
        }
      }
    };
    const burst = Promise.all(Array.from({ length: IN_FLIGHT }, worker));
    // Wait until writes are flowing, then pull the plug while requests are in flight.
    while (acknowledged.size < 200) await sleep(5);
    cp.kill('SIGKILL');
    stop = true;
    await cp.exited;
    await burst;
    assert.ok(attempted.length > acknowledged.size, 'some requests must have been in flight at the kill');

    cp = await spawnCp(env);
    const journal = await call(cp.api_url, 'GET', `/v1/accounts/${bob.id}/transfers?limit=500`);
    const present = new Set<string>();
    let page = journal.body;
    for (;;) {
      for (const t of page.transfers) present.add(t.transfer_id);
      if (page.next_cursor === null) break;
      page = (await call(cp.api_url, 'GET', `/v1/accounts/${bob.id}/transfers?limit=500&cursor=${page.next_cursor}`))
        .body;
    }
    for (const [key, id] of acknowledged)
      assert.ok(present.has(id), `acknowledged transfer ${key} (${id}) lost in the crash`);

    // The client retries everything it is unsure of (and, to prove replays are harmless, everything else too).
    for (const key of attempted) {
      const r = await call(cp.api_url, 'POST', '/v1/credits/transfer', {
        token: alice.key,
        key,
        body: { to: bob.id, amount_micro_usd: AMOUNT },
      });
      assert.equal(r.status, 200, `${key}: ${JSON.stringify(r.body)}`);
      if (acknowledged.has(key)) assert.equal(r.body.transfer_id, acknowledged.get(key));
    }
    const moved = attempted.length * AMOUNT;
    assert.equal(await balance(cp.api_url, bob.id), moved);
    assert.equal(await balance(cp.api_url, alice.id), 100_000_000 - moved);

    cp.kill('SIGTERM');
    await cp.exited;
    const verify = await ee(['ledger', 'verify', '--db', env.EE_DB_PATH!, '--json']);
    assert.equal(verify.code, 0, show(verify));
    const report = JSON.parse(verify.stdout);
    assert.deepEqual(report.errors, []);
    assert.equal(report.ok, true);
    assert.ok(report.journal_rows >= attempted.length + 1);
  });
});
