// Registration: first repo owns an app name, unknown networks are refused, nothing but `register` is accepted
// first, the registration TTL moves active → expiring → expired on the (manual) clock, and an agent that stops
// sending health stops receiving traffic after EE_HEALTH_TIMEOUT_SEC with a recorded miss.

import assert from 'node:assert/strict';
import { afterEach, describe, test } from 'node:test';
import { ManualClock } from '@easyenclave/control-plane/clock';
import { closeAll, startAgent, startBackend, startCp, waitFor, waitRoutable, wsUrl } from '../helpers/network.js';
import { newAgentId, RawAgent } from './raw-agent.js';
import { adminApp, hostGet, proxyGet, resolveApp } from './util.js';

afterEach(() => closeAll());

const DAY_MS = 86_400_000;

describe('registration', () => {
  test('an app name owned by another repo is refused (error + close 4001) and the owner keeps serving', async () => {
    const backend = await startBackend();
    const cp = await startCp();
    startAgent({ control_ws: wsUrl(cp), backend_url: backend.url, repo: 'acme/demo' });
    await waitRoutable(cp);

    const thief = await RawAgent.connect(wsUrl(cp), { repo: 'evil/demo', app_name: 'demo' });
    thief.register();
    const err = await thief.next('error');
    assert.equal(err.code, 'app_name_taken');
    assert.match(err.message, /acme\/demo/);
    const close = await thief.waitClose();
    assert.equal(close.code, 4001);
    assert.ok(close.reason.length > 0, 'the close carries a reason');
    assert.deepEqual(
      thief.received.map((m) => m.type),
      ['error'],
      'the refused agent is never registered nor challenged',
    );

    // The owner is untouched.
    const app = await cp.store.getApp('demo');
    assert.equal(app?.repo, 'acme/demo');
    for (let i = 0; i < 3; i++) {
      const r = await proxyGet(cp, '/echo');
      assert.equal(r.status, 200, r.text);
    }
    const res = await resolveApp(cp);
    assert.equal(res.status, 200);
    assert.equal(res.json.agents, 1);
  });

  test('an unknown network is refused before the app name is claimed', async () => {
    const cp = await startCp();
    const raw = await RawAgent.connect(wsUrl(cp), { network: 'nope-1' });
    raw.register();
    const err = await raw.next('error');
    assert.equal(err.code, 'unknown_network');
    assert.match(err.message, /nope-1/);
    const close = await raw.waitClose();
    assert.equal(close.code, 4001);
    assert.ok(close.reason.length > 0);
    assert.equal(await cp.store.getApp('demo'), undefined, 'a refused registration claims nothing');
    assert.equal((await resolveApp(cp)).status, 404);
  });

  test('a malformed network name (long, non-ASCII) is refused with an error message and 1002, not an internal error', async () => {
    const cp = await startCp();
    const raw = await RawAgent.connect(wsUrl(cp), { network: 'сеть-'.repeat(20) });
    raw.register();
    const err = await raw.next('error');
    assert.equal(err.code, 'invalid_message');
    assert.match(err.message, /network/);
    const close = await raw.waitClose();
    assert.equal(close.code, 1002, `close ${close.code} "${close.reason}"`);
    assert.ok(close.reason.length > 0 && Buffer.byteLength(close.reason) <= 123);
  });

  test('control messages before register close the connection with 4003', async () => {
    const cp = await startCp();
    const attempts: Array<[string, (r: RawAgent) => void | Promise<void>]> = [
      ['health', (r) => r.health('pass')],
      ['attest_response', async (r) => r.sendJson(await r.buildAnswer({ nonce: 'ab'.repeat(32) }))],
    ];
    for (const [what, send] of attempts) {
      const raw = await RawAgent.connect(wsUrl(cp));
      await send(raw);
      const close = await raw.waitClose();
      assert.equal(close.code, 4003, `${what} before register`);
      assert.match(close.reason, /register/, `${what}: the reason says what to do`);
      assert.deepEqual(raw.received, []);
    }
    assert.equal(cp.hub.links.size, 0, 'no link is left behind');
    const rows = await cp.store.listAttestations({ limit: 10 });
    assert.equal(rows.length, 0, 'nothing was verified or recorded for an unregistered connection');
  });

  test('a second register on the same connection is a protocol error (1002)', async () => {
    const cp = await startCp();
    const raw = await RawAgent.connect(wsUrl(cp));
    await raw.registerAndAttest();
    raw.register({ app_name: 'other' });
    const close = await raw.waitClose();
    assert.equal(close.code, 1002);
    assert.match(close.reason, /already registered/);
    assert.equal(await cp.store.getApp('other'), undefined);
  });

  test('TTL on the manual clock: active → expiring (still routable) → expired (403, no traffic)', async () => {
    const clock = new ManualClock(Date.UTC(2031, 0, 1));
    const t0 = clock.now();
    const backend = await startBackend();
    let hits = 0;
    backend.server.on('request', () => hits++);
    const cp = await startCp(
      { EE_REGISTRATION_TTL_DAYS: '1', EE_REGISTRATION_WARN_DAYS: '0.5', EE_QUEUE_TIMEOUT_MS: '300' },
      { clock },
    );
    startAgent({ control_ws: wsUrl(cp), backend_url: backend.url });
    await waitRoutable(cp);

    const active = await resolveApp(cp);
    assert.equal(active.status, 200);
    assert.equal(active.json.status, 'active');
    assert.equal(active.json.expires_at, new Date(t0 + DAY_MS).toISOString());

    // Inside the warning window (0.6 d of 1 d): expiring, and still routable.
    clock.advance(0.6 * DAY_MS);
    await waitFor(
      async () => {
        const r = await resolveApp(cp);
        return r.status === 200 && r.json.status === 'expiring';
      },
      5000,
      'status expiring while still routable',
    );
    const served = await proxyGet(cp, '/echo');
    assert.equal(served.status, 200, served.text);
    assert.equal((await hostGet(cp, '/echo')).status, 200, 'host-routed proxy serves too');
    const detail = await adminApp(cp);
    assert.equal(detail.json.status, 'expiring');
    assert.equal(detail.json.registrations[0].status, 'expiring');

    // Past the expiry: refused everywhere, and nothing reaches the backend.
    clock.advance(0.5 * DAY_MS);
    const expired = await resolveApp(cp);
    assert.equal(expired.status, 403, expired.text);
    assert.equal(expired.json.error.code, 'app_expired');
    const hits_before = hits;
    const proxied = await proxyGet(cp, '/echo');
    assert.equal(proxied.status, 403, proxied.text);
    assert.equal(proxied.json.error.code, 'registration_expired');
    const hosted = await hostGet(cp, '/echo');
    assert.equal(hosted.status, 403, `host-routed proxy refuses too: ${hosted.text}`);
    assert.equal(hits, hits_before, 'no request reached the backend of an expired app');
    const detail2 = await adminApp(cp);
    assert.equal(detail2.json.status, 'expired');
    assert.equal(detail2.json.registrations[0].status, 'expired');
  });

  test('health timeout: an agent that stops sending health gets no traffic after EE_HEALTH_TIMEOUT_SEC, and a miss is recorded', async () => {
    const clock = new ManualClock(Date.UTC(2031, 0, 1));
    const cp = await startCp({ EE_HEALTH_TIMEOUT_SEC: '2', EE_QUEUE_TIMEOUT_MS: '300' }, { clock });
    const agent_id = newAgentId();
    const raw = await RawAgent.connect(wsUrl(cp), { agent_id });
    raw.serve();
    await raw.registerAndAttest(); // one health pass, then silence
    await waitRoutable(cp);
    const first = await proxyGet(cp, '/x');
    assert.equal(first.status, 200, first.text);
    assert.equal(first.text, 'raw-agent');
    assert.equal(raw.streams_opened, 1);

    // Within the timeout: still routable.
    clock.advance(1500);
    cp.hub.sweep();
    assert.equal((await resolveApp(cp)).status, 200);

    // Past it: not routable, no traffic, and the miss is on record.
    clock.advance(1000);
    cp.hub.sweep();
    const res = await resolveApp(cp);
    assert.equal(res.status, 403, res.text);
    assert.equal(res.json.error.code, 'app_unhealthy');
    const proxied = await proxyGet(cp, '/x');
    assert.equal(proxied.status, 503, proxied.text);
    assert.equal(proxied.json.error.code, 'unhealthy');
    assert.equal(raw.streams_opened, 1, 'no request was routed to the silent agent');
    await waitFor(
      async () => (await cp.store.listHealthEvents({ agent_id, limit: 20 })).some((e) => e.kind === 'missed'),
      3000,
      'a missed health event',
    );
    const detail = await adminApp(cp);
    assert.ok(
      detail.json.recent_health_events.some(
        (e: { kind: string; agent_id: string }) => e.kind === 'missed' && e.agent_id === agent_id,
      ),
    );
    assert.equal((await cp.store.getAgent(agent_id))?.health_status, 'fail');
    assert.equal(raw.open, true, 'a health miss stops traffic; it does not cut the connection');

    // A passing heartbeat brings it back.
    raw.health('pass');
    await waitRoutable(cp);
    assert.equal((await proxyGet(cp, '/x')).status, 200);
    assert.equal(raw.streams_opened, 2);
  });
});
