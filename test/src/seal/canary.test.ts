// The canary: a plaintext sent through a confidential connection (with a reservation, so receipts are signed,
// sent over the tunnel and stored) reaches the backend and the client's opened response, and appears nowhere
// in what the control plane holds: its SQLite file and WAL, its logs at debug level with the full access log,
// its metrics, the bytes it exchanged with the client, and every answer its API gives anyone else.
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import { Writable } from 'node:stream';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import pino from 'pino';
import { EasyEnclave } from '@easyenclave/sdk';
import {
  ADMIN_TOKEN,
  closeAll,
  onCleanup,
  startAgent,
  startBackend,
  startCp,
  waitFor,
  wsUrl,
} from '../helpers/network.js';
import { tmpDir } from '../helpers/tmp.js';
import { call } from '../ledger-http/client.js';
import { funded, registerNode, stake } from '../market/util.js';
import { postPrices } from '../market/reservation-util.js';

const CANARY = 'CANARY-7f3a9c-plaintext-never-at-the-control-plane';
const CANARY_HEADER = 'Bearer CANARY-HEADER-51d0e2';

/** A TCP proxy to 127.0.0.1:target keeping every byte both ways (what the control plane sent the client). */
async function capture(target: number): Promise<{ port: number; bytes: () => Buffer }> {
  const chunks: Buffer[] = [];
  const sockets = new Set<net.Socket>();
  const server = net.createServer((down) => {
    const up = net.connect(target, '127.0.0.1');
    for (const s of [down, up]) {
      sockets.add(s);
      s.on('error', () => (down.destroy(), up.destroy()));
    }
    down.on('data', (d: Buffer) => chunks.push(Buffer.from(d)));
    up.on('data', (d: Buffer) => chunks.push(Buffer.from(d)));
    down.pipe(up);
    up.pipe(down);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  onCleanup(() => new Promise<void>((r) => (sockets.forEach((s) => s.destroy()), server.close(() => r()))));
  return { port: (server.address() as AddressInfo).port, bytes: () => Buffer.concat(chunks) };
}

describe('confidential traffic: the canary', () => {
  after(closeAll);

  it('reaches the backend and the client, and nothing the control plane holds, logs, counts or answers', async () => {
    const logs: Buffer[] = [];
    const sink = new Writable({
      write(chunk: Buffer, _e, cb) {
        logs.push(Buffer.from(chunk));
        cb();
      },
    });
    const dir = tmpDir();
    const db = join(dir, 'cp.db');
    const cp = await startCp(
      { EE_DB_PATH: db, EE_LOG_LEVEL: 'debug', EE_ACCESS_LOG: 'full', EE_HEALTH_TIMEOUT_SEC: '1800' },
      { logger: pino({ level: 'debug' }, sink) },
    );
    const base = cp.api_url;
    const user = await funded(base, 'user', 'U', '$10');
    const provider = await funded(base, 'provider', 'P', '$100');
    const n = await registerNode(base, provider, { price_per_vcpu_hour: '$0.05' });
    await stake(base, provider, n.node_id, 10_000_000);
    await postPrices(base, provider, n.node_id);
    const backend = await startBackend();
    const seen: string[] = [];
    backend.server.on('request', (req) => {
      let b = '';
      req.on('data', (c: Buffer) => (b += c.toString('utf8')));
      req.on('end', () => seen.push(`${req.headers.authorization ?? ''} ${b}`));
    });
    const agent = startAgent({
      control_ws: wsUrl(cp),
      backend_url: backend.url,
      app_name: 'chat',
      extra: { EE_NODE_TOKEN: n.node_token, EE_UNIT_PRICES: 'tokens_in=150,tokens_out=600,requests=1000,bytes=1' },
    });
    await waitFor(
      async () => (await cp.reservations.db.selectFrom('market_agent_keys').selectAll().execute()).length === 1,
      10_000,
      'the agent attested',
    );
    await cp.market.refreshRanking();

    // The client talks to the control plane through a capturing proxy.
    const wire = await capture(cp.api_port);
    const ee = new EasyEnclave({ url: `http://127.0.0.1:${wire.port}`, apiKey: user.key, network: 'sandbox-1' });
    const r = await ee.createReservation({ app: 'chat', quota: '$1', lifetime_s: 600 });
    const app = await ee.connect('chat', {
      confidential: true,
      reservation: r,
      verify: { allow_sandbox: true },
    });
    for (let i = 0; i < 3; i++) {
      const res = await app.post(
        '/echo',
        { secret: CANARY, i },
        {
          headers: { authorization: CANARY_HEADER },
        },
      );
      const j = (await res.json()) as { body: string; headers: Record<string, string> };
      assert.ok(j.body.includes(CANARY), 'the client reads the canary in its opened answer');
      assert.equal(j.headers.authorization, CANARY_HEADER);
    }
    assert.ok(
      seen.some((s) => s.includes(CANARY) && s.includes(CANARY_HEADER)),
      'the backend got the canary',
    );
    await waitFor(
      async () => (await ee.reservation(r.reservation_id)).receipts_total === 3 && agent.receipts!.pending === 0,
      10_000,
      'the three receipts claimed',
    );

    // Everything the control plane answers anyone else.
    const answers: string[] = [];
    const admin = (path: string) => call(base, 'GET', path, {});
    for (const path of [
      '/v1/apps',
      '/v1/apps/chat',
      '/v1/resolve/chat',
      '/health',
      '/ready',
      `/v1/nodes/${n.node_id}`,
      '/v1/nodes',
      `/v1/accounts/${user.id}/transfers?limit=500`,
      `/v1/accounts/${provider.id}/transfers?limit=500`,
      `/v1/balances/${user.id}`,
    ])
      answers.push(JSON.stringify((await admin(path)).body));
    answers.push(
      JSON.stringify((await call(base, 'GET', `/v1/reservations/${r.reservation_id}`, { token: user.key })).body),
    );
    answers.push(
      await (await fetch(`${base}/metrics`, { headers: { authorization: `Bearer ${ADMIN_TOKEN}` } })).text(),
    );
    answers.push(await (await fetch(`${base}/openapi.json`)).text());
    assert.ok(
      answers.some((a) => a.includes('ee_receipts_total')),
      'the metrics were read',
    );
    await ee.cancelReservation(r.reservation_id);

    await cp.shutdown(0);
    const held: [string, Buffer][] = [
      ['the SQLite file', readFileSync(db)],
      ['the WAL', existsSync(`${db}-wal`) ? readFileSync(`${db}-wal`) : Buffer.alloc(0)],
      ['the debug logs', Buffer.concat(logs)],
      ['the bytes exchanged with the client', wire.bytes()],
      ['the API answers', Buffer.from(answers.join('\n'))],
    ];
    assert.ok(held[2]![1].length > 1000, 'debug logs were written');
    assert.ok(held[3]![1].length > 1000, 'the client exchange was captured');
    for (const [what, bytes] of held)
      for (const secret of [CANARY, CANARY_HEADER, 'CANARY'])
        assert.ok(!bytes.includes(secret), `${secret} found in ${what}`);
  });
});
