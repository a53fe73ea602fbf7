// `ee ledger verify` as a subprocess on a SQLite file the control plane's way (WAL, still open by the writer):
// exit 0 and the summary on a good ledger, --json, exit 1 naming the discrepancy after tampering, exit 1 for
// a database without a ledger, exit 2 for bad flags, and never the database password in any output.
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { sql } from 'kysely';
import { openSqlite } from '@easyenclave/control-plane/store/sqlite';
import { REPO_ROOT } from '../helpers/network.js';
import { tmpDir } from '../helpers/tmp.js';
import { BACKENDS, dropAppendOnly, populate } from './harness.js';

// The installed executable (its shim loads the compiled CLI).
const EE_BIN = join(REPO_ROOT, 'packages/cli/bin/ee.js');

function ee(args: string[], env: Record<string, string> = {}): { code: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [EE_BIN, 'ledger', 'verify', ...args], {
    cwd: REPO_ROOT,
    encoding: 'utf8',
    timeout: 30_000,
    env: { ...process.env, EE_DB_PATH: '', EE_DATABASE_URL: '', ...env },
  });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

const sqliteFile = BACKENDS.find((b) => b.name === 'SQLite file')!;

describe('ee ledger verify', () => {
  test('a good ledger: exit 0 with the summary; --json is the report; EE_DB_PATH is the default', () =>
    sqliteFile.session((withLedger) =>
      withLedger(async (l) => {
        await populate(l);
        const r = ee(['--db', l.location]);
        assert.equal(r.code, 0, r.stdout + r.stderr);
        assert.match(r.stdout, /^Result\s+OK$/m);
        assert.match(r.stdout, /^Accounts\s+5$/m); // three platform accounts and two users
        assert.match(r.stdout, /^Journal rows\s+3$/m);
        assert.match(r.stdout, /^Open locks\s+1$/m);
        assert.match(r.stdout, /^Audit head\s+seq \d+ [0-9a-f]{64}$/m);
        assert.match(r.stdout, /^Posted\s+debits \$0\.000130, credits \$0\.000130$/m);
        assert.match(r.stdout, /^Pending\s+debits \$0\.000020, credits \$0\.000020$/m);
        assert.equal(r.stderr, '');

        const j = ee(['--json'], { EE_DB_PATH: l.location });
        assert.equal(j.code, 0, j.stderr);
        const report = JSON.parse(j.stdout);
        assert.equal(report.ok, true);
        assert.deepEqual(report.errors, []);
        assert.equal(report.journal_rows, 3);
        assert.equal(report.pending_open, 1);
        assert.deepEqual(report.totals, {
          debits_posted: '130',
          credits_posted: '130',
          debits_pending: '20',
          credits_pending: '20',
        });
        assert.equal(report.head.seq, report.audit_rows);
      }),
    ));

  test('a tampered ledger: exit 1 and the discrepancy named, in both formats', () =>
    sqliteFile.session((withLedger) =>
      withLedger(async (l) => {
        await populate(l);
        await dropAppendOnly(l.db, l.dialect, 'ledger_journal');
        await sql`UPDATE ledger_journal SET amount = 31 WHERE transfer_id = 'pay'`.execute(l.db);
        const r = ee(['--db', l.location]);
        assert.equal(r.code, 1, r.stdout + r.stderr);
        assert.match(r.stdout, /^Result\s+FAILED \(\d+ discrepancies\)$/m);
        assert.match(r.stdout, /^ {2}- user:t1\.credits_posted is 30 but the journal folds to 31$/m);
        const j = ee(['--db', l.location, '--json']);
        assert.equal(j.code, 1);
        const report = JSON.parse(j.stdout);
        assert.equal(report.ok, false);
        assert.ok(
          report.errors.includes('user:t1.credits_posted is 30 but the journal folds to 31'),
          report.errors.join('\n'),
        );
      }),
    ));

  test('a reader that stops early (`| head -1`): no EPIPE crash, the exit code of the check', () =>
    sqliteFile.session((withLedger) =>
      withLedger(async (l) => {
        await populate(l);
        for (const args of [
          ['--db', l.location],
          ['--db', l.location, '--json'],
        ]) {
          const child = spawn(process.execPath, [EE_BIN, 'ledger', 'verify', ...args], {
            cwd: REPO_ROOT,
            env: { ...process.env, EE_DB_PATH: '', EE_DATABASE_URL: '' },
            stdio: ['ignore', 'pipe', 'pipe'],
          });
          // The read end closes before the command can write a byte: every write of the child meets EPIPE.
          child.stdout.destroy();
          let stderr = '';
          child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
          const code = await new Promise<number | null>((resolve) => child.on('close', (c) => resolve(c)));
          assert.equal(stderr, '', 'nothing on stderr: the closed pipe is not an error of the command');
          assert.equal(code, 0, stderr);
        }
      }),
    ));

  test('no ledger there: exit 1 saying so (and a missing file is not created)', async () => {
    const empty = join(tmpDir(), 'empty.db');
    await openSqlite(empty).destroy();
    const r = ee(['--db', empty]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /no ledger in this database \(missing tables ledger_accounts, /);
    const missing = ee(['--db', join(tmpDir(), 'missing.db')]);
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /cannot open sqlite .*missing\.db/);
  });

  test('usage errors exit 2', () => {
    assert.equal(ee(['--bogus']).code, 2);
    assert.equal(ee(['--db', 'a.db', '--database-url', 'postgres://x@127.0.0.1/y']).code, 2);
    assert.equal(ee(['--db', ':memory:']).code, 2);
    const bad = ee([], { EE_DATABASE_URL: 'mysql://root:hunter2@db/x' });
    assert.equal(bad.code, 2);
    assert.doesNotMatch(bad.stdout + bad.stderr, /hunter2/);
  });

  test('the database password is never printed', () => {
    // A database that does not exist (or a server that is down): either way the error names the URL.
    const r = ee(['--database-url', 'postgres://postgres:hunter2@127.0.0.1:5432/ee_no_such_database']);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /postgres:\/\/postgres:\*\*\*@127\.0\.0\.1:5432\/ee_no_such_database/);
    assert.doesNotMatch(r.stdout + r.stderr, /hunter2/);
  });
});
