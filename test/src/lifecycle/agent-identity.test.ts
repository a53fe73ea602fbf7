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
import { funded, registerNode } from '../market/util.js';

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

/** The holder's link, row and records, to compare before and after an attack. */
async function snapshot(cp: ControlPlane, agent_id: string) {
  const row = await cp.store.getAgent(agent_id);
  return {
    row: row && { ...row, last_health_ms: null, last_health_pass_ms: null },
    attestations: (await cp.store.listAttestations({ agent_id, limit: 100 })).map((r) => [r.ok, r.reason]),
    events: (await cp.store.listHealthEvents({ agent_id, limit: 100 })).map((e) => [e.kind, e.at_ms]),
  };
}

describe('agent id takeover', () => {
  /** A routable holder of app demo (acme/demo) on sandbox-1, where anyone can make sandbox evidence. */
  async function holderSetup() {
    const cp = await startCp({ EE_QUEUE_TIMEOUT_MS: '200' });
    const agent_id = newAgentId();
    const holder = await RawAgent.connect(wsUrl(cp), { agent_id });
    holder.serve();
    await holder.registerAndAttest();
    await waitRoutable(cp);
    await waitFor(async () => (await cp.store.getAgent(agent_id))?.health_status === 'pass', 5000, 'health');
    return { cp, agent_id, holder, before: await snapshot(cp, agent_id) };
  }

  async function assertHolderUntouched(
    cp: ControlPlane,
    agent_id: string,
    holder: RawAgent,
    before: Awaited<ReturnType<typeof snapshot>>,
  ) {
    assert.ok(holder.open, `the holder was closed: ${JSON.stringify(holder.close_info)}`);
    assert.equal(holder.close_info, null);
    assert.equal(cp.hub.byAgentId.get(agent_id)?.attested, true);
    assert.deepEqual(await snapshot(cp, agent_id), before, "the holder's row or records changed");
    const served = holder.streams_opened;
    for (let i = 0; i < 5; i++) assert.equal((await proxyGet(cp, `/after-${i}`)).text, 'raw-agent');
    assert.equal(holder.streams_opened, served + 5, 'every request reached the holder');
  }

  test('a stranger with the same id, app and repo and valid evidence of its own keyset is refused', async () => {
    const { cp, agent_id, holder, before } = await holderSetup();
    const thief = await RawAgent.connect(wsUrl(cp), { agent_id });
    thief.serve();
    thief.register();
    await thief.next('registered');
    thief.health('pass');
    await thief.answer(await thief.next('attest_request')); // correct sandbox evidence and proof for its own keys
    const err = await thief.next('error', 10_000);
    assert.equal(err.code, 'agent_id_in_use');
    assert.equal((await thief.waitClose(10_000)).code, 4001);
    assert.equal(thief.streams_opened, 0);
    await assertHolderUntouched(cp, agent_id, holder, before);
  });

  test('a stranger that fails attestation under the id records nothing under it', async () => {
    const { cp, agent_id, holder, before } = await holderSetup();
    for (let i = 0; i < 3; i++) {
      const thief = await RawAgent.connect(wsUrl(cp), { agent_id });
      thief.register();
      await thief.next('registered');
      await thief.answer(await thief.next('attest_request'), { pop_signature: null });
      const result = await thief.next('attest_result', 10_000);
      assert.equal(result.ok, false);
      assert.equal((await thief.waitClose(10_000)).code, 4002);
    }
    await assertHolderUntouched(cp, agent_id, holder, before);
  });

  test('the id of another app or repo is refused at register, live or not', async () => {
    const { cp, agent_id, holder, before } = await holderSetup();
    for (const reg of [
      { app_name: 'other', repo: 'evil/other' },
      { app_name: 'demo2', repo: 'acme/demo' },
    ]) {
      const thief = await RawAgent.connect(wsUrl(cp), { agent_id, ...reg });
      thief.register();
      const err = await thief.next('error');
      assert.equal(err.code, 'agent_id_taken', JSON.stringify(err));
      assert.equal((await thief.waitClose()).code, 4001);
    }
    await assertHolderUntouched(cp, agent_id, holder, before);
    assert.equal(await cp.store.getApp('other'), undefined, 'a refused claimant claims no app name');

    // After the holder is gone the binding to app and repo stays.
    holder.terminate();
    await waitFor(async () => (await cp.store.getAgent(agent_id))?.connected === false, 5000, 'the disconnect');
    const late = await RawAgent.connect(wsUrl(cp), { agent_id, app_name: 'other', repo: 'evil/other' });
    late.register();
    assert.equal((await late.next('error')).code, 'agent_id_taken');
    assert.equal((await cp.store.getAgent(agent_id))?.app_name, 'demo');
  });

  test('the agent itself comes back after a reboot (new keys) once its old link is gone', async () => {
    const { cp, agent_id, holder } = await holderSetup();
    holder.terminate();
    await waitFor(() => cp.hub.byAgentId.get(agent_id) === undefined, 5000, 'the old link to go');
    const rebooted = await RawAgent.connect(wsUrl(cp), { agent_id });
    rebooted.serve();
    await rebooted.registerAndAttest();
    await waitRoutable(cp);
    assert.equal((await proxyGet(cp, '/')).text, 'raw-agent');
    assert.equal(rebooted.streams_opened, 1);
  });

  test('an id bound to a node by its token needs that token, with the holder live or gone', async () => {
    const cp = await startCp({ EE_QUEUE_TIMEOUT_MS: '200' });
    const provider = await funded(cp.api_url, 'provider', 'P', '$10');
    const mine = await registerNode(cp.api_url, provider, { price_per_vcpu_hour_micro_usd: 1000 });
    const theirs = await registerNode(cp.api_url, provider, { price_per_vcpu_hour_micro_usd: 1000 });
    const agent_id = newAgentId();
    const holder = await RawAgent.connect(wsUrl(cp), { agent_id });
    holder.serve();
    holder.register({ node_token: mine.node_token });
    await holder.next('registered');
    await holder.answer(await holder.next('attest_request'));
    assert.equal((await holder.next('attest_result')).ok, true);
    holder.health('pass');
    await waitFor(() => cp.hub.byAgentId.get(agent_id)?.node_id === mine.node_id, 5000, 'the node binding');
    await waitFor(async () => (await cp.store.getAgent(agent_id))?.health_status === 'pass', 5000, 'health');
    const before = await snapshot(cp, agent_id);

    const attempt = async (node_token?: string) => {
      const thief = await RawAgent.connect(wsUrl(cp), { agent_id });
      thief.register(node_token === undefined ? {} : { node_token });
      const err = await thief.next('error');
      assert.equal((await thief.waitClose()).code, 4001);
      return err.code as string;
    };
    assert.equal(await attempt(), 'node_token_required');
    assert.equal(await attempt(theirs.node_token), 'agent_bound_elsewhere');
    assert.ok(holder.open);
    assert.deepEqual(await snapshot(cp, agent_id), before);

    holder.terminate();
    await waitFor(() => cp.hub.byAgentId.get(agent_id) === undefined, 5000, 'the holder to go');
    assert.equal(await attempt(), 'node_token_required');
    // The agent itself, with its node's token, comes back.
    const back = await RawAgent.connect(wsUrl(cp), { agent_id });
    back.register({ node_token: mine.node_token });
    await back.next('registered');
  });
});
