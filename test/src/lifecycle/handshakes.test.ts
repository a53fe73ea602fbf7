// WebSockets that never send `register` must not lock agents out: they are closed at the register deadline,
// one remote address holds at most its share of the handshake cap, and the cap counts only connections that
// are really between their upgrade and their first attestation. Other loopback addresses (127.0.0.x) stand
// for other hosts.

import assert from 'node:assert/strict';
import { afterEach, describe, test } from 'node:test';
import { closeAll, startCp, waitFor, waitRoutable, wsUrl } from '../helpers/network.js';
import { RawAgent } from './raw-agent.js';
import { proxyGet } from './util.js';

afterEach(() => closeAll());

const CAP = 8;
const PER_ADDRESS = 4;
const ATTACKER = '127.0.0.2';

/** Dials from `localAddress`; the close info of a refused upgrade, or the open agent. */
async function dial(url: string, localAddress: string): Promise<RawAgent | 'refused'> {
  try {
    return await RawAgent.connect(url, {}, { localAddress });
  } catch (err) {
    assert.match((err as Error).message, /handshake refused: 503/);
    return 'refused';
  }
}

describe('tunnel handshakes', () => {
  test('sockets that never register hold no more than their share and are closed at the register deadline', async () => {
    const cp = await startCp({
      EE_MAX_CONCURRENT_HANDSHAKES: String(CAP),
      EE_MAX_HANDSHAKES_PER_ADDRESS: String(PER_ADDRESS),
      EE_REGISTER_DEADLINE_MS: '1500',
    });
    // The attack: as many idle sockets as the global cap, all from one host. Automatic pongs keep them alive.
    const idle: RawAgent[] = [];
    let refused = 0;
    for (let i = 0; i < CAP; i++) {
      const r = await dial(wsUrl(cp), ATTACKER);
      if (r === 'refused') refused++;
      else idle.push(r);
    }
    assert.equal(idle.length, PER_ADDRESS, 'one address holds at most its share of the handshakes');
    assert.equal(refused, CAP - PER_ADDRESS);

    // Another host's agent still gets in, attests and serves.
    const genuine = await RawAgent.connect(wsUrl(cp));
    genuine.serve();
    await genuine.registerAndAttest();
    await waitRoutable(cp);
    assert.equal((await proxyGet(cp, '/')).text, 'raw-agent');

    // The idle sockets are closed at the register deadline (not kept alive by pongs), which frees their slots.
    for (const s of idle) {
      const closed = await s.waitClose(10_000);
      assert.equal(closed.code, 4003);
      assert.match(closed.reason, /register/);
    }
    const again = await dial(wsUrl(cp), ATTACKER);
    assert.notEqual(again, 'refused', 'the slots of closed sockets are free again');
    assert.ok(genuine.open, 'the attested agent is never subject to the register deadline');
  });

  test('only connections in a handshake count: attested agents and refused ones free their slot', async () => {
    const cp = await startCp({
      EE_MAX_CONCURRENT_HANDSHAKES: String(CAP),
      EE_MAX_HANDSHAKES_PER_ADDRESS: String(PER_ADDRESS),
    });
    // More attested agents from one address than its handshake share: each stops counting once attested.
    const agents: RawAgent[] = [];
    for (let i = 0; i < PER_ADDRESS * 2; i++) {
      const a = await RawAgent.connect(wsUrl(cp), {}, { localAddress: ATTACKER });
      await a.registerAndAttest();
      agents.push(a);
    }
    // Registrations refused at once (unknown network) free their slot at once.
    for (let i = 0; i < PER_ADDRESS * 2; i++) {
      const r = await RawAgent.connect(wsUrl(cp), { network: 'nope-1' }, { localAddress: ATTACKER });
      r.register();
      assert.equal((await r.next('error')).code, 'unknown_network');
      await r.waitClose();
    }
    await waitFor(() => agents.every((a) => a.open), 1000, 'every attested agent to stay connected');
    assert.equal(cp.hub.links.size, PER_ADDRESS * 2);
  });
});
