// App names cannot be squatted for good without credentials: a claim never attested lapses, a claim on an
// unsealed network never blocks a sealed one, new claims are rate-limited per address, and lapsed claims and
// old health events are pruned (tables and maps stay bounded). The legitimate owner keeps its name. Real
// sockets on loopback, a manual clock, other 127.0.0.x addresses for other hosts.
import assert from 'node:assert/strict';
import { afterEach, describe, test } from 'node:test';
import { APP_CLAIM_IDLE_TTL_MS, APP_CLAIM_UNATTESTED_TTL_MS } from '@easyenclave/control-plane/app-claims';
import { ManualClock } from '@easyenclave/control-plane/clock';
import type { ControlPlane } from '@easyenclave/control-plane/server';
import { closeAll, startCp, waitFor, waitRoutable, wsUrl } from '../helpers/network.js';
import { newAgentId, RawAgent, type RegisterFields } from './raw-agent.js';
import { proxyGet } from './util.js';

afterEach(() => closeAll());

const DAY_MS = 86_400_000;

/** Registers and returns the first answer: 'registered' or the refusal's code. */
async function claim(cp: ControlPlane, reg: RegisterFields, localAddress?: string): Promise<string> {
  const raw = await RawAgent.connect(wsUrl(cp), reg, localAddress ? { localAddress } : {});
  raw.register();
  for (;;) {
    const m = raw.received.find((x) => x.type === 'registered' || x.type === 'error');
    if (m) {
      raw.terminate();
      return m.type === 'registered' ? 'registered' : String(m.code);
    }
    await raw.next('registered', 5000).catch(() => undefined);
  }
}

/** A squatter's claim: registered, never attested, gone. */
async function squat(cp: ControlPlane, reg: RegisterFields): Promise<void> {
  assert.equal(await claim(cp, reg), 'registered');
  await waitFor(
    async () => (await cp.store.listAgents(reg.app_name)).every((a) => !a.connected),
    5000,
    'the squatter to go',
  );
}

describe('app-name claims', () => {
  test('a claim never attested lapses; the owner then registers, attests and serves', async () => {
    const clock = new ManualClock(Date.UTC(2031, 0, 1));
    const cp = await startCp({}, { clock });
    await squat(cp, { app_name: 'demo', repo: 'evil/demo' });
    assert.equal(await claim(cp, { app_name: 'demo', repo: 'acme/demo' }), 'app_name_taken', 'not lapsed yet');
    clock.advance(APP_CLAIM_UNATTESTED_TTL_MS);
    const owner = await RawAgent.connect(wsUrl(cp), { app_name: 'demo', repo: 'acme/demo' });
    owner.serve();
    await owner.registerAndAttest();
    await waitRoutable(cp);
    assert.equal((await proxyGet(cp, '/')).text, 'raw-agent');
    assert.equal((await cp.store.getApp('demo'))?.repo, 'acme/demo');
    // The squatter's agent is bound to its own repo and stays refused.
    assert.equal(await claim(cp, { app_name: 'demo', repo: 'evil/demo' }), 'app_name_taken');
  });

  test('an attested claim is kept while its agents are connected, and lapses only long after they left', async () => {
    const clock = new ManualClock(Date.UTC(2031, 0, 1));
    const cp = await startCp({}, { clock });
    const agent_id = newAgentId();
    const owner = await RawAgent.connect(wsUrl(cp), { agent_id });
    owner.serve();
    await owner.registerAndAttest();
    await waitFor(async () => (await cp.store.getApp('demo'))?.attested_at_ms != null, 5000, 'attested_at_ms');
    clock.advance(APP_CLAIM_UNATTESTED_TTL_MS); // attested: the short lapse does not apply
    assert.equal(await claim(cp, { app_name: 'demo', repo: 'evil/demo' }), 'app_name_taken');
    owner.terminate();
    await waitFor(async () => (await cp.store.getAgent(agent_id))?.connected === false, 5000, 'the disconnect');
    clock.advance(APP_CLAIM_IDLE_TTL_MS - APP_CLAIM_UNATTESTED_TTL_MS - DAY_MS);
    assert.equal(await claim(cp, { app_name: 'demo', repo: 'other/demo' }), 'app_name_taken', 'attested lately');
    clock.advance(DAY_MS);
    assert.equal(await claim(cp, { app_name: 'demo', repo: 'other/demo' }), 'registered', 'idle for the whole TTL');
  });

  test('a name squatted on sandbox-1 does not block forge-1; a live attested sandbox app does', async () => {
    const cp = await startCp();
    await squat(cp, { app_name: 'demo', repo: 'evil/demo', network: 'sandbox-1' });
    assert.equal(await claim(cp, { app_name: 'demo', repo: 'acme/demo', network: 'forge-1' }), 'registered');
    assert.deepEqual(
      { repo: (await cp.store.getApp('demo'))?.repo, network: (await cp.store.getApp('demo'))?.network },
      { repo: 'acme/demo', network: 'forge-1' },
    );

    // A sandbox app that is attested and connected right now keeps its name.
    const live = await RawAgent.connect(wsUrl(cp), { app_name: 'dev', repo: 'acme/dev' });
    live.serve();
    await live.registerAndAttest();
    await waitRoutable(cp, 'dev');
    await waitFor(async () => (await cp.store.listAgents('dev'))[0]?.attest_ok === true, 5000, 'attest_ok');
    assert.equal(await claim(cp, { app_name: 'dev', repo: 'other/dev', network: 'forge-1' }), 'app_name_taken');
    assert.equal((await proxyGet(cp, '/', 'dev')).text, 'raw-agent');
  });

  test('new names are rate-limited per address; existing names and other addresses are not', async () => {
    const cp = await startCp({ EE_APP_CLAIMS_PER_HOUR: '5' });
    const codes: string[] = [];
    for (let i = 0; i < 8; i++) codes.push(await claim(cp, { app_name: `sq-${i}`, repo: 'evil/x' }, '127.0.0.2'));
    assert.deepEqual(codes, [...Array(5).fill('registered'), ...Array(3).fill('claim_rate_limited')]);
    assert.equal(await cp.store.getApp('sq-5'), undefined);
    assert.equal(await claim(cp, { app_name: 'sq-0', repo: 'evil/x' }, '127.0.0.2'), 'registered', 'not a new claim');
    assert.equal(await claim(cp, { app_name: 'mine', repo: 'acme/mine' }, '127.0.0.3'), 'registered');
  });

  test('lapsed claims and old health events are pruned; the attested app and its last connection stay', async () => {
    const clock = new ManualClock(Date.UTC(2031, 0, 1));
    const cp = await startCp({}, { clock });
    const agent_id = newAgentId();
    const owner = await RawAgent.connect(wsUrl(cp), { agent_id });
    owner.serve();
    await owner.registerAndAttest();
    await waitRoutable(cp);
    for (let i = 0; i < 20; i++) await squat(cp, { app_name: `sq-${i}`, repo: 'evil/x' });
    assert.equal((await cp.store.listApps()).length, 21);
    assert.equal(cp.hub.knownApps.size, 21);

    clock.advance(APP_CLAIM_UNATTESTED_TTL_MS);
    const pruned = await cp.hub.prune();
    assert.equal(pruned.apps.length, 20);
    assert.deepEqual(
      (await cp.store.listApps()).map((a) => a.app_name),
      ['demo'],
    );
    assert.deepEqual([...cp.hub.knownApps.keys()], ['demo']);
    assert.equal((await cp.store.listAgents()).length, 1, "the squatters' agents went with their claims");

    // Years later the owner's old events are gone, except its last connection event (settlement reads it).
    owner.health('fail');
    owner.health('pass');
    await waitFor(async () => (await cp.store.listHealthEvents({ agent_id, limit: 10 })).length >= 3, 5000, 'events');
    clock.advance(2 * 365 * DAY_MS);
    const { health_events } = await cp.hub.prune();
    assert.ok(health_events >= 2, `pruned ${health_events}`);
    const left = await cp.store.listHealthEvents({ agent_id, limit: 10 });
    assert.deepEqual(
      left.map((e) => e.kind),
      ['connected'],
    );
    assert.equal((await cp.store.getApp('demo'))?.repo, 'acme/demo', 'an attested claim is not pruned');
  });
});
