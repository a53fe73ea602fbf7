// An agent id names one agent: a reconnect of that agent over a still-open socket (a network blip) takes over
// without a recorded outage, and nobody else can take the id over (docs/security.md, "Tunnel and relay").
// Through real sockets on loopback against an in-process control plane on a manual clock; settlement's own
// decision function judges the recorded events.

import assert from 'node:assert/strict';
import { afterEach, describe, test } from 'node:test';
import { ManualClock } from '@easyenclave/control-plane/clock';
import { decide } from '@easyenclave/control-plane/market/settlement';
import type { ControlPlane } from '@easyenclave/control-plane/server';
import { closeAll, startCp, waitFor, waitRoutable, wsUrl } from '../helpers/network.js';
import { newAgentId, RawAgent } from './raw-agent.js';
import { proxyGet } from './util.js';

afterEach(() => closeAll());

const HEALTH_TIMEOUT_MS = 120_000;
/** How long after the reconnect the settlement window runs on (the voided period showed 2,700 s). */
const AFTER_RECONNECT_MS = 2_700_000;

/** The settlement decision over [from_ms, to_ms) for one agent, from the control plane's own records. */
async function settle(cp: ControlPlane, agent_id: string, from_ms: number, to_ms: number) {
  const events = await cp.store.listHealthEvents({ agent_id, limit: 100 });
  return decide({
    from_ms,
    to_ms,
    connected_at_start: [],
    health: events
      .filter((e) => e.at_ms >= from_ms && e.at_ms < to_ms)
      .sort((a, b) => a.at_ms - b.at_ms || a.id - b.id)
      .map((e) => ({ agent_id: e.agent_id, at_ms: e.at_ms, kind: e.kind })),
    attestations: [],
    usage_reports: [],
    abuse_reports: [],
    health_timeout_ms: HEALTH_TIMEOUT_MS,
  });
}

describe('a reconnect over a still-open socket', () => {
  test('ends with one live link, agents.connected = 1, no disconnect recorded and a period that posts', async () => {
    const clock = new ManualClock(Date.UTC(2031, 0, 1));
    const t0 = clock.now();
    const cp = await startCp({}, { clock });
    const agent_id = newAgentId();
    const first = await RawAgent.connect(wsUrl(cp), { agent_id });
    first.serve();
    await first.registerAndAttest();
    await waitRoutable(cp);
    clock.advance(60_000);

    // The blip: the same agent process (same id, same keys) dials again while its old socket is still open.
    const second = await RawAgent.connect(wsUrl(cp), { agent_id }, { keys: first.keys });
    second.serve();
    await second.registerAndAttest();
    const old = await first.waitClose(10_000);
    assert.equal(old.code, 4005, 'the old link is retired as replaced');
    assert.ok(second.open);
    await waitFor(async () => (await proxyGet(cp, '/')).text === 'raw-agent', 5000, 'the new link to serve');
    assert.equal(cp.hub.byAgentId.get(agent_id)?.ws.readyState, 1);
    assert.equal(cp.hub.links.size, 1);

    // Let the write queue settle, then read the records the settlement reads.
    await waitFor(async () => (await cp.store.getAgent(agent_id))?.attest_ok === true, 5000, 'attest_ok');
    const row = await cp.store.getAgent(agent_id);
    assert.equal(row?.connected, true, 'agents.connected must stay 1');
    const kinds = (await cp.store.listHealthEvents({ agent_id, limit: 20 })).map((e) => e.kind).reverse();
    assert.ok(!kinds.includes('disconnected'), `a disconnect was recorded: ${kinds.join(',')}`);
    assert.deepEqual(
      kinds.filter((k) => k === 'connected'),
      ['connected', 'connected'],
    );
    const verdict = await settle(cp, agent_id, t0, clock.now() + AFTER_RECONNECT_MS);
    assert.deepEqual(verdict, { outcome: 'post', reasons: [] });
    for (let i = 0; i < 3; i++) assert.equal((await proxyGet(cp, '/x')).text, 'raw-agent');
    assert.ok(second.streams_opened >= 3);
  });

  test('a real outage is still recorded: the agent closes, then comes back later', async () => {
    const clock = new ManualClock(Date.UTC(2031, 0, 1));
    const t0 = clock.now();
    const cp = await startCp({}, { clock });
    const agent_id = newAgentId();
    const first = await RawAgent.connect(wsUrl(cp), { agent_id });
    await first.registerAndAttest();
    first.terminate();
    await waitFor(async () => (await cp.store.getAgent(agent_id))?.connected === false, 5000, 'the disconnect');
    clock.advance(AFTER_RECONNECT_MS);
    const second = await RawAgent.connect(wsUrl(cp), { agent_id }, { keys: first.keys });
    await second.registerAndAttest();
    await waitFor(async () => (await cp.store.getAgent(agent_id))?.connected === true, 5000, 'the reconnect');
    const verdict = await settle(cp, agent_id, t0, clock.now() + 1000);
    assert.equal(verdict.outcome, 'void');
    assert.deepEqual(verdict.reasons, [`disconnected:${AFTER_RECONNECT_MS / 1000}s`]);
  });
});
