// The SDK's sealing entry (seal-client.js) must load in a browser: its whole static import graph, the
// third-party packages it reaches included (@hpke/core, @hpke/common, canonicalize), uses no Node built-in
// and no Node-only global; the crypto is WebCrypto's.
import assert from 'node:assert/strict';
import { existsSync, readFileSync, realpathSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { test } from 'node:test';
import { REPO_ROOT } from '../helpers/network.js';

const STATIC_IMPORT = /^\s*(?:import|export)\s[^;]*?\bfrom\s+['"]([^'"]+)['"]/gm;
const BARE_IMPORT = /^\s*import\s+['"]([^'"]+)['"]/gm;
const NODE_BUILTINS = ['fs', 'crypto', 'http', 'https', 'net', 'path', 'stream', 'buffer', 'util', 'os', 'zlib'];

function packageDir(name: string, from: string): string {
  for (let dir = dirname(from); ; dir = dirname(dir)) {
    const candidate = join(dir, 'node_modules', name);
    if (existsSync(join(candidate, 'package.json'))) return candidate;
    if (dir === dirname(dir)) throw new Error(`package ${name} not found from ${from}`);
  }
}

/** The ESM file a bare specifier loads in a browser bundler: exports["."|"./sub"].import/default, or module. */
function resolveBare(spec: string, from: string): string {
  const parts = spec.split('/');
  const name = spec.startsWith('@') ? parts.slice(0, 2).join('/') : parts[0]!;
  const sub = spec.slice(name.length);
  const dir = packageDir(name, from);
  const pkg = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8'));
  const key = sub === '' ? '.' : `.${sub}`;
  let target: unknown = pkg.exports?.[key];
  if (target === undefined && sub !== '') {
    const star = pkg.exports?.['./*'];
    if (star) target = JSON.parse(JSON.stringify(star).replaceAll('*', sub.slice(1)));
  }
  if (typeof target === 'object' && target !== null) {
    const t = target as Record<string, unknown>;
    target = t.import ?? t.browser ?? t.default;
  }
  const file = typeof target === 'string' ? target : (pkg.module ?? pkg.main);
  return resolve(dir, file);
}

test('seal-client.js and everything it imports statically are browser-safe', () => {
  const entry = resolve(REPO_ROOT, 'packages/sdk/dist/seal-client.js');
  const seen = new Set<string>();
  const stack = [entry];
  while (stack.length > 0) {
    const file = stack.pop()!;
    if (seen.has(file)) continue;
    seen.add(file);
    const code = readFileSync(file, 'utf8')
      .replace(/\/\*[\s\S]*?\*\//g, '')
      .replace(/^\s*\/\/.*$/gm, '');
    assert.doesNotMatch(code, /\bBuffer\.|\bprocess\.(?!env\.NODE_ENV)|\brequire\(/, `${file} uses a Node-only global`);
    for (const m of [...code.matchAll(STATIC_IMPORT), ...code.matchAll(BARE_IMPORT)]) {
      const spec = m[1]!;
      assert.ok(!spec.startsWith('node:') && !NODE_BUILTINS.includes(spec), `${file} imports ${spec}`);
      stack.push(realpathSync(spec.startsWith('.') ? resolve(dirname(file), spec) : resolveBare(spec, file)));
    }
  }
  const names = [...seen].map((f) => f.slice(REPO_ROOT.length + 1));
  for (const must of ['packages/protocol/dist/seal/message.js', 'packages/protocol/dist/seal/http-client.js']) {
    assert.ok(names.includes(must), `${must} is in the graph`);
  }
  assert.ok(
    names.some((n) => n.includes('node_modules/@hpke/core/esm/')),
    '@hpke/core (ESM) is in the graph and was checked',
  );
  assert.ok(!names.some((n) => n.endsWith('sdk/dist/verify.js')), 'verify.js is not reached');
  assert.ok(!names.includes('packages/protocol/dist/index.js'), 'the Node-side protocol index is not reached');
});
