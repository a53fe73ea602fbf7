// Packages are entered through what their package.json `exports` names, never through a wildcard into dist/,
// and the `ee` command uses only the public entry points of the packages it builds on (issue 12: it
// deep-imported ten control-plane internals through a "./*" export).
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { test } from 'node:test';
import { REPO_ROOT } from '../helpers/network.js';

const PACKAGES = readdirSync(join(REPO_ROOT, 'packages'));

/** What the CLI may import: each package's main entry, the protocol's sealing and receipt subpaths, and the control
 *  plane's server, handoff and ledger check. */
const CLI_ALLOWED = new Set([
  '@easyenclave/protocol',
  '@easyenclave/attestation',
  '@easyenclave/sdk',
  '@easyenclave/agent',
  '@easyenclave/launcher',
  '@easyenclave/control-plane',
  '@easyenclave/control-plane/server',
  '@easyenclave/control-plane/handoff',
  '@easyenclave/control-plane/ledger-verify',
  // The protocol's public subpaths kept out of its main entry so a process that never seals loads no HPKE.
  '@easyenclave/protocol/seal/index',
  '@easyenclave/protocol/receipt',
]);

function files(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    return statSync(path).isDirectory() ? files(path) : [path];
  });
}

test('no package exports a wildcard; every export exists once built', () => {
  for (const pkg of PACKAGES) {
    const dir = join(REPO_ROOT, 'packages', pkg);
    const manifest = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as {
      exports: Record<string, { types: string; default: string }>;
    };
    for (const [subpath, target] of Object.entries(manifest.exports)) {
      assert.ok(!subpath.includes('*'), `${pkg} exports the wildcard ${subpath}`);
      for (const file of [target.types, target.default])
        assert.ok(existsSync(join(dir, file)), `${pkg} exports ${subpath} as ${file}, which does not exist`);
    }
  }
});

test('the CLI imports only the public entry points of the other packages', () => {
  const src = join(REPO_ROOT, 'packages/cli/src');
  const found: string[] = [];
  for (const file of files(src).filter((f) => f.endsWith('.ts'))) {
    const code = readFileSync(file, 'utf8');
    for (const m of code.matchAll(/(?:from\s+|import\()\s*'(@easyenclave\/[^']+)'/g)) {
      if (!CLI_ALLOWED.has(m[1]!)) found.push(`${relative(src, file)} imports ${m[1]}`);
    }
  }
  assert.deepEqual(found, []);
});
