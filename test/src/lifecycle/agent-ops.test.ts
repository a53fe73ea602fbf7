// The agent's operations port: off unless EE_METRICS_PORT is set, loopback by default; /ready answers 503 with a
// reason until the tunnel is up and attested, then 200; /metrics is Prometheus text with the agent's figures.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { loadAgentConfig } from '@easyenclave/agent';
import {
  agentEnv,
  closeAll,
  freePort,
  REPO_ROOT,
  startAgent,
  startBackend,
  startCp,
  waitFor,
  wsUrl,
} from '../helpers/network.js';

describe('agent operations port: /metrics and /ready', () => {
  after(closeAll);

  it('is off by default and binds loopback when a port is given', () => {
    const base = agentEnv({ control_ws: 'ws://127.0.0.1:1/v1/tunnel', backend_url: 'http://127.0.0.1:1' });
    assert.equal(loadAgentConfig(base).metrics_port, null);
    const on = loadAgentConfig({ ...base, EE_METRICS_PORT: '9464' });
    assert.equal(on.metrics_port, 9464);
    assert.equal(on.metrics_bind, '127.0.0.1');
    assert.throws(() => loadAgentConfig({ ...base, EE_METRICS_PORT: '70000' }), /EE_METRICS_PORT/);
  });

  it('answers /ready 503 before the tunnel is attested and 200 after; /metrics has the agent figures', async () => {
    const backend = await startBackend();
    // An agent whose control plane is not there yet: not ready, and says why.
    const cpPort = await freePort();
    const agent = startAgent({
      control_ws: `ws://127.0.0.1:${cpPort}/v1/tunnel`,
      backend_url: backend.url,
      extra: { EE_METRICS_PORT: '0' },
    });
    const ops = await agent.ops!;
    assert.match(ops.url, /^http:\/\/127\.0\.0\.1:\d+$/);
    const early = await fetch(`${ops.url}/ready`);
    assert.equal(early.status, 503);
    assert.deepEqual(await early.json(), { ready: false, reason: 'tunnel not connected' });

    const cp = await startCp({ EE_CONTROL_PORT: String(cpPort) });
    await waitFor(async () => (await fetch(`${ops.url}/ready`)).status === 200, 20_000, 'agent ready');
    assert.deepEqual(await (await fetch(`${ops.url}/ready`)).json(), { ready: true });
    assert.equal(wsUrl(cp), `ws://127.0.0.1:${cpPort}/v1/tunnel`);

    const metrics = await fetch(`${ops.url}/metrics`);
    assert.equal(metrics.status, 200);
    assert.match(metrics.headers.get('content-type') ?? '', /^text\/plain/);
    const text = await metrics.text();
    assert.match(text, /^ee_agent_tunnel_up 1$/m);
    assert.match(text, /^ee_agent_attested 1$/m);
    assert.match(text, /^ee_agent_tunnel_connects_total [1-9]\d*$/m);
    assert.match(text, /^ee_agent_attestations_total\{result="ok"\} [1-9]\d*$/m);
    assert.match(text, /^ee_build_info\{component="agent",version="[^"]+",node_version="[^"]+"\} 1$/m);
    assert.equal((await fetch(`${ops.url}/nope`)).status, 404);
    // The Grafana dashboard's agent panels query metrics this port exports.
    const dashboard = readFileSync(join(REPO_ROOT, 'deploy/grafana/easyenclave.json'), 'utf8');
    const wanted = new Set([...dashboard.matchAll(/\bee_agent_[a-z_]+/g)].map((m) => m[0]));
    assert.ok(wanted.size > 0);
    for (const name of wanted) assert.match(text, new RegExp(`^# TYPE ${name} `, 'm'), name);

    await agent.stop(0);
    await assert.rejects(fetch(`${ops.url}/ready`), 'the port is closed once the agent stops');
  });
});
