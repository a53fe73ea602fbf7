// Logs and metrics an on-call engineer can use: every money movement is exactly one structured log line (with
// the id of the request that caused it, as sent in its Request-Id header) and the matching metric change; a
// replayed request moves nothing and logs nothing; /metrics carries latency histograms, ledger figures and
// build_info; secrets never reach the log.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import { controlPlaneLogger } from '@easyenclave/control-plane/log';
import type { ControlPlane } from '@easyenclave/control-plane/server';
import {
  ADMIN_TOKEN,
  closeAll,
  REPO_ROOT,
  startAgent,
  startBackend,
  startCp,
  waitFor,
  waitRoutable,
  wsUrl,
} from '../helpers/network.js';
import { call, createAccount } from '../ledger-http/client.js';
import { funded, registerNode } from '../market/util.js';

class LogLines extends Writable {
  readonly lines: any[] = [];
  override _write(chunk: Buffer, _enc: string, done: () => void): void {
    for (const line of chunk.toString('utf8').split('\n')) if (line.trim()) this.lines.push(JSON.parse(line));
    done();
  }
}

/** The value of one series in Prometheus text (0 when absent). */
async function metric(base: string, series: string): Promise<number> {
  const res = await fetch(`${base}/metrics`, { headers: { authorization: `Bearer ${ADMIN_TOKEN}` } });
  assert.equal(res.status, 200);
  const text = await res.text();
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? 0 : Number(line.slice(series.length + 1));
}

describe('observability: money log lines, request ids, metrics', () => {
  let cp: ControlPlane;
  let base: string;
  const logs = new LogLines();
  const money = (transfer_id: string) => logs.lines.filter((l) => l.event === 'money' && l.transfer_id === transfer_id);

  before(async () => {
    cp = await startCp({}, { logger: controlPlaneLogger('info', logs) });
    base = cp.api_url;
  });
  after(closeAll);

  it('a mint is exactly one log line with its request id, and the matching metric change', async () => {
    const alice = await createAccount(base, 'user', 'alice');
    const mints = 'ee_ledger_movements_total{kind="mint"}';
    const minted = 'ee_ledger_moved_micro_usd_total{kind="mint"}';
    const [count0, amount0] = [await metric(base, mints), await metric(base, minted)];

    const r = await call(base, 'POST', '/v1/credits/purchase', {
      body: { account: alice.id, amount: '$12.50', payment_ref: 'obs_0001' },
    });
    assert.equal(r.status, 201, JSON.stringify(r.body));
    const request_id = r.headers.get('request-id');
    assert.ok(request_id);
    const id: string = r.body.transfer_id;
    const lines = await waitFor(() => {
      const l = logs.lines.filter((x) => x.event === 'money' && x.kind === 'mint' && x.request_id === request_id);
      return l.length > 0 ? l : undefined;
    });
    assert.equal(lines.length, 1, JSON.stringify(lines));
    const line = lines[0];
    assert.equal(line.msg, 'money: mint');
    assert.equal(line.credit_account, alice.id);
    assert.equal(line.debit_account, 'platform:issuance');
    assert.equal(line.amount_micro_usd, 12_500_000);
    assert.equal(line.transfer_id, id);
    assert.equal(line.reference, 'obs_0001');
    assert.equal(money(line.transfer_id).length, 1);
    assert.equal(await metric(base, mints), count0 + 1);
    assert.equal(await metric(base, minted), amount0 + 12_500_000);

    // The same payment again mints nothing: no second line, no metric change.
    const again = await call(base, 'POST', '/v1/credits/purchase', {
      body: { account: alice.id, amount: '$12.50', payment_ref: 'obs_0001' },
    });
    assert.equal(again.status, 201);
    assert.equal(money(line.transfer_id).length, 1);
    assert.equal(again.body.replayed, true);
    assert.equal(await metric(base, mints), count0 + 1);
  });

  it('a transfer is one line naming both accounts; no API key or token appears in any line', async () => {
    const bob = await createAccount(base, 'user', 'bob');
    const carol = await createAccount(base, 'user', 'carol');
    await call(base, 'POST', '/v1/credits/purchase', {
      body: { account: bob.id, amount: '$5', payment_ref: 'obs_0002' },
    });
    const transfers = 'ee_ledger_movements_total{kind="transfer"}';
    const before = await metric(base, transfers);
    const r = await call(base, 'POST', '/v1/credits/transfer', {
      token: bob.key,
      key: 'obs-transfer-1',
      body: { to: carol.id, amount_micro_usd: 1_000_000 },
    });
    assert.equal(r.status, 200, JSON.stringify(r.body));
    const request_id = r.headers.get('request-id');
    const lines = await waitFor(() => {
      const l = logs.lines.filter((x) => x.event === 'money' && x.request_id === request_id);
      return l.length > 0 ? l : undefined;
    });
    assert.equal(lines.length, 1, JSON.stringify(lines));
    assert.equal(lines[0].kind, 'transfer');
    assert.equal(lines[0].debit_account, bob.id);
    assert.equal(lines[0].credit_account, carol.id);
    assert.equal(lines[0].amount_micro_usd, 1_000_000);
    assert.equal(await metric(base, transfers), before + 1);
    const all = JSON.stringify(logs.lines);
    for (const secret of [bob.key, carol.key, ADMIN_TOKEN]) assert.ok(!all.includes(secret), 'a secret was logged');
  });

  it('money moved through a service (a fraud ruling) names its request, like money a route moves itself', async () => {
    const provider = await funded(base, 'provider', 'obs-provider', '$100');
    const { node_id } = await registerNode(base, provider, { price_per_vcpu_hour_micro_usd: 50_000 });
    const staked = await call(base, 'POST', `/v1/nodes/${node_id}/stake`, {
      token: provider.key,
      body: { amount_micro_usd: 7_000_000 },
    });
    assert.equal(staked.status, 200, JSON.stringify(staked.body));
    const stake_request = staked.headers.get('request-id');
    const ruling = await call(base, 'POST', `/v1/nodes/${node_id}/fraud`, { body: { reason: 'observability test' } });
    assert.equal(ruling.status, 200, JSON.stringify(ruling.body));
    const fraud_request = ruling.headers.get('request-id');
    assert.ok(stake_request && fraud_request && stake_request !== fraud_request);
    const of = (request_id: string, kind: string) =>
      logs.lines.filter((x) => x.event === 'money' && x.kind === kind && x.request_id === request_id);
    const slashes = await waitFor(() =>
      of(fraud_request, 'slash').length > 0 ? of(fraud_request, 'slash') : undefined,
    );
    assert.equal(slashes.length, 1, JSON.stringify(slashes));
    assert.equal(slashes[0].amount_micro_usd, 7_000_000);
    assert.equal(of(stake_request, 'stake').length, 1);
    const banned = logs.lines.filter((x) => x.event === 'state' && x.change === 'node_banned');
    assert.deepEqual(
      banned.map((x) => x.request_id),
      [fraud_request],
    );
  });

  it('/metrics has API latency per route, ledger commit latency and build_info', async () => {
    const res = await fetch(`${base}/metrics`, { headers: { authorization: `Bearer ${ADMIN_TOKEN}` } });
    const text = await res.text();
    assert.match(
      text,
      /^ee_api_request_duration_seconds_count\{method="POST",route="\/v1\/credits\/purchase",status="2xx"\} \d+/m,
    );
    assert.match(text, /^ee_ledger_commit_duration_seconds_count \d+/m);
    assert.match(text, /^ee_ledger_operations_total \d+/m);
    assert.match(text, /^ee_build_info\{component="control-plane",version="[^"]+",node_version="[^"]+"\} 1$/m);
    assert.match(text, /^ee_stake_held_micro_usd 0$/m);
    // No raw path ever becomes a label: an unknown URL is counted under "unmatched".
    await fetch(`${base}/no/such/path/${'x'.repeat(40)}`);
    const after = await (
      await fetch(`${base}/metrics`, { headers: { authorization: `Bearer ${ADMIN_TOKEN}` } })
    ).text();
    assert.ok(!after.includes('x'.repeat(40)));
    assert.match(after, /route="unmatched"/);
  });

  it('proxied requests are timed per entry point (path, host) and app; attestations are timed', async () => {
    const backend = await startBackend();
    startAgent({ control_ws: wsUrl(cp), backend_url: backend.url, app_name: 'obs-app' });
    await waitRoutable(cp, 'obs-app', 20_000);
    assert.equal((await fetch(`${base}/v1/proxy/obs-app/small`)).status, 200);
    const { request } = await import('node:http');
    const viaHost = await new Promise<number>((resolve, reject) => {
      const u = new URL(cp.proxy_url);
      request({ host: u.hostname, port: u.port, path: '/small', headers: { host: 'obs-app.app.test' } }, (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode ?? 0));
      })
        .on('error', reject)
        .end();
    });
    assert.equal(viaHost, 200);
    const count = (entry: string) =>
      metric(base, `ee_proxy_request_duration_seconds_count{entry="${entry}",app="obs-app",status="2xx"}`);
    await waitFor(async () => (await count('path')) === 1 && (await count('host')) === 1, 5000, 'proxy histograms');
    assert.ok((await metric(base, 'ee_attestation_duration_seconds_count{result="ok"}')) >= 1);
  });

  it('the Grafana dashboard queries only metrics the control plane exports (agent ones: agent-ops.test)', async () => {
    const dashboard = readFileSync(join(REPO_ROOT, 'deploy/grafana/easyenclave.json'), 'utf8');
    const names = new Set(
      [...dashboard.matchAll(/\bee_[a-z_]+/g)].map((m) => m[0].replace(/_(bucket|count|sum)$/, '')),
    );
    const text = await (await fetch(`${base}/metrics`, { headers: { authorization: `Bearer ${ADMIN_TOKEN}` } })).text();
    const exported = new Set([...text.matchAll(/^# TYPE (\S+)/gm)].map((m) => m[1]!));
    const missing = [...names].filter((n) => !n.startsWith('ee_agent_') && !exported.has(n));
    assert.deepEqual(missing, []);
    assert.ok(names.size > 10);
  });
});
