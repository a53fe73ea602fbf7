// The one writer (store/writer.ts) shared by the store and the ledger: a bounded queue, closed means closed,
// and the failure rule — an unavailable database fails the whole batch at once instead of once per operation,
// while any other error still fails only the operation that caused it.
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { sql } from 'kysely';
import { openPostgres } from '@easyenclave/control-plane/store/postgres';
import { openSqlite } from '@easyenclave/control-plane/store/sqlite';
import {
  GroupWriter,
  MAX_QUEUED_OPS,
  WriterBusyError,
  WriterClosedError,
} from '@easyenclave/control-plane/store/writer';
import { freePort } from '../helpers/network.js';
import { tmpDir } from '../helpers/tmp.js';

describe('the shared writer', () => {
  it('refuses work beyond MAX_QUEUED_OPS at once, commits the rest, and refuses everything once closed', async () => {
    const db = openSqlite(join(tmpDir(), 'writer.db'));
    try {
      const writer = new GroupWriter<number>({
        name: 'test',
        max_batch_ops: 1024,
        commit: async (ops) => {
          await sql`SELECT 1`.execute(db);
          return ops.map((n) => n * 2);
        },
      });
      const accepted = Array.from({ length: MAX_QUEUED_OPS }, (_, i) => writer.submit<number>(i));
      await assert.rejects(writer.submit(-1), WriterBusyError);
      const results = await Promise.all(accepted);
      assert.equal(results[12_345], 24_690);
      assert.equal(writer.stats.ops, MAX_QUEUED_OPS);
      assert.equal(writer.stats.batches, MAX_QUEUED_OPS / 1024);
      await writer.close();
      await assert.rejects(writer.submit(1), WriterClosedError);
    } finally {
      await db.destroy();
    }
  });

  it('an unreachable database fails the whole batch with one attempt; a bad operation still fails alone', async () => {
    const down = openPostgres(`postgres://postgres@127.0.0.1:${await freePort()}/nowhere`);
    try {
      let attempts = 0;
      const writer = new GroupWriter<string>({
        name: 'test',
        max_batch_ops: 64,
        commit: async (ops) => {
          attempts++;
          await sql`SELECT 1`.execute(down);
          return ops;
        },
      });
      const results = await Promise.allSettled(['a', 'b', 'c', 'd', 'e'].map((op) => writer.submit<string>(op)));
      assert.ok(
        results.every((r) => r.status === 'rejected' && /ECONNREFUSED/.test(String(r.reason?.code ?? r.reason))),
      );
      assert.equal(attempts, 1, 'one attempt for the batch, not one more per operation');
    } finally {
      await down.destroy();
    }
    // Any other error: the batch is split and only the bad operation fails.
    let attempts = 0;
    const writer = new GroupWriter<string>({
      name: 'test',
      max_batch_ops: 64,
      commit: async (ops) => {
        attempts++;
        if (ops.includes('bad')) throw new Error('bad operation');
        return ops;
      },
    });
    const results = await Promise.allSettled(['a', 'bad', 'c'].map((op) => writer.submit<string>(op)));
    assert.deepEqual(
      results.map((r) => r.status),
      ['fulfilled', 'rejected', 'fulfilled'],
    );
    assert.equal(attempts, 4);
  });
});
