// The SDK's core must stay loadable in a browser: its static import graph (dynamic import() excluded: that is
// how verify.js, which needs Node, is loaded on demand) reaches no Node built-in and no Node-only global.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, resolve } from 'node:path';
import { test } from 'node:test';
import { REPO_ROOT } from '../helpers/network.js';

const require = createRequire(import.meta.url);
const STATIC_IMPORT = /^\s*(?:import|export)\s[^;]*?\bfrom\s+'([^']+)'/gm;

function resolveSpec(spec: string, from: string): string | null {
  if (spec.startsWith('.')) return resolve(dirname(from), spec);
  if (spec.startsWith('@easyenclave/')) return require.resolve(spec, { paths: [dirname(from)] });
  return null; // third-party: checked by name below
}

test('the core (index.js) statically imports no node: module, Buffer or process; verify.js is loaded lazily', () => {
  const entry = resolve(REPO_ROOT, 'packages/sdk/dist/index.js');
  const seen = new Set<string>();
  const external = new Set<string>();
  const stack = [entry];
  while (stack.length > 0) {
    const file = stack.pop()!;
    if (seen.has(file)) continue;
    seen.add(file);
    const code = readFileSync(file, 'utf8')
      .replace(/\/\/.*$/gm, '')
      .replace(/\/\*[\s\S]*?\*\//g, '');
    assert.doesNotMatch(code, /\bBuffer\.|\bprocess\.|\brequire\(/, `${file} uses a Node-only global`);
    for (const m of code.matchAll(STATIC_IMPORT)) {
      const spec = m[1]!;
      assert.ok(
        !spec.startsWith('node:') && !['fs', 'crypto', 'http', 'net', 'path'].includes(spec),
        `${file} imports ${spec}`,
      );
      const next = resolveSpec(spec, file);
      if (next === null) external.add(spec.split('/')[0]!);
      else stack.push(next);
    }
  }
  // lossless-json: the exact JSON parser for money (pure ECMAScript, no dependencies); @hpke (core) and
  // canonicalize: the protocol's sealing and signed records, which jobs use (browser-safe: seal-browser-safe
  // and seal-chromium test them in a real browser).
  assert.deepEqual([...external].sort(), ['@hpke', 'canonicalize', 'lossless-json', 'zod']);
  const names = [...seen].map((f) => f.slice(REPO_ROOT.length + 1)).sort();
  assert.ok(names.includes('packages/sdk/dist/client.js'));
  assert.ok(!names.some((n) => n.endsWith('sdk/dist/verify.js')), 'verify.js is not in the static graph');
  assert.ok(
    !names.includes('packages/attestation/dist/index.js'),
    'the attestation package is not in the static graph',
  );
  assert.match(readFileSync(resolve(REPO_ROOT, 'packages/sdk/dist/client.js'), 'utf8'), /import\('\.\/verify\.js'\)/);
});
