#!/usr/bin/env node
// The one test command (README, CI): builds everything with tsc, makes sure PostgreSQL is up, then runs every
// compiled test file with node's test runner. Extra arguments filter test files by substring.
import { execSync, spawnSync } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';

const root = new URL('..', import.meta.url).pathname;
const run = (cmd) => execSync(cmd, { cwd: root, stdio: 'inherit' });

// Format and lint first: both read the sources only and fail in seconds.
run('npx prettier --check --log-level warn .');
run('npx eslint .');
run('npx tsc -b');

// PostgreSQL: start the local cluster if it is installed and down (the persistence tests need it).
try {
  execSync('pg_isready -h 127.0.0.1 -p 5432 -q', { stdio: 'ignore' });
} catch {
  try {
    execSync('pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start', {
      stdio: 'inherit',
      shell: '/bin/bash',
    });
  } catch {
    console.warn('test: could not start PostgreSQL; its tests will skip (or fail under CI / EE_REQUIRE_PG=1)');
  }
}

function find(dir) {
  const out = [];
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) out.push(...find(p));
    else if (name.endsWith('.test.js')) out.push(p);
  }
  return out;
}
const filters = process.argv.slice(2);
const files = find(join(root, 'test/dist'))
  .filter((f) => filters.length === 0 || filters.some((x) => relative(root, f).includes(x)))
  .sort();
if (files.length === 0) {
  console.error('test: no test files matched');
  process.exit(1);
}
const r = spawnSync(process.execPath, ['--test', '--test-concurrency=2', ...files], {
  cwd: root,
  stdio: 'inherit',
  env: { ...process.env, EE_REQUIRE_PG: process.env.EE_REQUIRE_PG ?? (process.env.CI ? '1' : '') },
});
process.exit(r.status ?? 1);
