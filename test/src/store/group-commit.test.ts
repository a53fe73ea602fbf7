import assert from 'node:assert/strict';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { openStore } from '@easyenclave/control-plane/store/index';
import { GroupCommitter } from '@easyenclave/control-plane/store/group-commit';
import { tmpDir } from '../helpers/tmp.js';

describe('group commit', () => {
  it('writes submitted in one turn share a transaction; a failing write fails alone', async () => {
    const store = await openStore({ db_path: join(tmpDir(), 'gc.db') });
    try {
      const gc = new GroupCommitter(store.db);
      const N = 200;
      const writes = Array.from({ length: N }, (_, i) =>
        gc.submit((tx) =>
          tx
            .insertInto('apps')
            .values({ app_name: `app-${i}`, repo: 'acme/x', network: 'sandbox-1', created_at_ms: i })
            .execute(),
        ),
      );
      // A write that violates the primary key (app-7 is inserted above in the same batch).
      const bad = gc.submit((tx) =>
        tx
          .insertInto('apps')
          .values({ app_name: 'app-7', repo: 'acme/y', network: 'sandbox-1', created_at_ms: 0 })
          .execute(),
      );
      const results = await Promise.allSettled([...writes, bad]);
      assert.equal(results.filter((r) => r.status === 'fulfilled').length, N);
      assert.equal(results[N]!.status, 'rejected');
      assert.ok(gc.batches <= 2, `expected one batch (plus its retry), got ${gc.batches}`);
      const apps = await store.listApps();
      assert.equal(apps.length, N);
      assert.equal(apps.find((a) => a.app_name === 'app-7')!.repo, 'acme/x');
    } finally {
      await store.close();
    }
  });

  it('registerAgent: the first repo owns the name; another repo or network writes nothing', async () => {
    const store = await openStore({ db_path: join(tmpDir(), 'reg.db') });
    try {
      const base = {
        app_name: 'demo',
        release_tag: 'v1',
        network: 'sandbox-1',
        remote_addr: null,
        now_ms: 1000,
        ttl_ms: 5000,
      };
      const [a, b] = await Promise.all([
        store.registerAgent({ ...base, agent_id: 'agent-aaaa', repo: 'acme/one' }),
        store.registerAgent({ ...base, agent_id: 'agent-bbbb', repo: 'acme/two' }),
      ]);
      assert.equal(a.ok, true);
      assert.equal(b.ok, false);
      assert.equal(!b.ok && 'app' in b && b.app.repo, 'acme/one');
      const c = await store.registerAgent({ ...base, agent_id: 'agent-cccc', repo: 'acme/one', network: 'forge-1' });
      assert.equal(c.ok, false);
      assert.deepEqual(
        (await store.listAgents('demo')).map((x) => x.agent_id),
        ['agent-aaaa'],
      );
      assert.equal(a.ok && a.registration.expires_at_ms, 6000);
    } finally {
      await store.close();
    }
  });
});
