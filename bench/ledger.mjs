#!/usr/bin/env node
// Ledger benchmark (issue 4): transfers per second with durability on (SQLite WAL + synchronous=FULL;
// PostgreSQL's default fsync), ours against the same SQL run raw, in the same run, on the same machine.
// Standalone: `node bench/ledger.mjs [--seconds S] [--json] [--no-pg] [--no-http]` (after `npx tsc -b`).
//
//   raw sqlite, 1/txn    better-sqlite3 loop: per transfer BEGIN; 2 account UPDATEs; INSERT journal row; COMMIT
//   raw sqlite, batched  the same statements, 1000 transfers per transaction
//   ours sqlite          LedgerStore in-process (the engine, idempotent ids, overdraft checks, audit chain,
//                        group commit), 4096 concurrent submitters
//   pgbench              the same SQL as a pgbench script, 8 clients, one transfer per transaction
//   ours postgres        LedgerStore in-process on PostgreSQL (group commit, row locks), 4096 submitters
//   http sqilte          `ee control-plane` subprocess, autocannon POST /v1/credits/transfer, 64 connections
// After each of ours: verifyLedger must report the ledger consistent.
// Goals: ours sqlite ≥ 100k/s; ours postgres ≥ 80% of pgbench; http ≥ 10k/s.

import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import BetterSqlite3 from 'better-sqlite3';
import pg from 'pg';
import autocannon from 'autocannon';
import { openStore } from '@easyenclave/control-plane/store/index';
import { LedgerStore } from '@easyenclave/control-plane/ledger-store/ledger-store';
import { verifyLedger } from '@easyenclave/control-plane/ledger-store/verify';

const REPO_ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const argv = process.argv.slice(2);
const opt = (name, dflt) => {
  const i = argv.indexOf(name);
  return i >= 0 ? Number(argv[i + 1]) : dflt;
};
const SECONDS = opt('--seconds', 3);
const JSON_OUT = argv.includes('--json');
const PG = !argv.includes('--no-pg');
const HTTP = !argv.includes('--no-http');
const ACCOUNTS = 1000;
const WINDOW = 4096;
const PG_ADMIN = process.env.EE_TEST_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
const log = (...a) => {
  if (!JSON_OUT) console.error(...a);
};
const dir = mkdtempSync(join(tmpdir(), 'ee-bench-ledger-'));
process.on('exit', () => rmSync(dir, { recursive: true, force: true }));

// ---------- raw SQLite ----------

const RAW_SCHEMA = `
CREATE TABLE accounts (id TEXT PRIMARY KEY, debits INTEGER NOT NULL, credits INTEGER NOT NULL);
CREATE TABLE journal (seq INTEGER PRIMARY KEY AUTOINCREMENT, transfer_id TEXT UNIQUE, debit TEXT NOT NULL, credit TEXT NOT NULL,
  amount INTEGER NOT NULL, timestamp_ms INTEGER NOT NULL);
CREATE INDEX journal_debit ON journal(debit, seq);
CREATE INDEX journal_credit ON journal(credit, seq);`;

function rawSqlite(batch) {
  const db = new BetterSqlite3(join(dir, `raw-${batch}.db`));
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = FULL');
  db.exec(RAW_SCHEMA);
  const ins = db.prepare('INSERT INTO accounts VALUES (?, 0, 1000000000)');
  db.transaction(() => {
    for (let i = 0; i < ACCOUNTS; i++) ins.run(`user:${i}`);
  })();
  const debit = db.prepare('UPDATE accounts SET debits = debits + ? WHERE id = ? AND credits - debits >= ?');
  const credit = db.prepare('UPDATE accounts SET credits = credits + ? WHERE id = ?');
  const journal = db.prepare(
    'INSERT INTO journal (transfer_id, debit, credit, amount, timestamp_ms) VALUES (?, ?, ?, ?, ?)',
  );
  const one = (i) => {
    const from = `user:${i % ACCOUNTS}`;
    if (debit.run(1, from, 1).changes !== 1) throw new Error('overdraft');
    credit.run(1, `user:${(i * 7 + 1) % ACCOUNTS}`);
    journal.run(`r${i}`, from, `user:${(i * 7 + 1) % ACCOUNTS}`, 1, Date.now());
  };
  const many = db.transaction((start, n) => {
    for (let i = start; i < start + n; i++) one(i);
  });
  let done = 0;
  const t0 = performance.now();
  const end = t0 + SECONDS * 1000;
  while (performance.now() < end) {
    many(done, batch);
    done += batch;
  }
  const rate = done / ((performance.now() - t0) / 1000);
  db.close();
  return rate;
}

// ---------- ours (in-process) ----------

async function ours(storeOpts) {
  const store = await openStore(storeOpts);
  const ledger = await LedgerStore.open(store.db, store.dialect, () => Date.now());
  const accounts = Array.from({ length: ACCOUNTS }, (_, i) => ({
    id: `user:${i}`,
    flags: { debits_must_not_exceed_credits: true },
  }));
  await ledger.createAccounts(accounts);
  await Promise.all(
    accounts.map((a, i) =>
      ledger.createTransfers([
        { id: `mint-${i}`, debit_account: 'platform:issuance', credit_account: a.id, amount: 1_000_000_000n },
      ]),
    ),
  );
  let next = 0;
  let failed = 0;
  const run = async (deadline) => {
    while (performance.now() < deadline) {
      const i = next++;
      const [r] = await ledger.createTransfers([
        {
          id: `t-${i}`,
          debit_account: `user:${i % ACCOUNTS}`,
          credit_account: `user:${(i * 7 + 1) % ACCOUNTS}`,
          amount: 1n,
        },
      ]);
      if (r !== 'ok') failed++;
    }
  };
  // Warm-up, then the measured window.
  await Promise.all(Array.from({ length: WINDOW }, () => run(performance.now() + 500)));
  const start = next;
  const t0 = performance.now();
  await Promise.all(Array.from({ length: WINDOW }, () => run(t0 + SECONDS * 1000)));
  const rate = (next - start) / ((performance.now() - t0) / 1000);
  const stats = { ...ledger.writer.stats };
  await ledger.close();
  const report = await verifyLedger(store.db, store.dialect);
  await store.close();
  if (failed > 0) throw new Error(`${failed} transfers failed`);
  return {
    rate,
    ops_per_batch: stats.ops / stats.batches,
    retries: stats.retries,
    verify_ok: report.ok,
    verify_errors: report.errors.slice(0, 5),
  };
}

// ---------- PostgreSQL ----------

async function withTempDb(fn) {
  const name = `ee_bench_${process.pid}_${Date.now()}`;
  const admin = new pg.Client({ connectionString: PG_ADMIN });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${name}`);
  const u = new URL(PG_ADMIN);
  u.pathname = `/${name}`;
  try {
    return await fn(u.toString(), name);
  } finally {
    await admin.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
    await admin.end();
  }
}

async function pgbench() {
  return withTempDb(async (url) => {
    const c = new pg.Client({ connectionString: url });
    await c.connect();
    await c.query(
      RAW_SCHEMA.replace('INTEGER PRIMARY KEY AUTOINCREMENT', 'BIGSERIAL PRIMARY KEY').replaceAll('INTEGER', 'BIGINT'),
    );
    await c.query(`INSERT INTO accounts SELECT 'user:' || g, 0, 1000000000 FROM generate_series(0, ${ACCOUNTS - 1}) g`);
    await c.end();
    const script = join(dir, 'transfer.sql');
    writeFileSync(
      script,
      [
        `\\set a random(0, ${ACCOUNTS - 1})`,
        `\\set b random(0, ${ACCOUNTS - 1})`,
        'BEGIN;',
        `UPDATE accounts SET debits = debits + 1 WHERE id = 'user:' || :a AND credits - debits >= 1;`,
        `UPDATE accounts SET credits = credits + 1 WHERE id = 'user:' || :b;`,
        `INSERT INTO journal (transfer_id, debit, credit, amount, timestamp_ms) VALUES (md5(random()::text), 'user:' || :a, 'user:' || :b, 1, 0);`,
        'COMMIT;',
      ].join('\n'),
    );
    const u = new URL(url);
    const out = execFileSync(
      'pgbench',
      [
        '-n',
        '-c',
        '8',
        '-j',
        '2',
        '-T',
        String(SECONDS),
        '-f',
        script,
        '-h',
        u.hostname,
        '-p',
        u.port || '5432',
        '-U',
        u.username,
        u.pathname.slice(1),
      ],
      { encoding: 'utf8' },
    );
    const m = /tps = ([\d.]+)/.exec(out);
    if (!m) throw new Error(`pgbench output not understood:\n${out}`);
    return Number(m[1]);
  });
}

// ---------- HTTP ----------

async function http() {
  const port = 20000 + (process.pid % 20000);
  const token = 'bench-admin-token-0123456789abcdef';
  const env = {
    PATH: process.env.PATH,
    HOME: process.env.HOME,
    EE_DB_PATH: join(dir, 'http.db'),
    EE_CONTROL_PORT: String(port),
    EE_PROXY_PORT: '0',
    EE_CONTROL_BIND: '127.0.0.1',
    EE_ADMIN_TOKEN: token,
    EE_LOG_LEVEL: 'error',
  };
  const child = spawn(process.execPath, [join(REPO_ROOT, 'packages/cli/bin/ee.js'), 'control-plane'], {
    env,
    stdio: 'ignore',
  });
  const base = `http://127.0.0.1:${port}`;
  try {
    for (let i = 0; ; i++) {
      try {
        if ((await fetch(`${base}/health`)).ok) break;
      } catch {
        /* not yet */
      }
      if (i > 200) throw new Error('control plane did not start');
      await new Promise((r) => setTimeout(r, 50));
    }
    const post = async (path, body, auth = token) => {
      const r = await fetch(`${base}${path}`, {
        method: 'POST',
        headers: { authorization: `Bearer ${auth}`, 'content-type': 'application/json' },
        body: JSON.stringify(body),
      });
      if (!r.ok) throw new Error(`${path}: ${r.status} ${await r.text()}`);
      return r.json();
    };
    const alice = await post('/v1/accounts', { kind: 'user', name: 'alice' });
    const bob = await post('/v1/accounts', { kind: 'user', name: 'bob' });
    await post('/v1/credits/purchase', { account: alice.account_id, amount: '$1000000', payment_ref: 'bench' });
    const result = await autocannon({
      url: `${base}/v1/credits/transfer`,
      method: 'POST',
      connections: 64,
      duration: SECONDS,
      headers: { authorization: `Bearer ${alice.api_key}`, 'content-type': 'application/json' },
      body: JSON.stringify({ to: bob.account_id, amount_micro_usd: 1 }),
    });
    const non2xx = result.non2xx + result.errors;
    return { rate: result.requests.average, p99_ms: result.latency.p99, non2xx };
  } finally {
    child.kill('SIGTERM');
    await new Promise((r) => child.on('exit', r));
  }
}

// ---------- run ----------

const results = {};
log('raw sqlite, one transfer per transaction …');
results.raw_sqlite_1 = rawSqlite(1);
log('raw sqlite, 1000 per transaction …');
results.raw_sqlite_batched = rawSqlite(1000);
log('ours, sqlite …');
results.ours_sqlite = await ours({ db_path: join(dir, 'ours.db') });
if (PG) {
  log('pgbench …');
  results.pgbench = await pgbench();
  log('ours, postgres …');
  results.ours_postgres = await withTempDb((url) => ours({ database_url: url }));
}
if (HTTP) {
  log('http, sqlite …');
  results.http_sqlite = await http();
}
if (JSON_OUT) console.log(JSON.stringify(results));
else console.log(results);
