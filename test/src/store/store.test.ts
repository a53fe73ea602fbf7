// One suite, three databases: SQLite file, SQLite :memory:, PostgreSQL (a fresh database per test).
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { join, resolve, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, test } from 'node:test';
import { sql } from 'kysely';
import {
  openStore,
  parseInt8,
  runMigrations,
  STORE_MIGRATIONS,
  type Store,
} from '@easyenclave/control-plane/store/index';
import { pgSkipReason, withTempPgDatabase } from '../helpers/pg.js';
import { tmpDir } from '../helpers/tmp.js';

type Open = () => Promise<Store>;
interface Target {
  name: string;
  kind: 'sqlite-file' | 'sqlite-memory' | 'postgres';
  skip: false | string;
  /** A second open() sees the same database. */
  reopenable: boolean;
  /** Runs fn with an opener for one fresh database; every store it opened is closed afterwards. */
  withDb(fn: (open: Open) => Promise<void>): Promise<void>;
}

async function tracking(openOne: Open, fn: (open: Open) => Promise<void>): Promise<void> {
  const stores: Store[] = [];
  try {
    await fn(async () => {
      const s = await openOne();
      stores.push(s);
      return s;
    });
  } finally {
    await Promise.all(stores.map((s) => s.close()));
  }
}

const targets: Target[] = [
  {
    name: 'SQLite file',
    kind: 'sqlite-file',
    skip: false,
    reopenable: true,
    withDb: (fn) => {
      const db_path = join(tmpDir(), 'nested', 'control-plane.db'); // parent dir does not exist yet
      return tracking(() => openStore({ db_path }), fn);
    },
  },
  {
    name: 'SQLite :memory:',
    kind: 'sqlite-memory',
    skip: false,
    reopenable: false,
    withDb: (fn) => tracking(() => openStore({ db_path: ':memory:' }), fn),
  },
  {
    name: 'PostgreSQL',
    kind: 'postgres',
    skip: await pgSkipReason(),
    reopenable: true,
    withDb: (fn) => withTempPgDatabase((database_url) => tracking(() => openStore({ database_url }), fn)),
  },
];

const NET = 'forge-1';
const agent = (agent_id: string, app_name: string, now_ms: number, remote_addr: string | null = '10.0.0.1') => ({
  agent_id,
  app_name,
  repo: `org/${app_name}`,
  release_tag: 'v1',
  network: NET,
  remote_addr,
  now_ms,
});
const attestation = (
  agent_id: string,
  app_name: string,
  now_ms: number,
  ok: boolean,
  more: { missed?: boolean; failure?: string } = {},
) => ({
  agent_id,
  app_name,
  now_ms,
  ok,
  reason: 'interval',
  missed: more.missed ?? false,
  evidence_type: 'tdx',
  evidence_hash: ok ? `hash-${now_ms}` : null,
  policy_version: 'p1',
  failure: more.failure ?? null,
});
async function claimed(s: Store, app_name: string, now_ms = 1): Promise<void> {
  assert.equal((await s.claimApp({ app_name, repo: `org/${app_name}`, network: NET, now_ms })).ok, true);
}
const versions = async (s: Store) =>
  (await s.db.selectFrom('schema_migrations').select(['version']).orderBy('version').execute()).map((r) => r.version);

for (const t of targets) {
  describe(`store on ${t.name}`, { skip: t.skip }, () => {
    test('migrations are recorded once per version and re-running them is a no-op', () =>
      t.withDb(async (open) => {
        const s1 = await open();
        assert.equal(s1.dialect, t.kind === 'postgres' ? 'postgres' : 'sqlite');
        const expected = STORE_MIGRATIONS.map((m) => m.version);
        assert.deepEqual(await versions(s1), expected);
        assert.deepEqual(await runMigrations(s1.db, s1.dialect, STORE_MIGRATIONS), []);
        if (t.reopenable) {
          await s1.close();
          await s1.close(); // idempotent
          const s2 = await open();
          assert.deepEqual(await versions(s2), expected);
        }
      }));

    test('a migration list that disagrees with the recorded history is refused', () =>
      t.withDb(async (open) => {
        const s = await open();
        const renamed = [{ version: 1, name: 'something else', up: async () => undefined }];
        await assert.rejects(runMigrations(s.db, s.dialect, renamed), /version 1 is .* in the database/);
        await assert.rejects(runMigrations(s.db, s.dialect, [...STORE_MIGRATIONS, ...STORE_MIGRATIONS]), /ascending/);
        // A failing migration leaves no trace (its transaction rolls back, no schema_migrations row).
        const failing = [
          {
            version: 900,
            name: 'fails',
            up: async (db: typeof s.db) => {
              await db.schema.createTable('half_done').addColumn('x', 'integer').execute();
              throw new Error('boom');
            },
          },
        ];
        await assert.rejects(runMigrations(s.db, s.dialect, failing), /boom/);
        assert.deepEqual(
          await versions(s),
          STORE_MIGRATIONS.map((m) => m.version),
        );
        await runMigrations(s.db, s.dialect, [
          {
            ...failing[0]!,
            up: async (db) => {
              await db.schema.createTable('half_done').addColumn('x', 'integer').execute();
            },
          },
        ]);
        assert.deepEqual(await versions(s), [...STORE_MIGRATIONS.map((m) => m.version), 900]);
      }));

    if (t.kind === 'postgres') {
      test('concurrent start-ups on one database apply each migration once', () =>
        t.withDb(async (open) => {
          // allSettled: every open must finish (and be closed) before the database is dropped.
          const results = await Promise.allSettled([open(), open(), open(), open()]);
          for (const r of results) {
            if (r.status === 'rejected') throw r.reason;
            assert.deepEqual(
              await versions(r.value),
              STORE_MIGRATIONS.map((m) => m.version),
            );
          }
        }));

      test('time columns are BIGINT and int8 comes back as a number, never a rounded one', () =>
        t.withDb(async (open) => {
          const s = await open();
          const cols = await sql<{ table_name: string; column_name: string; data_type: string }>`
          SELECT table_name, column_name, data_type FROM information_schema.columns
          WHERE table_schema = 'public' AND column_name LIKE '%\_ms'`.execute(s.db);
          assert.ok(cols.rows.length >= 12);
          for (const c of cols.rows) assert.equal(c.data_type, 'bigint', `${c.table_name}.${c.column_name}`);
          await claimed(s, 'big');
          const big = Number.MAX_SAFE_INTEGER - 1000;
          await s.upsertAgentConnected(agent('a1', 'big', big));
          assert.equal((await s.getAgent('a1'))?.last_connected_ms, big);
          await sql`UPDATE agents SET last_attest_ms = 9007199254740993 WHERE agent_id = 'a1'`.execute(s.db);
          await assert.rejects(s.getAgent('a1'), RangeError);
          assert.throws(() => parseInt8('-9007199254740993'), RangeError);
          assert.equal(parseInt8('-42'), -42);
        }));
    }

    if (t.kind === 'sqlite-file') {
      test('pragmas: WAL, synchronous=FULL, foreign keys, busy timeout', () =>
        t.withDb(async (open) => {
          const s = await open();
          const pragma = async (name: string) =>
            Object.values((await sql.raw(`PRAGMA ${name}`).execute(s.db)).rows[0] as object)[0];
          assert.equal(await pragma('journal_mode'), 'wal');
          assert.equal(await pragma('synchronous'), 2);
          assert.equal(await pragma('foreign_keys'), 1);
          assert.equal(await pragma('busy_timeout'), 5000);
        }));

      test('concurrent start-ups from several processes apply each migration once', async () => {
        const db_path = join(tmpDir(), 'multi.db');
        const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');
        const script = `import { openStore } from '@easyenclave/control-plane/store/index';
          const s = await openStore({ db_path: ${JSON.stringify(db_path)} }); await s.close();`;
        const run = () =>
          new Promise<{ code: number | null; stderr: string }>((done) => {
            const child = spawn(process.execPath, ['--input-type=module', '-e', script], {
              cwd: repoRoot,
              stdio: ['ignore', 'ignore', 'pipe'],
            });
            let stderr = '';
            child.stderr.on('data', (d: Buffer) => {
              stderr += d.toString();
            });
            child.on('close', (code) => done({ code, stderr }));
          });
        const results = await Promise.all([run(), run(), run(), run()]);
        for (const r of results) assert.equal(r.code, 0, r.stderr);
        const s = await openStore({ db_path });
        try {
          assert.deepEqual(
            await versions(s),
            STORE_MIGRATIONS.map((m) => m.version),
          );
        } finally {
          await s.close();
        }
      });
    }

    test('claimApp: the first repo owns the name; others are refused', () =>
      t.withDb(async (open) => {
        const s = await open();
        const first = await s.claimApp({ app_name: 'myapp', repo: 'org/a', network: NET, now_ms: 1000 });
        assert.deepEqual(first, {
          ok: true,
          app: { app_name: 'myapp', repo: 'org/a', network: NET, created_at_ms: 1000, attested_at_ms: null },
        });
        const again = await s.claimApp({ app_name: 'myapp', repo: 'org/a', network: NET, now_ms: 2000 });
        assert.deepEqual(again, first); // unchanged, created_at_ms stays
        assert.deepEqual(await s.claimApp({ app_name: 'myapp', repo: 'org/b', network: NET, now_ms: 3000 }), {
          ok: false,
          owner_repo: 'org/a',
        });
        await s.claimApp({ app_name: 'another', repo: 'org/b', network: NET, now_ms: 4000 });
        assert.deepEqual(
          (await s.listApps()).map((a) => [a.app_name, a.repo]),
          [
            ['another', 'org/b'],
            ['myapp', 'org/a'],
          ],
        );
        assert.equal((await s.getApp('myapp'))?.repo, 'org/a');
        assert.equal(await s.getApp('nope'), undefined);
      }));

    test('claimApp: concurrent claims from two repos, exactly one wins each name', () =>
      t.withDb(async (open) => {
        const s1 = await open();
        // Two Store instances (two pools / two SQLite connections) where the database allows it.
        const s2 = t.reopenable ? await open() : s1;
        const names = Array.from({ length: 25 }, (_, i) => `race-${i}`);
        const results = await Promise.all(
          names.flatMap((app_name, i) => [
            s1.claimApp({ app_name, repo: 'org/a', network: NET, now_ms: 10 + i }),
            s2.claimApp({ app_name, repo: 'org/b', network: NET, now_ms: 10 + i }),
          ]),
        );
        for (const [i, app_name] of names.entries()) {
          const [ra, rb] = [results[2 * i]!, results[2 * i + 1]!];
          assert.equal(Number(ra.ok) + Number(rb.ok), 1, `exactly one winner for ${app_name}`);
          const winner = ra.ok ? 'org/a' : 'org/b';
          const loser = ra.ok ? rb : ra;
          assert.deepEqual(loser, { ok: false, owner_repo: winner });
          assert.equal((await s1.getApp(app_name))?.repo, winner);
          assert.equal((await s2.getApp(app_name))?.repo, winner);
        }
      }));

    test('ensureRegistration keeps the first registration and its expiry', () =>
      t.withDb(async (open) => {
        const s = await open();
        await claimed(s, 'app');
        const reg = { app_name: 'app', release_tag: 'v1', repo: 'org/app', network: NET };
        const first = await s.ensureRegistration({ ...reg, now_ms: 1000, ttl_ms: 500 });
        assert.deepEqual(first, { ...reg, created_at_ms: 1000, expires_at_ms: 1500 });
        assert.deepEqual(await s.ensureRegistration({ ...reg, now_ms: 1400, ttl_ms: 99_999 }), first);
        const v2 = await s.ensureRegistration({ ...reg, release_tag: 'v2', now_ms: 2000, ttl_ms: 500 });
        assert.equal(v2.expires_at_ms, 2500);
        assert.deepEqual(await s.listRegistrations('app'), [first, v2]);
        assert.deepEqual(await s.listRegistrations('other'), []);
        await assert.rejects(s.ensureRegistration({ ...reg, app_name: 'unclaimed', now_ms: 1, ttl_ms: 1 })); // foreign key
        await assert.rejects(s.ensureRegistration({ ...reg, now_ms: 1, ttl_ms: 0 }), RangeError);
        await assert.rejects(s.ensureRegistration({ ...reg, now_ms: 1.5, ttl_ms: 10 }), RangeError);
      }));

    test('agent connect, health, attestation and disconnect round-trip', () =>
      t.withDb(async (open) => {
        const s = await open();
        await claimed(s, 'app');
        await s.upsertAgentConnected(agent('ag1', 'app', 100));
        assert.deepEqual(await s.getAgent('ag1'), {
          agent_id: 'ag1',
          app_name: 'app',
          repo: 'org/app',
          release_tag: 'v1',
          network: NET,
          first_seen_ms: 100,
          last_connected_ms: 100,
          last_disconnected_ms: null,
          connected: true,
          remote_addr: '10.0.0.1',
          last_health_ms: null,
          last_health_pass_ms: null,
          health_status: null,
          last_attest_ms: null,
          attest_ok: false,
          attest_evidence_type: null,
          attest_failure: null,
        });

        await s.recordHealth({ agent_id: 'ag1', app_name: 'app', status: 'pass', now_ms: 110, event: true });
        await s.recordHealth({ agent_id: 'ag1', app_name: 'app', status: 'pass', now_ms: 120, event: false }); // heartbeat
        await s.recordHealth({
          agent_id: 'ag1',
          app_name: 'app',
          status: 'fail',
          now_ms: 130,
          event: true,
          detail: 'backend 502',
        });
        await s.recordHealth({ agent_id: 'ag1', app_name: 'app', status: 'missed', now_ms: 140, event: true });
        let a = await s.getAgent('ag1');
        assert.equal(a?.health_status, 'fail');
        assert.equal(a?.last_health_ms, 130); // a miss is not a report
        assert.equal(a?.last_health_pass_ms, 120);

        await s.recordAttestation(attestation('ag1', 'app', 150, true));
        a = await s.getAgent('ag1');
        assert.equal(a?.attest_ok, true);
        assert.equal(a?.last_attest_ms, 150);
        await s.recordAttestation(attestation('ag1', 'app', 160, false, { failure: 'mrtd not allowlisted' }));
        await s.recordAttestation(attestation('ag1', 'app', 170, false, { missed: true, failure: 'deadline' }));
        a = await s.getAgent('ag1');
        assert.equal(a?.attest_ok, false);
        assert.equal(a?.attest_failure, 'deadline');
        assert.equal(a?.last_attest_ms, 150); // only successes move it

        const atts = await s.listAttestations({ agent_id: 'ag1', limit: 10 });
        assert.deepEqual(
          atts.map((x) => [x.at_ms, x.ok, x.missed, x.failure]),
          [
            [170, false, true, 'deadline'],
            [160, false, false, 'mrtd not allowlisted'],
            [150, true, false, null],
          ],
        );
        assert.equal(atts[2]?.evidence_hash, 'hash-150');
        assert.equal(atts[2]?.policy_version, 'p1');
        assert.equal(typeof atts[0]?.id, 'number');
        assert.equal((await s.listAttestations({ app_name: 'app', since_ms: 160, limit: 10 })).length, 2);
        assert.deepEqual(
          (await s.listAttestations({ limit: 1 })).map((x) => x.at_ms),
          [170],
        );
        assert.deepEqual(await s.listAttestations({ app_name: 'other', limit: 10 }), []);

        await s.markAgentDisconnected('ag1', 200, 'ws closed');
        await s.markAgentDisconnected('ag1', 210, 'again'); // already disconnected: no second event
        await s.markAgentDisconnected('unknown', 210); // no-op
        a = await s.getAgent('ag1');
        assert.equal(a?.connected, false);
        assert.equal(a?.last_disconnected_ms, 200);

        const events = await s.listHealthEvents({ agent_id: 'ag1', limit: 100 });
        assert.deepEqual(
          events.map((e) => [e.at_ms, e.kind, e.detail]),
          [
            [200, 'disconnected', 'ws closed'],
            [140, 'missed', null],
            [130, 'fail', 'backend 502'],
            [110, 'pass', null],
            [100, 'connected', '10.0.0.1'],
          ],
        );
        assert.deepEqual(
          (await s.listHealthEvents({ app_name: 'app', since_ms: 130, limit: 2 })).map((e) => e.kind),
          ['disconnected', 'missed'],
        );

        // Reconnect: a new session starts unattested and without health; history columns stay.
        await s.upsertAgentConnected({ ...agent('ag1', 'app', 300, null), release_tag: 'v2' });
        a = await s.getAgent('ag1');
        assert.deepEqual(
          [
            a?.connected,
            a?.first_seen_ms,
            a?.last_connected_ms,
            a?.last_disconnected_ms,
            a?.release_tag,
            a?.remote_addr,
          ],
          [true, 100, 300, 200, 'v2', null],
        );
        assert.deepEqual(
          [a?.attest_ok, a?.attest_failure, a?.health_status, a?.last_attest_ms, a?.last_health_pass_ms],
          [false, null, null, 150, 120],
        );
        assert.deepEqual(
          (await s.listAgents('app')).map((x) => x.agent_id),
          ['ag1'],
        );
        assert.deepEqual(await s.listAgents('other'), []);
        assert.equal(await s.getAgent('nope'), undefined);
      }));

    test('invalid calls are refused', () =>
      t.withDb(async (open) => {
        const s = await open();
        await claimed(s, 'app');
        await assert.rejects(
          s.recordHealth({ agent_id: 'ghost', app_name: 'app', status: 'pass', now_ms: 1, event: false }),
          /unknown agent/,
        );
        await assert.rejects(s.recordAttestation(attestation('ghost', 'app', 1, true)), /unknown agent/);
        await s.upsertAgentConnected(agent('ag', 'app', 1));
        await assert.rejects(
          s.recordAttestation({ ...attestation('ag', 'app', 2, true), missed: true }),
          /both ok and missed/,
        );
        await assert.rejects(s.upsertAgentConnected(agent('ag2', 'unclaimed', 1))); // foreign key
        await assert.rejects(
          s.recordHealth({ agent_id: 'ag', app_name: 'app', status: 'pass', now_ms: 2.5, event: true }),
          RangeError,
        );
        await assert.rejects(s.listHealthEvents({ limit: 0 }), RangeError);
        assert.deepEqual(await s.listAttestations({ limit: 10 }), []);
      }));

    test('markAllAgentsDisconnected marks every connected agent, once', () =>
      t.withDb(async (open) => {
        const s = await open();
        for (const app of ['a', 'b']) await claimed(s, app);
        await s.upsertAgentConnected(agent('x1', 'a', 10));
        await s.upsertAgentConnected(agent('x2', 'a', 11));
        await s.upsertAgentConnected(agent('y1', 'b', 12));
        await s.markAgentDisconnected('x2', 20);
        assert.equal(await s.markAllAgentsDisconnected(500), 2);
        const agents = await s.listAgents();
        assert.deepEqual(
          agents.map((x) => [x.agent_id, x.connected, x.last_disconnected_ms]),
          [
            ['x1', false, 500],
            ['x2', false, 20],
            ['y1', false, 500],
          ],
        );
        const disc = await s.listHealthEvents({ since_ms: 500, limit: 10 });
        assert.deepEqual(disc.map((e) => [e.agent_id, e.app_name, e.kind]).sort(), [
          ['x1', 'a', 'disconnected'],
          ['y1', 'b', 'disconnected'],
        ]);
        assert.equal(await s.markAllAgentsDisconnected(600), 0);
      }));

    if (t.reopenable) {
      test('state survives close and reopen', () =>
        t.withDb(async (open) => {
          const s1 = await open();
          await claimed(s1, 'app', 5);
          await s1.ensureRegistration({
            app_name: 'app',
            release_tag: 'v1',
            repo: 'org/app',
            network: NET,
            now_ms: 6,
            ttl_ms: 1000,
          });
          await s1.upsertAgentConnected(agent('ag', 'app', 7));
          await s1.recordHealth({ agent_id: 'ag', app_name: 'app', status: 'pass', now_ms: 8, event: true });
          await s1.recordAttestation(attestation('ag', 'app', 9, true));
          const snapshot = async (s: Store) => ({
            apps: await s.listApps(),
            regs: await s.listRegistrations('app'),
            agents: await s.listAgents(),
            atts: await s.listAttestations({ limit: 100 }),
            events: await s.listHealthEvents({ limit: 100 }),
          });
          const before = await snapshot(s1);
          await s1.close();
          const s2 = await open();
          assert.deepEqual(await snapshot(s2), before);
          assert.equal(before.events.length, 2);
          // ids keep increasing after a restart
          await s2.recordAttestation(attestation('ag', 'app', 10, true));
          const [newest, older] = await s2.listAttestations({ limit: 2 });
          assert.ok(newest!.id > older!.id);
        }));
    }
  });
}
