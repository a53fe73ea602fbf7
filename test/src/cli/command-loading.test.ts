// Which command modules `ee` loads, seen by an ESM resolve hook in a real `ee` run: a long-running role
// (control-plane, agent, node) loads only its own, so a server's heap never carries the SDK or the other
// commands (packages/cli/src/commands.ts says why); any other invocation loads every command, so help and
// suggestions stay complete.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { describe, test } from 'node:test';
import { ee, EE_SHIM } from './util.js';

/** The module URLs a real `ee ...args` run resolves (an ESM resolve hook appends each one to a file). */
async function resolvedModules(args: string[]): Promise<string[]> {
  const dir = mkdtempSync(join(tmpdir(), 'ee-loading-'));
  try {
    const log = join(dir, 'resolved.txt');
    const hooks = join(dir, 'hooks.mjs');
    // Synchronous, before the resolution is returned: the hooks run on their own thread, and `ee` exits with
    // process.exit, which can drop what that thread wrote to stderr.
    writeFileSync(
      hooks,
      `import { appendFileSync } from 'node:fs';\n` +
        `export async function resolve(s, c, next) { const r = await next(s, c); ` +
        `appendFileSync(${JSON.stringify(log)}, r.url + '\\n'); return r; }\n`,
    );
    const register = join(dir, 'register.mjs');
    writeFileSync(
      register,
      `import { register } from 'node:module';\nregister(${JSON.stringify(pathToFileURL(hooks).href)});\n`,
    );
    await new Promise<void>((resolve, reject) => {
      const child = spawn(process.execPath, ['--import', pathToFileURL(register).href, EE_SHIM, ...args], {
        env: { PATH: process.env.PATH, HOME: process.env.HOME },
        stdio: ['ignore', 'ignore', 'pipe'],
      });
      let err = '';
      child.stderr.on('data', (d: Buffer) => (err += d.toString()));
      child.on('error', reject);
      child.on('close', (code) => (code === 0 ? resolve() : reject(new Error(`ee exited ${code}: ${err}`))));
    });
    return readFileSync(log, 'utf8').split('\n').filter(Boolean);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

describe('ee loads the command modules an invocation needs', () => {
  test('`ee control-plane`, `ee agent` and `ee node` never load the SDK or another command module', async () => {
    for (const role of ['control-plane', 'agent', 'node']) {
      const urls = await resolvedModules([role, '--help']);
      const commands = urls.filter((u) => u.includes('/packages/cli/dist/commands/'));
      assert.deepEqual(
        commands.map((u) => u.slice(u.lastIndexOf('/') + 1)),
        [`${role}.js`],
        `${role}: command modules`,
      );
      assert.ok(!urls.some((u) => u.includes('/packages/sdk/')), `${role} loads no SDK module`);
    }
    // The same probe sees every command module when help for the whole program is asked for.
    const all = await resolvedModules(['--help']);
    for (const name of ['control-plane', 'agent', 'node', 'credits', 'settle', 'receipts'])
      assert.ok(
        all.some((u) => u.endsWith(`/commands/${name}.js`)),
        `--help loads ${name}.js`,
      );
  });

  test('a misspelt role loads every command, so the suggestion names the role', async () => {
    const r = await ee(['contrl-plane']);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /unknown command 'contrl-plane'/);
    assert.match(r.stderr, /Did you mean control-plane\?/);
  });
});
