// Market binding on the sealed network forge-1 (docs/market.md, "Agent binding"), with the test root of trust:
// a node registered with its machine's PPID gets the agents whose verified quotes carry that PPID (no token);
// an agent on another machine is not bound to it; the node's token presented from another node's machine is
// attestation fraud of the token's node — whole stake slashed, open locks voided, node banned, leases ended,
// agents disconnected and refused afterwards.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { fraudSlashId } from '@easyenclave/control-plane/market/ops-penalty';
import type { ControlPlane } from '@easyenclave/control-plane/server';
import { closeAll, startCp, waitFor, wsUrl } from '../helpers/network.js';
import { call } from '../ledger-http/client.js';
import { newAgentId, RawAgent } from '../lifecycle/raw-agent.js';
import { attestTdx, GOOD, otherPlatform, trustFiles, type TrustFiles } from '../attestation-e2e/fixture.js';
import { available, funded, registerNode, stake, type Party } from './util.js';

const PRICE = 100_000;
const VCPUS = 4;
const REQUIRED = PRICE * VCPUS * 24;

describe('market on a sealed network: binding by PPID, token/PPID fraud', () => {
  let t: TrustFiles;
  let cp: ControlPlane;
  let base: string;
  let provider: Party;
  let user: Party;
  let x: { node_id: string; node_token: string }; // the test root of trust's own machine
  let y: { node_id: string; node_token: string }; // another machine
  let yQuote: Awaited<ReturnType<typeof otherPlatform>>['quote'];
  let xAgent: RawAgent;

  /** A TDX agent on forge-1, attested (and reporting health) from machine `on`, optionally presenting a token. */
  const agent = async (on: 'x' | 'y', node_token?: string): Promise<RawAgent> => {
    const raw = await RawAgent.connect(wsUrl(cp), { network: 'forge-1', agent_id: newAgentId() });
    raw.serve();
    await attestTdx(raw, t.rot, GOOD, {
      ...(node_token ? { register: { node_token } } : {}),
      ...(on === 'y' ? { answer: { quote: yQuote } } : {}),
    });
    return raw;
  };
  const binding = (raw: RawAgent) =>
    cp.market.db
      .selectFrom('market_node_agents')
      .selectAll()
      .where('agent_id', '=', raw.reg.agent_id)
      .executeTakeFirst();
  const link = (raw: RawAgent) => [...cp.hub.links].find((l) => l.reg?.agent_id === raw.reg.agent_id && !l.closed);

  before(async () => {
    t = await trustFiles();
    const other = await otherPlatform(t.rot);
    yQuote = other.quote;
    cp = await startCp({ ...t.env, EE_HEALTH_TIMEOUT_SEC: '1800' });
    base = cp.api_url;
    provider = await funded(base, 'provider', 'Sealed Nodes', '$1000');
    user = await funded(base, 'user', 'Sealed User', '$100');
    x = await registerNode(base, provider, {
      network: 'forge-1',
      ppid: t.rot.ppid.toString('hex'),
      price_per_vcpu_hour_micro_usd: PRICE,
      vcpus: VCPUS,
    });
    y = await registerNode(base, provider, {
      network: 'forge-1',
      ppid: other.ppid,
      price_per_vcpu_hour_micro_usd: PRICE,
      vcpus: VCPUS,
    });
  });
  after(closeAll);

  it("binds an attested agent to the node registered with its PPID, without a token; another machine's agent goes to its own node", async () => {
    assert.match(x.node_token, /^ee_node_/); // issued on sealed networks too, optional there
    xAgent = await agent('x');
    const yAgent = await agent('y');
    await waitFor(
      () => link(xAgent)?.node_id === x.node_id && link(yAgent)?.node_id === y.node_id,
      3000,
      'PPID bindings',
    );
    assert.deepEqual(
      { ...(await binding(xAgent)), bound_ms: 0 },
      { agent_id: xAgent.reg.agent_id, node_id: x.node_id, via: 'ppid', bound_ms: 0 },
    );
    assert.equal((await binding(yAgent))?.node_id, y.node_id);
    const detail = await call(base, 'GET', `/v1/nodes/${x.node_id}`);
    assert.deepEqual(
      detail.body.agents.map((a: { agent_id: string; via: string; attested: boolean }) => [
        a.agent_id,
        a.via,
        a.attested,
      ]),
      [[xAgent.reg.agent_id, 'ppid', true]],
    );
    yAgent.terminate();
  });

  it("the node token presented from another node's machine is attestation fraud of the token's node: stake, locks, ban, agents", async () => {
    await stake(base, provider, x.node_id, 2 * REQUIRED); // covers X and Y (stake is per provider)
    await cp.market.refreshRanking();
    const lease = await call(base, 'POST', '/v1/leases', { token: user.key, body: { app: 'demo', vcpus: 2 } });
    assert.equal(lease.status, 201, JSON.stringify(lease.body));
    assert.equal(lease.body.node_id, x.node_id);
    const lock = lease.body.lock.amount_micro_usd as number;
    const userBefore = await available(base, user.id);
    const poolBefore = await available(base, 'platform:slash_pool');

    // X's token, from machine Y (the PPID of node Y): X is the fraudster, Y is not touched.
    const liar = await agent('y', x.node_token);
    const closed = await Promise.all([liar.waitClose(), xAgent.waitClose()]);
    assert.ok(
      closed.every((c) => /banned/.test(c.reason)),
      JSON.stringify(closed),
    );

    const node = await call(base, 'GET', `/v1/nodes/${x.node_id}`);
    assert.equal(node.body.status, 'banned');
    assert.match(node.body.banned_reason, new RegExp(`node token of ${x.node_id} from a machine with PPID`));
    assert.equal(node.body.stake.held_micro_usd, 0, 'the whole provider stake');
    assert.equal(await available(base, 'platform:slash_pool'), poolBefore + 2 * REQUIRED);
    assert.equal(await available(base, user.id), userBefore + lock, 'the open lock voided back to the user');
    const slash = await cp.market.db
      .selectFrom('market_slashes')
      .selectAll()
      .where('id', '=', fraudSlashId(x.node_id))
      .executeTakeFirstOrThrow();
    assert.equal(slash.kind, 'fraud');
    const l = await call(base, 'GET', `/v1/leases/${lease.body.lease_id}`, { token: user.key });
    assert.equal(l.body.status, 'ended');
    assert.equal(l.body.end_reason, 'node_banned');
    assert.deepEqual(
      l.body.lease_periods.map((p: { status: string; reasons: string[] }) => [p.status, p.reasons]),
      [['voided', ['fraud']]],
    );
    assert.equal((await call(base, 'GET', `/v1/nodes/${y.node_id}`)).body.status, 'active');

    // Refused afterwards: with the token at registration, and by PPID (X's machine) after attestation.
    const again = await RawAgent.connect(wsUrl(cp), { network: 'forge-1' });
    again.register({ node_token: x.node_token });
    assert.equal((await again.next('error')).code, 'node_banned');
    const byPpid = await RawAgent.connect(wsUrl(cp), { network: 'forge-1' });
    await attestTdx(byPpid, t.rot);
    assert.match((await byPpid.waitClose()).reason, /banned/);
  });
});
