// The Node version the repository promises (package.json `engines`, README's prerequisites) is one every
// installed package supports: `npm ci` on the oldest promised Node must not warn EBADENGINE (cookie@2
// needed Node 22 while the README said 20.11).
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import semver from 'semver';
import { REPO_ROOT } from '../helpers/network.js';

interface LockEntry {
  engines?: { node?: string } | string[];
}

const readJson = (file: string): unknown => JSON.parse(readFileSync(join(REPO_ROOT, file), 'utf8'));

test('every package in package-lock.json runs on the oldest Node the repository promises', () => {
  const root = readJson('package.json') as { engines: { node: string } };
  const oldest = semver.minVersion(root.engines.node);
  assert.ok(oldest !== null, `engines.node ${root.engines.node} has a minimum`);
  const lock = readJson('package-lock.json') as { packages: Record<string, LockEntry> };
  const refused = Object.entries(lock.packages)
    .filter(([, p]) => !Array.isArray(p.engines) && p.engines?.node !== undefined)
    .filter(([, p]) => !semver.satisfies(oldest, (p.engines as { node: string }).node))
    .map(([name, p]) => `${name} needs node ${(p.engines as { node: string }).node}`);
  assert.deepEqual(refused, [], `Node ${oldest.version} is promised`);
  const readme = readFileSync(join(REPO_ROOT, 'README.md'), 'utf8');
  assert.match(
    readme,
    new RegExp(`Node\\.js 20\\*\\* \\(≥ ${oldest.major}\\.${oldest.minor}\\)`),
    'README says the same',
  );
});
