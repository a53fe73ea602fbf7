// The sealing module in a real browser (headless Chromium, no bundler: an import map points at the built
// files): the page seals a message to a key held here, opens one sealed here to its own key, and signs a
// record; this side opens, and verifies, with the same module under Node. Skipped where Chromium is absent.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, readFileSync, realpathSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { join, normalize } from 'node:path';
import { after, test } from 'node:test';
import { generateRecipientKey, open, seal, toHex, fromHex } from '@easyenclave/protocol/seal/index';
import { verifyRecord } from '@easyenclave/protocol/signed-record';
import { closeAll, onCleanup, REPO_ROOT, waitFor } from '../helpers/network.js';
import { tmpDir } from '../helpers/tmp.js';

const CHROMIUM = process.env.EE_CHROMIUM ?? '/usr/bin/chromium';
const MODULES = join(REPO_ROOT, 'node_modules');
after(() => closeAll());

const PAGE = `<!doctype html><meta charset="utf-8">
<script type="importmap">{"imports":{
  "@hpke/core":"/m/@hpke/core/esm/mod.js",
  "@hpke/common":"/m/@hpke/common/esm/mod.js",
  "canonicalize":"/m/canonicalize/lib/canonicalize.js"}}</script>
<script type="module">
const report = (r) => fetch('/result', { method: 'POST', body: JSON.stringify(r) });
try {
  const S = await import('/protocol/seal/index.js');
  const R = await import('/protocol/signed-record.js');
  const te = new TextEncoder();
  const nodeKey = await (await fetch('/node-key')).text();
  const sealed = await S.seal(nodeKey, te.encode('sealed in the browser'), te.encode('aad'));
  const mine = await S.generateRecipientKey();
  const forMe = new Uint8Array(await (await fetch('/seal-for/' + S.toHex(mine.publicKey))).arrayBuffer());
  const opened = new TextDecoder().decode(await S.open(mine, forMe));
  const k = await R.generateSigningKey();
  const record = { kind: 'test', n: 7 };
  const signature = await R.signRecord(k.privateKey, record, 'ee-test-v1');
  await report({ sealed: S.toHex(sealed), opened, record, signature, public_key: k.publicKeyHex, ua: navigator.userAgent });
} catch (e) {
  await report({ error: String(e && e.stack || e) });
}
</script>`;

test(
  'headless Chromium seals, opens and signs with the same module; Node opens and verifies',
  { skip: !existsSync(CHROMIUM) && `no ${CHROMIUM}` },
  async () => {
    const nodeKey = await generateRecipientKey();
    let result: Record<string, any> | null = null;
    const server = http.createServer((req, res) => {
      const url = req.url ?? '/';
      const send = (status: number, type: string, body: string | Uint8Array) => {
        res.writeHead(status, { 'content-type': type, 'cache-control': 'no-store' });
        res.end(body);
      };
      if (url === '/') return send(200, 'text/html', PAGE);
      if (url === '/node-key') return send(200, 'text/plain', toHex(nodeKey.publicKey));
      if (url.startsWith('/seal-for/')) {
        void seal(fromHex(url.slice('/seal-for/'.length)), new TextEncoder().encode('sealed in Node')).then((b) =>
          send(200, 'application/octet-stream', b),
        );
        return;
      }
      if (url === '/result') {
        let body = '';
        req.on('data', (c) => (body += c));
        req.on('end', () => {
          result = JSON.parse(body);
          send(204, 'text/plain', '');
        });
        return;
      }
      // Static files: the built protocol package and the modules it imports, nothing else.
      let root: string | null = null;
      let rest = '';
      if (url.startsWith('/protocol/')) [root, rest] = [join(REPO_ROOT, 'packages/protocol/dist'), url.slice(10)];
      else if (url.startsWith('/m/')) [root, rest] = [MODULES, url.slice(3)];
      const file = root === null ? null : normalize(join(root, rest));
      if (file === null || !file.startsWith(root!) || !existsSync(file)) return send(404, 'text/plain', 'not found');
      send(200, 'text/javascript', readFileSync(realpathSync(file)));
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    onCleanup(() => new Promise<void>((r) => server.close(() => r())));
    const port = (server.address() as AddressInfo).port;
    // 127.0.0.1 is a secure context, so WebCrypto is there without TLS.
    const child = spawn(
      CHROMIUM,
      [
        '--headless=new',
        '--no-sandbox',
        '--disable-gpu',
        '--no-first-run',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
        `--user-data-dir=${tmpDir()}`,
        `http://127.0.0.1:${port}/`,
      ],
      // Its own process group: Chromium's helper processes go with it, so none writes to the profile afterwards.
      { stdio: 'ignore', detached: true },
    );
    onCleanup(async () => {
      if (child.exitCode !== null || child.signalCode !== null) return;
      const exited = new Promise((resolve) => child.once('exit', resolve));
      try {
        process.kill(-child.pid!, 'SIGKILL');
      } catch {
        child.kill('SIGKILL');
      }
      await exited;
    });
    await waitFor(() => result, 60_000, 'the page to report');
    const r = result!;
    assert.equal(r.error, undefined, r.error);
    assert.match(r.ua, /Chrome/);
    const opened = await open(nodeKey, fromHex(r.sealed), new TextEncoder().encode('aad'));
    assert.equal(new TextDecoder().decode(opened), 'sealed in the browser');
    assert.equal(r.opened, 'sealed in Node');
    assert.equal(await verifyRecord(r.public_key, r.record, r.signature, 'ee-test-v1'), true);
  },
);
